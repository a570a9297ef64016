"""ARM building blocks: resource ids, the shared resource table, subscription and group
checks, and `ResourceType`, which gives a tracked resource its PUT/GET/PATCH/DELETE/list
operations with real LRO behaviour. A service describes a type (build, name rule, hooks)
and adds `type.routes()` to its route list.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchimage.sandbox import lro
from batchimage.sandbox.apierrors import (
    ApiError,
    bad_request,
    conflict,
    resource_group_not_found,
    resource_not_found,
    subscription_not_found,
)
from batchimage.sandbox.clock import action
from batchimage.sandbox.context import Call, Reply, World
from batchimage.sandbox.routing import Route

GROUP_TYPE = "Microsoft.Resources/resourceGroups"
TYPES: dict[str, ResourceType] = {}


def resources(world: World) -> dict[str, Any]:
    """Every ARM resource (groups included), keyed by lower-cased id."""
    return world.store.table("resources")


def subscriptions(world: World) -> dict[str, Any]:
    """Known subscriptions, keyed by lower-cased id."""
    return world.store.table("subscriptions")


def group_id(subscription: str, group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}"


def resource_id(subscription: str, group: str, namespace: str, type_name: str, name: str) -> str:
    return f"{group_id(subscription, group)}/providers/{namespace}/{type_name}/{name}"


# Tags (docs/azure-behaviours.md, "Tags and provenance"): at most 50 per resource, names
# 1-512 characters (128 on a storage account) without < > % & \\ ? / or control characters,
# values up to 256.
MAX_TAGS = 50
TAG_NAME_MAX = 512
TAG_VALUE_MAX = 256
_TAG_NAME_BAD = re.compile(r"[<>%&\\?/\x00-\x1f\x7f]")


def check_tags(tags: Any, *, name_max: int = TAG_NAME_MAX) -> None:
    """Refuse a request's `tags` as ARM does: too many (InvalidTags), a name empty or too
    long (InvalidTagName), a name with a reserved character (InvalidTagNameCharacters), a
    value too long (InvalidTagValueLength); each 400."""
    if not isinstance(tags, dict):
        return  # none sent (the SDK sends an object or nothing)
    if len(tags) > MAX_TAGS:
        raise bad_request(
            "InvalidTags",
            f"Too many tags specified. Requested tag count - '{len(tags)}'. Maximum number of "
            f"tags allowed - '{MAX_TAGS}'.",
        )
    for name in tags:
        if not str(name).strip():
            raise bad_request(
                "InvalidTagName",
                "The tag name must be non-null, non-empty and non-whitespace only. Please "
                "provide an actual value.",
            )
    bad = [str(n) for n in tags if _TAG_NAME_BAD.search(str(n))]
    if bad:
        raise bad_request(
            "InvalidTagNameCharacters",
            f"The tag names '{', '.join(bad)}' have reserved characters '<,>,%,&,\\,?,/' or "
            "control characters.",
        )
    long = [str(n) for n in tags if len(str(n)) > name_max]
    if long:
        raise bad_request(
            "InvalidTagName",
            f"Tag key too large. Following tag name '{', '.join(long)}' exceeded the maximum "
            f"length. Maximum allowed length for tag name - '{name_max}' characters.",
        )
    values = [str(v) for v in tags.values() if len(str(v)) > TAG_VALUE_MAX]
    if values:
        raise bad_request(
            "InvalidTagValueLength",
            f"Tag value too large. Following tag value '{', '.join(values)}' exceeded the "
            f"maximum length. Maximum allowed length for tag value - '{TAG_VALUE_MAX}' characters.",
        )


def norm_location(location: str) -> str:
    """'East US' -> 'eastus', as ARM normalises locations."""
    return location.replace(" ", "").lower()


def get(world: World, rid: str) -> dict[str, Any] | None:
    record: dict[str, Any] | None = resources(world).get(rid.lower())
    return record


def put(world: World, record: dict[str, Any]) -> None:
    resources(world)[record["id"].lower()] = record
    world.store.touch()


def put_ready(
    world: World,
    group: str,
    namespace: str,
    type_name: str,
    name: str,
    fields: dict[str, Any],
    *,
    subscription: str | None = None,
    location: str | None = None,
) -> dict[str, Any]:
    """Store a Succeeded resource (seeding and provisioning; default: the sandbox's own
    subscription and location)."""
    sub = subscription or world.identity.subscription_id
    record = {
        "id": resource_id(sub, group, namespace, type_name, name),
        "name": name,
        "type": f"{namespace}/{type_name}",
        "location": norm_location(location or world.identity.location),
        **fields,
    }
    record["properties"]["provisioningState"] = "Succeeded"
    put(world, record)
    return record


def remove(world: World, rid: str) -> None:
    """Delete a resource and every resource nested under its id."""
    prefix = rid.lower() + "/"
    table = resources(world)
    for key in [k for k in table if k == rid.lower() or k.startswith(prefix)]:
        record = table.pop(key)
        rtype = TYPES.get(record.get("type", "").lower())
        if rtype is not None and rtype.after_delete is not None:
            rtype.after_delete(world, record)
    world.store.touch()


def render(world: World, record: dict[str, Any]) -> dict[str, Any]:
    """The public JSON of a stored record: internal `_...` keys dropped, type hook applied."""
    out = {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}
    rtype = TYPES.get(record.get("type", "").lower())
    if rtype is not None and rtype.render is not None:
        out = rtype.render(world, out)
    return out


def check_subscription(call: Call) -> str:
    """The path's subscription id; 404 SubscriptionNotFound when the sandbox has no such one."""
    sub = call.params["subscription"]
    if sub.lower() not in subscriptions(call.world):
        raise subscription_not_found(sub)
    return sub


