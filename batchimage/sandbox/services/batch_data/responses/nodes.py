"""Nodes on the wire: list, get, node files, pool node counts and supported images, and the
node as Batch returns it."""

from __future__ import annotations

import copy
from typing import Any

from batchimage.sandbox.context import Call, Reply, World
from batchimage.sandbox.services.batch_data import wire
from batchimage.sandbox.services.batch_data.errors import not_found
from batchimage.sandbox.services.batch_data.models import catalog, nodes, pools
from batchimage.sandbox.services.batch_data.models.accounts import require_account
from batchimage.sandbox.services.batch_data.responses import files

COUNTED = (
    "creating", "idle", "offline", "preempted", "rebooting", "reimaging", "running", "starting",
    "startTaskFailed", "leavingPool", "unknown", "unusable", "waitingForStartTask",
    "deallocated", "deallocating", "upgradingOS",
)  # fmt: skip


def list_supported_images(call: Call) -> Reply:
    account = require_account(call)
    items = catalog.supported_images(call.clock.now())
    url = f"{account.url(call.world)}/supportedimages"
    return wire.page(call, wire.filter_items(call, items), url)


def render_node_counts(record: dict[str, Any]) -> dict[str, Any]:
    """A pool's nodes counted by state, dedicated and low-priority apart."""
    item: dict[str, Any] = {"poolId": record["id"]}
    for name, dedicated in (("dedicated", True), ("lowPriority", False)):
        states = [n["state"] for n in record["_nodes"].values() if n["isDedicated"] == dedicated]
        counts = {c: sum(1 for s in states if s == c.lower()) for c in COUNTED}
        item[name] = {**counts, "total": len(states)}
    return item


def list_node_counts(call: Call) -> Reply:
    account = require_account(call)
    items = [render_node_counts(record) for record in pools.in_account(call.world, account)]
    items = wire.filter_items(call, items)
    return wire.page(call, items, f"{account.url(call.world)}/nodecounts")


def render_node(world: World, record: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The node as Batch returns it."""
    out = {k: copy.deepcopy(v) for k, v in node.items() if not k.startswith("_")}
    ref = copy.deepcopy(record["virtualMachineConfiguration"]["imageReference"])
    if node.get("_image_version"):
        ref["virtualMachineImageId"] = node["_image_version"]
    out.update(
        {
            "url": f"{record['url']}/nodes/{node['id']}",
            "stateTransitionTime": wire.stamp(node["_state_at"]),
            "nodeAgentInfo": {
                "version": nodes.AGENT_VERSION,
                "lastUpdateTime": wire.stamp(node["_created"]),
            },
            "virtualMachineInfo": {"imageReference": ref},
        }
    )
    return out


def _node(call: Call) -> tuple[dict[str, Any], dict[str, Any]]:
    account = require_account(call)
    record = pools.require(call, account)
    node = record["_nodes"].get(call.params["node"])
    if node is None:
        raise not_found(call, "NodeNotFound", "node")
    return record, node


def list_nodes(call: Call) -> Reply:
    account = require_account(call)
    record = pools.require(call, account)
    items = [render_node(call.world, record, n) for n in record["_nodes"].values()]
    return wire.page(call, wire.filter_items(call, items), f"{record['url']}/nodes")


def get_node(call: Call) -> Reply:
    record, node = _node(call)
    return wire.reply(200, wire.select(call, render_node(call.world, record, node)))


def list_node_files(call: Call) -> Reply:
    record, node = _node(call)
    return files.list_files(f"{record['url']}/nodes/{node['id']}", node["_files"], call)


def get_node_file(call: Call) -> Reply:
    record, node = _node(call)
    return files.file_reply(f"{record['url']}/nodes/{node['id']}", node["_files"], call)
