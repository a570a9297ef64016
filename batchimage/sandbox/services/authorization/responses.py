"""Microsoft.Authorization wire format: the caller's permissions at a resource group or a
resource (Permissions_ListForResourceGroup / _ListForResource, api-version 2022-04-01:
`{"value": [{"actions", "notActions", "dataActions", "notDataActions"}]}`, one block per
role the caller holds at or above the scope), and the admin endpoint's principals and
role assignments."""

from __future__ import annotations

from batchimage.sandbox import arm
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.authorization import models

_KEYS = ("actions", "notActions", "dataActions", "notDataActions")


def _permissions_reply(call: Call, scope: str) -> Reply:
    blocks = models.permissions(call.world, str(call.claims.get("oid", "")), scope)
    return Reply(200, {"value": [{k: list(b.get(k, [])) for k in _KEYS} for b in blocks]})


def list_for_group(call: Call) -> Reply:
    """Permissions_ListForResourceGroup (404 ResourceGroupNotFound for a missing group)."""
    group = arm.require_group(call)
    return _permissions_reply(call, group["id"])


def list_for_resource(call: Call) -> Reply:
    """Permissions_ListForResource: the scope is the resource id in the path (an empty
    parentResourcePath leaves `//` in it, as the SDK sends it)."""
    group = arm.require_group(call)
    resource = "/".join(part for part in call.params["resource"].split("/") if part)
    return _permissions_reply(call, f"{group['id']}/providers/{resource}")


# -- admin --------------------------------------------------------------------------------
