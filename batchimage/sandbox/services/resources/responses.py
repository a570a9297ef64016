"""Microsoft.Resources wire format: subscriptions, resource groups, providers."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import arm, lro
from batchimage.sandbox.apierrors import resource_group_not_found
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.resources import models


def list_subscriptions(call: Call) -> Reply:
    return Reply(200, {"value": list(arm.subscriptions(call.world).values())})


def get_subscription(call: Call) -> Reply:
    sub = arm.check_subscription(call)
    return Reply(200, models.subscription_record(call.world, sub))


def list_locations(call: Call) -> Reply:
    sub = arm.check_subscription(call)
    return Reply(200, {"value": models.location_records(sub)})


def _group(call: Call) -> dict[str, Any]:
    sub = arm.check_subscription(call)
    record = arm.get(call.world, arm.group_id(sub, call.params["group"]))
    if record is None:
        raise resource_group_not_found(call.params["group"])
    return record


def get_group(call: Call) -> Reply:
    return Reply(200, arm.render(call.world, _group(call)))


def head_group(call: Call) -> Reply:
    sub = arm.check_subscription(call)
    found = arm.get(call.world, arm.group_id(sub, call.params["group"])) is not None
    return Reply(204 if found else 404, None)


def put_group(call: Call) -> Reply:
    sub = arm.check_subscription(call)
    record, created = models.put_group(call.world, sub, call.params["group"], call.json_object())
    return Reply(201 if created else 200, arm.render(call.world, record))


def patch_group(call: Call) -> Reply:
    record = _group(call)
    body = call.json_object()
    arm.check_tags(body.get("tags"))
    if body.get("tags") is not None:
        record["tags"] = dict(body["tags"])
        call.store.touch()
    return Reply(200, arm.render(call.world, record))


def delete_group(call: Call) -> Reply:
    """202 + Location (the subscription's operationresults), as ARM answers."""
    record = _group(call)
    props = record["properties"]
    if props["provisioningState"] != "Deleting":
        props["provisioningState"] = "Deleting"
        call.store.touch()
        op = lro.start(
            call,
            namespace="Microsoft.Resources",
            duration=call.world.config.duration("resource_group.delete", 45.0),
            kind="resource_group.delete",
            done="resources.group_deleted",
            failed="resources.group_delete_failed",
            args={"id": record["id"]},
        )
        record["_op"] = op["id"]
    op = lro.operations(call.world)[record["_op"]]
    return lro.accepted(call.world, op)


def list_groups(call: Call) -> Reply:
    sub = arm.check_subscription(call)
    prefix = f"/subscriptions/{sub}/resourcegroups/".lower()
    groups = [
        arm.render(call.world, r)
        for k, r in sorted(arm.resources(call.world).items())
        if k.startswith(prefix) and r["type"] == arm.GROUP_TYPE
    ]
    return Reply(200, {"value": groups})


def list_group_resources(call: Call) -> Reply:
    record = _group(call)
    items = []
    for member in models.group_members(call.world, record):
        item = {
            k: member[k]
            for k in ("id", "name", "type", "location", "tags", "kind", "sku")
            if k in member
        }
        items.append(item)
    return Reply(200, {"value": items})


def list_providers(call: Call) -> Reply:
    sub = arm.check_subscription(call)
    return Reply(
        200,
        {"value": [models.provider_record(call.world, sub, ns) for ns in models.PROVIDER_TYPES]},
    )


def get_provider(call: Call) -> Reply:
    sub = arm.check_subscription(call)
    return Reply(200, models.provider_record(call.world, sub, call.params["namespace"]))


def register_provider(call: Call) -> Reply:
    sub = arm.check_subscription(call)
    return Reply(200, models.set_registration(call.world, sub, call.params["namespace"], True))


def unregister_provider(call: Call) -> Reply:
    sub = arm.check_subscription(call)
    return Reply(200, models.set_registration(call.world, sub, call.params["namespace"], False))
