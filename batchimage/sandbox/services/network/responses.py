"""Microsoft.Network wire format for subnets (child resources of a virtual network);
the top-level types are served by `arm.ResourceType` (see urls.py)."""

from __future__ import annotations

import copy
from typing import Any

from batchimage.sandbox import arm, lro
from batchimage.sandbox.apierrors import not_found
from batchimage.sandbox.clock import action
from batchimage.sandbox.context import Call, Reply, World
from batchimage.sandbox.services.network import models


def _vnet(call: Call) -> dict[str, Any]:
    from batchimage.sandbox.services.network.urls import VIRTUAL_NETWORKS

    return VIRTUAL_NETWORKS.find(call)


def _subnet(call: Call, vnet: dict[str, Any]) -> dict[str, Any]:
    subnet = models.find_subnet(vnet, call.params["subnet"])
    if subnet is None:
        raise not_found(
            "NotFound", f"Resource {vnet['id']}/subnets/{call.params['subnet']} not found."
        )
    return subnet


def get_subnet(call: Call) -> Reply:
    subnet = copy.deepcopy(_subnet(call, _vnet(call)))
    return Reply(200, models.render_subnet(call.world, subnet))


def list_subnets(call: Call) -> Reply:
    vnet = arm.render(call.world, _vnet(call))
    return Reply(200, {"value": vnet["properties"].get("subnets", [])})


def _start(call: Call, vnet: dict[str, Any], done: str, name: str) -> dict[str, Any]:
    op = lro.start(
        call,
        namespace=models.NS,
        duration=call.world.config.duration("network.update", 5.0),
        kind="network.update",
        done=done,
        failed="network.subnet_failed",
        args={"vnet": vnet["id"], "subnet": name},
        location=vnet["location"],
    )
    vnet["_op"] = op["id"]
    call.store.touch()
    return op


def put_subnet(call: Call) -> Reply:
    vnet = _vnet(call)
    if arm.busy(call.world, vnet):
        raise arm.another_operation(call.world, vnet)
    existed = models.find_subnet(vnet, call.params["subnet"]) is not None
    subnet = models.new_subnet(call, vnet, call.json_object())
    subnet["properties"]["provisioningState"] = "Updating"
    op = _start(call, vnet, "network.subnet_done", subnet["name"])
    body = models.render_subnet(call.world, dict(subnet))
    return Reply(200 if existed else 201, body, lro.headers(call.world, op, location=False))


def delete_subnet(call: Call) -> Reply:
    vnet = _vnet(call)
    subnet = models.find_subnet(vnet, call.params["subnet"])
    if subnet is None:
        return Reply(204, None)
    if arm.busy(call.world, vnet):
        raise arm.another_operation(call.world, vnet)
    if models.subnet_users(call.world, subnet["id"]):
        raise models.in_use_subnet(call.world, subnet)
    subnet["properties"]["provisioningState"] = "Deleting"
    op = _start(call, vnet, "network.subnet_deleted", subnet["name"])
    return lro.accepted(call.world, op, async_op=True)


def _settle(world: World, args: dict[str, Any], state: str | None) -> None:
    vnet = arm.get(world, args["vnet"])
    if vnet is None:
        return
    vnet.pop("_op", None)
    subnet = models.find_subnet(vnet, args["subnet"])
    if subnet is not None:
        if state is None:
            vnet["properties"]["subnets"].remove(subnet)
        else:
            subnet["properties"]["provisioningState"] = state
    world.store.touch()


@action("network.subnet_done")
def _subnet_done(world: World, args: dict[str, Any]) -> None:
    _settle(world, args, "Succeeded")


@action("network.subnet_deleted")
def _subnet_deleted(world: World, args: dict[str, Any]) -> None:
    _settle(world, args, None)


@action("network.subnet_failed")
def _subnet_failed(world: World, args: dict[str, Any]) -> None:
    _settle(world, args, "Failed")
