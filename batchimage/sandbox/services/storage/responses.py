"""Microsoft.Storage wire format beyond the generic resource operations: keys, name
availability, and GET with `$expand=geoReplicationStats`."""

from __future__ import annotations

from batchimage.sandbox import arm
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.storage import models


def get_account(call: Call) -> Reply:
    from batchimage.sandbox.services.storage.urls import STORAGE_ACCOUNTS

    record = STORAGE_ACCOUNTS.find(call)
    out = arm.render(call.world, record)
    if (
        "georeplicationstats" in (call.arg("$expand") or "").lower()
        and record["sku"]["name"] in models.GEO_SKUS
    ):
        out["properties"]["geoReplicationStats"] = models.geo_stats(call.world, record)
    return Reply(200, out)


def list_keys(call: Call) -> Reply:
    from batchimage.sandbox.services.storage.urls import STORAGE_ACCOUNTS

    return Reply(200, models.keys(call.world, STORAGE_ACCOUNTS.find(call)))


def regenerate_key(call: Call) -> Reply:
    from batchimage.sandbox.services.storage.urls import STORAGE_ACCOUNTS

    record = STORAGE_ACCOUNTS.find(call)
    models.regenerate(call.world, record, str(call.json_object().get("keyName", "")))
    return Reply(200, models.keys(call.world, record))


def check_name(call: Call) -> Reply:
    arm.check_subscription(call)
    return Reply(200, models.name_availability(call.world, str(call.json_object().get("name", ""))))
