"""Microsoft.Authorization routes (permissions) and the admin endpoint's access routes."""

from __future__ import annotations

from batchimage.sandbox.routing import Route
from batchimage.sandbox.services.authorization import admin
from batchimage.sandbox.services.authorization import responses as r

GROUP = "/subscriptions/{subscription}/resourcegroups/{group}"
PERMISSIONS = "/providers/Microsoft.Authorization/permissions"
ADMIN = "/_sandbox"

ROUTES = [
    Route("GET", GROUP + PERMISSIONS, r.list_for_group, "Permissions_ListForResourceGroup"),
    Route(
        "GET",
        GROUP + "/providers/{resource:path}" + PERMISSIONS,
        r.list_for_resource,
        "Permissions_ListForResource",
    ),
    Route("POST", ADMIN + "/principals", admin.add_principal, "Admin_AddPrincipal", plane="admin"),
    Route(
        "POST",
        ADMIN + "/principals/{objectId}/federated-credentials",
        admin.add_federated_credential,
        "Admin_AddFederatedCredential",
        plane="admin",
    ),
    Route(
        "GET",
        ADMIN + "/role-assignments",
        admin.list_assignments,
        "Admin_RoleAssignments",
        plane="admin",
    ),
    Route(
        "POST",
        ADMIN + "/role-assignments",
        admin.add_assignment,
        "Admin_AddRoleAssignment",
        plane="admin",
    ),
    Route(
        "DELETE",
        ADMIN + "/role-assignments/{name}",
        admin.delete_assignment,
        "Admin_DeleteRoleAssignment",
        plane="admin",
    ),
]
