"""Handlers for nodes, node files, pool node counts and supported images."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.batch_data import catalog, nodes, pools, wire
from batchimage.sandbox.services.batch_data.accounts import require_account
from batchimage.sandbox.services.batch_data.errors import not_found

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


def list_node_counts(call: Call) -> Reply:
    account = require_account(call)
    items = []
    for record in pools.in_account(call.world, account):
        item: dict[str, Any] = {"poolId": record["id"]}
        for name, dedicated in (("dedicated", True), ("lowPriority", False)):
            states = [
                n["state"] for n in record["_nodes"].values() if n["isDedicated"] == dedicated
            ]
            counts = {c: sum(1 for s in states if s == c.lower()) for c in COUNTED}
            item[name] = {**counts, "total": len(states)}
        items.append(item)
    items = wire.filter_items(call, items)
    return wire.page(call, items, f"{account.url(call.world)}/nodecounts")


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
    items = [nodes.render(call.world, record, n) for n in record["_nodes"].values()]
    return wire.page(call, wire.filter_items(call, items), f"{record['url']}/nodes")


def get_node(call: Call) -> Reply:
    record, node = _node(call)
    return wire.reply(200, wire.select(call, nodes.render(call.world, record, node)))


def _entries(files: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Files and the directories above them: path -> {"content", "at", "dir"}."""
    out: dict[str, dict[str, Any]] = {}
    for path, item in files.items():
        parts = path.split("/")
        for i in range(1, len(parts)):
            out.setdefault("/".join(parts[:i]), {"content": "", "at": item["at"], "dir": True})
        out[path] = {**item, "dir": False}
    return out


def _file_item(base: str, path: str, entry: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": path,
        "url": f"{base}/files/{path}",
        "isDirectory": entry["dir"],
    }
    if not entry["dir"]:
        item["properties"] = {
            "creationTime": wire.stamp(entry["at"]),
            "lastModified": wire.stamp(entry["at"]),
            "contentLength": len(entry["content"].encode()),
            "contentType": "text/plain",
            "fileMode": "0o100644",
        }
    return item


def list_files(base: str, files: dict[str, Any], call: Call) -> Reply:
    recursive = (call.arg("recursive") or "false").lower() == "true"
    entries = _entries(files)
    items = [
        _file_item(base, path, entry)
        for path, entry in sorted(entries.items())
        if recursive or "/" not in path
    ]
    return wire.page(call, wire.filter_items(call, items), f"{base}/files")


def file_reply(base: str, files: dict[str, Any], call: Call) -> Reply:
    """A file's bytes (GET) or properties (HEAD) with the ocp-batch-file-* headers."""
    path = call.params["file"].strip("/")
    entry = _entries(files).get(path)
    if entry is None:
        raise not_found(call, "FileNotFound", "file")
    data = entry["content"].encode()
    headers = {
        "ocp-creation-time": wire.rfc1123(entry["at"]),
        "ocp-batch-file-isdirectory": "true" if entry["dir"] else "false",
        "ocp-batch-file-url": f"{base}/files/{path}",
        "ocp-batch-file-mode": "0o40755" if entry["dir"] else "0o100644",
        "Last-Modified": wire.rfc1123(entry["at"]),
        "ETag": wire.etag(entry["at"]),
    }
    return Reply(200, data, headers, "application/octet-stream")


def list_node_files(call: Call) -> Reply:
    record, node = _node(call)
    return list_files(f"{record['url']}/nodes/{node['id']}", node["_files"], call)


def get_node_file(call: Call) -> Reply:
    record, node = _node(call)
    return file_reply(f"{record['url']}/nodes/{node['id']}", node["_files"], call)
