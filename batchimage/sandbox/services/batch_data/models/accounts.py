"""The Batch account a `/batch/<account>/...` request is for (from the management
service's store), and what the data plane needs to know about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.services.batch_management.models import find_account, properties


@dataclass(frozen=True)
class Account:
    """One Batch account as the data plane sees it."""

    name: str
    id: str  # the ARM resource id (the scope of its role assignments)
    subscription_id: str
    location: str
    mode: str  # "BatchService" | "UserSubscription"
    properties: dict[str, Any]

    @property
    def key(self) -> str:
        return self.name.lower()

    def url(self, world: World) -> str:
        """The account's base URL (what accountEndpoint names, with https://)."""
        return f"{world.base_url}/batch/{self.name}"


def account_of(world: World, name: str) -> Account | None:
    """The account called `name`, or None when the management plane has none."""
    record = find_account(world, name)
    if record is None:
        return None
    props = properties(world, record)
    return Account(
        name=record["name"],
        id=record["id"],
        subscription_id=record["id"].split("/")[2],
        location=record["location"],
        mode=str(props.get("poolAllocationMode", "BatchService")),
        properties=props,
    )


def require_account(call: Call) -> Account:
    """The path's account. Azure has no HTTP answer for an unknown account (its host name
    does not resolve); the sandbox shares one host, so it answers Batch's generic 404
    ResourceNotFound."""
    name = call.params["account"]
    account = account_of(call.world, name)
    if account is None or account.properties.get("provisioningState") not in ("Succeeded", None):
        raise ApiError(
            404,
            "ResourceNotFound",
            f"The specified resource does not exist: no Batch account '{name}' in this sandbox "
            f"(on Azure its endpoint {name}.<region>.batch.azure.com would not resolve).",
        )
    return account
