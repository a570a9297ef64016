"""Microsoft.Authorization routes (permissions) and the admin endpoint's access routes."""

from __future__ import annotations

from batchimage.sandbox.routing import Route
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
    Route("POST", ADMIN + "/principals", r.add_principal, "Admin_AddPrincipal", plane="admin"),
    Route(
        "GET",
        ADMIN + "/role-assignments",
        r.list_assignments,
        "Admin_RoleAssignments",
        plane="admin",
    ),
    Route(
        "POST",
        ADMIN + "/role-assignments",
        r.add_assignment,
        "Admin_AddRoleAssignment",
        plane="admin",
    ),
    Route(
        "DELETE",
        ADMIN + "/role-assignments/{name}",
        r.delete_assignment,
        "Admin_DeleteRoleAssignment",
        plane="admin",
    ),
]
