"""VM extensions: create/update and delete only while the VM runs (as on Azure);
protected settings are never stored."""

from __future__ import annotations

import copy
from typing import Any

from batchimage.sandbox.context import Call
from batchimage.sandbox.services.compute import errors
from batchimage.sandbox.services.compute.models import vms


def _vm(call: Call) -> dict[str, Any]:
    from batchimage.sandbox.services.compute.urls import EXTENSIONS

    return EXTENSIONS.parent(call)


def _require_running(vm: dict[str, Any]) -> None:
    if vm.get("_power") != "running":
        raise errors.extensions_need_running_vm()


def build_extension(
    call: Call, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    _require_running(_vm(call))
    props = copy.deepcopy(body.get("properties") or {})
    props.pop("protectedSettings", None)
    props.pop("protectedSettingsFromKeyVault", None)
    old = (existing or {}).get("properties", {})
    for key in ("publisher", "type", "typeHandlerVersion"):
        props.setdefault(key, old.get(key))
        if not props.get(key):
            raise errors.missing(key)
    props.setdefault("autoUpgradeMinorVersion", False)
    props.setdefault("settings", {})
    return {"properties": props}


def before_delete(call: Call, record: dict[str, Any]) -> None:
    vm = vms.find_vm(call.world, record["id"].rsplit("/extensions/", 1)[0])
    if vm is not None:
        _require_running(vm)
