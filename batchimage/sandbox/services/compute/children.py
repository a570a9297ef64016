"""`ChildType`: an `arm.ResourceType` nested under a parent resource (gallery images and
versions, VM extensions, managed run commands): its URL and id carry the parents' names,
its list is per parent, and a missing parent answers ARM's `ParentResourceNotFound`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import ApiError, not_found
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.routing import Route

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass
class ChildType(arm.ResourceType):
    """A nested type: `type_name` is the ARM type ("galleries/images"); `path` is the URL
    under the provider with the parents' placeholders ("galleries/{gallery}/images")."""

    path: str = ""
    location_from_parent: bool = False

    @property
    def item_path(self) -> str:
        return (
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
            f"{self.namespace}/{self.path}/{{name}}"
        )

    def parent_id(self, call: Call) -> str:
        p = call.params
        parent_path = self.path.rsplit("/", 1)[0]
        filled = _PLACEHOLDER.sub(lambda m: p[m.group(1)], parent_path)
        return f"{arm.group_id(p['subscription'], p['group'])}/providers/{self.namespace}/{filled}"

    def rid(self, call: Call) -> str:
        leaf = self.path.rsplit("/", 1)[1]
        return f"{self.parent_id(call)}/{leaf}/{call.params['name']}"

    def parent(self, call: Call) -> dict[str, Any]:
        """The parent resource; 404 ParentResourceNotFound (or ResourceGroupNotFound)."""
        arm.require_group(call)
        record = arm.get(call.world, self.parent_id(call))
        if record is None:
            name = self.parent_id(call).rsplit("/", 1)[1]
            raise not_found(
                "ParentResourceNotFound",
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{name}' not found.",
            )
        return record

    def find(self, call: Call) -> dict[str, Any]:
        self.parent(call)
        record = arm.get(call.world, self.rid(call))
        if record is None or record.get("type", "").lower() != self.full_type.lower():
            leaf = self.rid(call).split("/providers/", 1)[1]
            raise not_found(
                "ResourceNotFound",
                f"The Resource '{leaf}' under resource group '{call.params['group']}' was not "
                "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            )
        return record

    def put_reply(self, call: Call) -> Reply:
        parent = self.parent(call)
        if self.location_from_parent:
            body = call.json_object()
            if not body.get("location"):
                body["location"] = parent["location"]
                call.body = json.dumps(body).encode()
        return super().put_reply(call)

    def delete_reply(self, call: Call) -> Reply:
        self.parent(call)
        return super().delete_reply(call)

    def list_in_parent(self, call: Call) -> Reply:
        parent = self.parent(call)
        leaf = self.path.rsplit("/", 1)[1].lower()
        prefix = f"{parent['id'].lower()}/{leaf}/"
        kind = self.full_type.lower()
        items = [
            arm.render(call.world, r)
            for k, r in sorted(arm.resources(call.world).items())
            if k.startswith(prefix) and "/" not in k[len(prefix) :] and r["type"].lower() == kind
        ]
        return Reply(200, {"value": items})

    def routes(self) -> list[Route]:
        op = self.operation_prefix
        list_path = self.item_path.rsplit("/", 1)[0]
        return [
            *self.extra_routes,
            Route("GET", self.item_path, self.get_reply, f"{op}_Get"),
            Route("PUT", self.item_path, self.put_reply, f"{op}_CreateOrUpdate"),
            Route("PATCH", self.item_path, self.patch_reply, f"{op}_Update"),
            Route("DELETE", self.item_path, self.delete_reply, f"{op}_Delete"),
            Route("GET", list_path, self.list_in_parent, f"{op}_List"),
        ]


def require(condition: bool, error: ApiError) -> None:
    """Raise `error` unless `condition` holds (keeps validation code flat)."""
    if not condition:
        raise error
