"""Node and task files on the wire: listings (with the directories above each file,
`recursive` or not) and a file's bytes (GET) or properties (HEAD) with the
ocp-batch-file-* headers."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.batch_data import wire
from batchimage.sandbox.services.batch_data.errors import not_found


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
