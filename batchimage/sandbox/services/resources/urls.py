"""Microsoft.Resources routes."""

from __future__ import annotations

from batchimage.sandbox.routing import Route
from batchimage.sandbox.services.resources import responses as r

SUB = "/subscriptions/{subscription}"
GROUP = SUB + "/resourcegroups/{group}"

ROUTES = [
    Route("GET", "/subscriptions", r.list_subscriptions, "Subscriptions_List"),
    Route("GET", SUB, r.get_subscription, "Subscriptions_Get"),
    Route("GET", SUB + "/locations", r.list_locations, "Subscriptions_ListLocations"),
    Route("HEAD", GROUP, r.head_group, "ResourceGroups_CheckExistence"),
    Route("GET", GROUP, r.get_group, "ResourceGroups_Get"),
    Route("PUT", GROUP, r.put_group, "ResourceGroups_CreateOrUpdate"),
    Route("PATCH", GROUP, r.patch_group, "ResourceGroups_Update"),
    Route("DELETE", GROUP, r.delete_group, "ResourceGroups_Delete"),
    Route("GET", SUB + "/resourcegroups", r.list_groups, "ResourceGroups_List"),
    Route("GET", GROUP + "/resources", r.list_group_resources, "Resources_ListByResourceGroup"),
    Route("GET", SUB + "/providers", r.list_providers, "Providers_List"),
    Route("GET", SUB + "/providers/{namespace}", r.get_provider, "Providers_Get"),
    Route(
        "POST", SUB + "/providers/{namespace}/register", r.register_provider, "Providers_Register"
    ),
    Route(
        "POST",
        SUB + "/providers/{namespace}/unregister",
        r.unregister_provider,
        "Providers_Unregister",
    ),
]
