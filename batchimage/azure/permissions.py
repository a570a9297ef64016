"""What the caller may do at a scope: the Microsoft.Authorization permissions API (one block
of actions / notActions / dataActions / notDataActions per role the caller holds at or
above the scope), what is missing from a list of needs, and the built-in role that would
grant it.

    blocks = group_permissions(clients, "rg")                   # None: no such group
    blocks = resource_permissions(clients, "rg", "Microsoft.Batch", "batchAccounts", "b")
    missing(blocks, [Need("Microsoft.Batch/batchAccounts/jobs/write", True, "smoke test")])
    role_for(missing_needs)                                     # "Azure Batch Data Contributor"
    caller_object_id(clients)                                   # the token's oid, for az commands
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchimage.azure.errors import azure_call, is_not_found
from batchimage.core.errors import PermanentAzureError
from batchimage.core.rbac import KEYS, block_grants, find_role

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients

# Built-in roles worth suggesting, in this order; the first that grants every missing need
# at a scope is named (for Batch the role that also manages pools, which runs need too).
SUGGESTED_ROLES = (
    "Azure Batch Data Contributor",
    "Storage Blob Data Contributor",
    "Contributor",
)


@dataclass(frozen=True)
class Need:
    """One action (or data action) the run performs at a scope, and what for."""

    action: str
    data: bool
    why: str


def describe(needs: list[Need]) -> str:
    """`data actions A, B (why); action C (why)`: needs grouped by kind and purpose."""
    groups: dict[tuple[bool, str], list[str]] = {}
    for need in needs:
        groups.setdefault((need.data, need.why), []).append(need.action)
    parts = []
    for (data, why), actions in groups.items():
        kind = ("data action" if data else "action") + ("s" if len(actions) > 1 else "")
        parts.append(f"{kind} {', '.join(actions)} ({why})")
    return "; ".join(parts)


def _blocks(raw: Any) -> list[dict[str, Any]]:
    """The SDK's Permission models as REST-keyed dicts."""
    names = ("actions", "not_actions", "data_actions", "not_data_actions")
    return [
        {key: list(getattr(p, name, None) or []) for key, name in zip(KEYS, names, strict=True)}
        for p in raw
    ]


def group_permissions(clients: AzureClients, group: str) -> list[dict[str, Any]] | None:
    """The caller's permission blocks at resource group `group`; None when it does not exist."""
    try:
        with azure_call(f"read your permissions on resource group {group}"):
            return _blocks(clients.authorization.permissions.list_for_resource_group(group))
    except PermanentAzureError as err:
        if is_not_found(err):
            return None
        raise


def resource_permissions(
    clients: AzureClients, group: str, namespace: str, type_name: str, name: str
) -> list[dict[str, Any]]:
    """The caller's permission blocks at one resource."""
    with azure_call(f"read your permissions on {type_name} {name}"):
        raw = clients.authorization.permissions.list_for_resource(
            group, namespace, "", type_name, name
        )
        return _blocks(raw)


def missing(blocks: list[dict[str, Any]], needs: list[Need]) -> list[Need]:
    """The needs no block grants."""
    return [
        need
        for need in needs
        if not any(block_grants(b, need.action, data=need.data) for b in blocks)
    ]


def role_for(needs: list[Need]) -> str | None:
    """The narrowest suggested built-in role granting every one of `needs`."""
    for name in SUGGESTED_ROLES:
        role = find_role(name)
        blocks = role["permissions"] if role else []
        if not missing(blocks, needs):
            return name
    return None


def caller_object_id(clients: AzureClients) -> str | None:
    """The object id in the caller's ARM token (who `az role assignment` should name)."""
    try:
        token = clients.credential.get_token(clients.profile.arm_scope).token
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except Exception:  # only for a hint: any failure leaves the placeholder
        return None
    oid = claims.get("oid")
    return str(oid) if oid else None