def require_group(call: Call, *, writing: bool = False) -> dict[str, Any]:
    """The path's resource group; 404 ResourceGroupNotFound, 409 if being deleted (writes)."""
    sub = check_subscription(call)
    name = call.params["group"]
    record = get(call.world, group_id(sub, name))
    if record is None:
        raise resource_group_not_found(name)
    if writing and record["properties"].get("provisioningState") == "Deleting":
        raise conflict(
            "ResourceGroupBeingDeleted",
            f"The resource group '{record['name']}' is in deprovisioning state and cannot "
            "perform this operation.",
        )
    return record


def busy(world: World, record: dict[str, Any]) -> bool:
    """True while an operation started on this resource is still running."""
    op_id = record.get("_op")
    if not op_id:
        return False
    op = lro.operations(world).get(op_id)
    return bool(op and op["status"] == "InProgress")


def another_operation(world: World, record: dict[str, Any]) -> ApiError:
    return conflict(
        "AnotherOperationInProgress",
        f"Another operation on this or dependent resource is in progress. Resource "
        f"'{record['name']}' is in provisioning state "
        f"'{record.get('properties', {}).get('provisioningState')}'. Retry after it completes.",
    )


NameRule = Callable[[str], None]


def name_rule(pattern: str, code: str, message: str) -> NameRule:
    """A name check raising 400 `code` with `message` (`{name}` filled in) on mismatch."""
    regex = re.compile(pattern)

    def check(name: str) -> None:
        if not regex.fullmatch(name):
            raise bad_request(code, message.format(name=name))

    return check


# ARM's generic rule (Network and others): 1-80 chars, word chars . - _, starts with a word
# character, ends with a word character or '_'.
GENERIC_NAME = name_rule(
    r"\w([\w.-]{0,78}\w)?|\w[\w.-]{0,78}_",
    "InvalidResourceName",
    "Resource name {name} is invalid. The name can be up to 80 characters long. It must "
    "begin with a word character, and it must end with a word character or with '_'. The "
    "name may contain word characters or '.', '-', '_'.",
)


Build = Callable[[Call, "dict[str, Any] | None", "dict[str, Any]"], "dict[str, Any]"]


