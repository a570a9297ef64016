"""The regions a subscription can use (ARM Subscriptions - List Locations, api-version
2022-12-01), read through the resource client's pipeline: the installed azure-mgmt-resource
ships no subscriptions client.

    subscription_locations(clients) -> {"eastus": "East US", ...}
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from batchimage.azure.errors import azure_call

LOCATIONS_API = "2022-12-01"


def subscription_locations(clients: Any) -> dict[str, str]:
    """The subscription's regions: programmatic name -> display name."""
    sub = clients.subscription_id
    request = HttpRequest(
        "GET", f"/subscriptions/{sub}/locations", params={"api-version": LOCATIONS_API}
    )
    with azure_call(f"list the locations of subscription {sub}"):
        response = clients.resource.send_request(request)
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        items = response.json().get("value") or []
    return {
        str(item["name"]).lower(): str(item.get("displayName") or item["name"])
        for item in items
        if item.get("name")
        and item.get("type", "Region") == "Region"
        and (item.get("metadata") or {}).get("regionType", "Physical") == "Physical"
    }
