"""Gallery image versions on the wire: GET with `$expand=ReplicationStatus`."""

from __future__ import annotations

from batchimage.sandbox import arm
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.compute.models.galleries import replication_status


def get_version(call: Call) -> Reply:
    from batchimage.sandbox.services.compute.urls import GALLERY_IMAGE_VERSIONS

    record = GALLERY_IMAGE_VERSIONS.find(call)
    out = arm.render(call.world, record)
    if "replicationstatus" in (call.arg("$expand") or "").lower():
        out["properties"]["replicationStatus"] = replication_status(call.world, record)
    return Reply(200, out)