@dataclass
class ResourceType:
    """A tracked ARM resource type and how the sandbox serves it.

    `build(call, existing, body)` returns the stored record's extra fields (at least
    `properties`; may add `sku`, `kind`, `etag`...): id/name/type/location/tags and
    provisioningState are set here. Styles pick the LRO answer of PUT and DELETE:
    "async" (201/200 + body + Azure-AsyncOperation), "location" (202 + Location, no body),
    "both" (202 + both headers), "sync" (done at once).
    """

    namespace: str
    type_name: str
    operation_prefix: str
    build: Build
    duration_prefix: str
    check_name: NameRule = GENERIC_NAME
    put_style: str = "async"
    delete_style: str = "both"
    create_state: str = "Creating"
    update_state: str = "Updating"
    # A create's operation has ended when it is answered (the answer reads Succeeded and
    # still names the operation), as Network answers a NIC create.
    created_at_once: bool = False
    before_delete: Callable[[Call, dict[str, Any]], None] | None = None
    after_delete: Callable[[World, dict[str, Any]], None] | None = None
    # Called when a PUT's operation is due, before the resource is Succeeded: may raise
    # ApiError (the PUT fails) or lro.Pending (the PUT stays in progress).
    before_provisioned: Callable[[World, dict[str, Any]], None] | None = None
    after_provisioned: Callable[[World, dict[str, Any]], None] | None = None
    render: Callable[[World, dict[str, Any]], dict[str, Any]] | None = None
    patch: Callable[[Call, dict[str, Any], dict[str, Any]], None] | None = None
    tag_name_max: int = TAG_NAME_MAX  # a storage account's tag names: 128
    extra_routes: list[Route] = field(default_factory=list)

    def __post_init__(self) -> None:
        TYPES[self.full_type.lower()] = self

    @property
    def full_type(self) -> str:
        return f"{self.namespace}/{self.type_name}"

    @property
    def item_path(self) -> str:
        return (
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
            f"{self.namespace}/{self.type_name}/{{name}}"
        )

    def rid(self, call: Call) -> str:
        p = call.params
        return resource_id(p["subscription"], p["group"], self.namespace, self.type_name, p["name"])

    def find(self, call: Call) -> dict[str, Any]:
        """The addressed resource; 404 ResourceGroupNotFound / ResourceNotFound."""
        require_group(call)
        record = get(call.world, self.rid(call))
        if record is None or record.get("type", "").lower() != self.full_type.lower():
            raise resource_not_found(self.full_type, call.params["name"], call.params["group"])
        return record

    # -- operations -------------------------------------------------------------------

    def get_reply(self, call: Call) -> Reply:
        return Reply(200, render(call.world, self.find(call)))

    def put_reply(self, call: Call) -> Reply:
        group = require_group(call, writing=True)
        name = call.params["name"]
        self.check_name(name)
        rid = self.rid(call)
        existing = get(call.world, rid)
        body = call.json_object()
        if existing is not None and busy(call.world, existing):
            raise another_operation(call.world, existing)
        location = body.get("location")
        if not location:
            raise bad_request(
                "LocationRequired", "The location property is required for this definition."
            )
        if existing is not None and norm_location(location) != existing["location"]:
            raise conflict(
                "InvalidResourceLocation",
                f"The resource '{name}' already exists in location '{existing['location']}' in "
                f"resource group '{group['name']}'. A resource with the same name cannot be "
                f"created in location '{norm_location(location)}'. Please select a new "
                "resource name.",
            )
        check_tags(body.get("tags"), name_max=self.tag_name_max)
        fields = self.build(call, existing, body)
        record: dict[str, Any] = {
            "id": existing["id"] if existing else rid,
            "name": existing["name"] if existing else name,
            "type": self.full_type,
            "location": norm_location(location),
            **({"tags": body["tags"]} if body.get("tags") is not None else {}),
            **fields,
        }
        record.setdefault("properties", {})
        if existing is not None and "tags" not in record and "tags" in existing:
            record["tags"] = existing["tags"]
        creating = existing is None or existing["properties"].get("provisioningState") == "Failed"
        kind = "create" if existing is None else "update"
        if self.put_style == "sync":
            record["properties"]["provisioningState"] = "Succeeded"
            put(call.world, record)
            if self.after_provisioned is not None:
                self.after_provisioned(call.world, record)
            return Reply(201 if existing is None else 200, render(call.world, record))
        record["properties"]["provisioningState"] = (
            self.create_state if creating else self.update_state
        )
        put(call.world, record)
        at_once = existing is None and self.created_at_once
        op = self._start(call, record, kind, "arm.provisioned", result=True, at_once=at_once)
        if self.put_style == "location":
            return lro.accepted(call.world, op)
        status = 201 if existing is None else 200
        return Reply(
            status, render(call.world, record), lro.headers(call.world, op, location=False)
        )

    def _start(
        self,
        call: Call,
        record: dict[str, Any],
        kind: str,
        done: str,
        result: bool,
        at_once: bool = False,
    ) -> dict[str, Any]:
        """Start a `kind` operation (create, update, delete) on `record`, busy until it ends
        after its configured duration (`at_once`: ended already); a failure marks it Failed."""
        key = f"{self.duration_prefix}.{kind}"
        op = lro.start(
            call,
            namespace=self.namespace,
            duration=0.0 if at_once else call.world.config.duration(key, 5.0),
            kind=key,
            done=done,
            failed="arm.provision_failed",
            args={"id": record["id"]},
            resource_id=record["id"] if result else None,
            location=record["location"],
        )
        record["_op"] = op["id"]
        if at_once:
            lro.end(call.world, op)
        return op

    def patch_reply(self, call: Call) -> Reply:
        record = self.find(call)
        if busy(call.world, record):
            raise another_operation(call.world, record)
        body = call.json_object()
        check_tags(body.get("tags"), name_max=self.tag_name_max)
        if self.patch is not None:
            self.patch(call, record, body)
        if body.get("tags") is not None:
            record["tags"] = dict(body["tags"])
        put(call.world, record)
        return Reply(200, render(call.world, record))

    def delete_reply(self, call: Call) -> Reply:
        require_group(call, writing=True)
        record = get(call.world, self.rid(call))
        if record is None:
            return Reply(204, None)
        if busy(call.world, record):
            raise another_operation(call.world, record)
        if self.before_delete is not None:
            self.before_delete(call, record)
        if self.delete_style == "sync":
            remove(call.world, record["id"])
            return Reply(200, None)
        record["properties"]["provisioningState"] = "Deleting"
        op = self._start(call, record, "delete", "arm.deleted", result=False)
        put(call.world, record)
        if self.delete_style == "async":
            return Reply(202, None, lro.headers(call.world, op, location=False))
        return lro.accepted(call.world, op, async_op=self.delete_style == "both")

    def list_in_group(self, call: Call) -> Reply:
        group = require_group(call)
        prefix = group["id"].lower() + "/providers/"
        return Reply(200, {"value": self._select(call.world, prefix)})

    def list_in_subscription(self, call: Call) -> Reply:
        sub = check_subscription(call)
        return Reply(200, {"value": self._select(call.world, f"/subscriptions/{sub}/".lower())})

    def _select(self, world: World, prefix: str) -> list[dict[str, Any]]:
        kind = self.full_type.lower()
        return [
            render(world, r)
            for k, r in sorted(resources(world).items())
            if k.startswith(prefix) and r.get("type", "").lower() == kind
        ]

    def routes(self) -> list[Route]:
        """GET/PUT/PATCH/DELETE on the item, list in group and in subscription, extras."""
        op = self.operation_prefix
        group_list = (
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
            f"{self.namespace}/{self.type_name}"
        )
        sub_list = f"/subscriptions/{{subscription}}/providers/{self.namespace}/{self.type_name}"
        return [
            *self.extra_routes,
            Route("GET", self.item_path, self.get_reply, f"{op}_Get"),
            Route("PUT", self.item_path, self.put_reply, f"{op}_CreateOrUpdate"),
            Route("PATCH", self.item_path, self.patch_reply, f"{op}_Update"),
            Route("DELETE", self.item_path, self.delete_reply, f"{op}_Delete"),
            Route("GET", group_list, self.list_in_group, f"{op}_ListByResourceGroup"),
            Route("GET", sub_list, self.list_in_subscription, f"{op}_List"),
        ]


@action("arm.provisioned")
def _provisioned(world: World, args: dict[str, Any]) -> None:
    record = get(world, args["id"])
    if record is None:
        return
    rtype = TYPES.get(record["type"].lower())
    if rtype is not None and rtype.before_provisioned is not None:
        rtype.before_provisioned(world, record)
    record["properties"]["provisioningState"] = "Succeeded"
    record.pop("_op", None)
    if rtype is not None and rtype.after_provisioned is not None:
        rtype.after_provisioned(world, record)
    world.store.touch()


@action("arm.provision_failed")
def _provision_failed(world: World, args: dict[str, Any]) -> None:
    record = get(world, args["id"])
    if record is not None:
        record["properties"]["provisioningState"] = "Failed"
        record.pop("_op", None)
        world.store.touch()


@action("arm.deleted")
def _deleted(world: World, args: dict[str, Any]) -> None:
    remove(world, args["id"])
