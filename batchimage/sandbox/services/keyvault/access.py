"""What reading a Key Vault secret needs under Azure RBAC, and Key Vault's refusal.

GetSecret needs the data action `Microsoft.KeyVault/vaults/secrets/getSecret/action` on the
vault (the Key Vault Secrets User role grants it; Owner and Contributor grant no data
action), as a vault that uses the RBAC permission model answers: 403 Forbidden "Caller is
not authorized to perform action on resource. ..." naming the caller, the action and the
secret (piyushsachdeva/Terraform_AKS#2 shows Key Vault's answer; its inner error
ForbiddenByRbac is left out). The sandbox's vaults all use the RBAC model (access
policies are not modelled) and live in the seeded resource group of its subscription.
"""

from __future__ import annotations

from batchimage.sandbox import seed
from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call, World

GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
READER_ROLE = "Key Vault Secrets User"


def vault_id(world: World, vault: str) -> str:
    """The ARM id of a sandbox vault (the scope of its role assignments)."""
    return (
        f"/subscriptions/{world.identity.subscription_id}/resourceGroups/{seed.RESOURCE_GROUP}"
        f"/providers/Microsoft.KeyVault/vaults/{vault.lower()}"
    )


def need(call: Call) -> tuple[str, str, bool]:
    """(the vault's id, the get-secret data action, True)."""
    return vault_id(call.world, call.params["vault"]), GET_SECRET, True


def refuse(call: Call) -> ApiError:
    """Key Vault's 403 for a caller without the data action on the vault."""
    claims = call.claims
    vault = call.params["vault"].lower()
    secret = f"{vault_id(call.world, vault).lower()}/secrets/{call.params['name'].lower()}"
    return ApiError(
        403,
        "Forbidden",
        "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
        "assignments or role definitions were changed recently, please observe propagation "
        f"time.\r\nCaller: appid={claims.get('appid', '')};oid={claims.get('oid', '')};"
        f"iss={claims.get('iss', '')}\r\nAction: '{GET_SECRET}'\r\nResource: '{secret}'\r\n"
        "Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: "
        f"'DeniedWithNoValidRBAC' \r\nVault: {vault};location={call.world.identity.location}\r\n",
    )
