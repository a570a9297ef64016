"""Step `build.network`: the build VM's private network - an NSG and a VNet with one subnet
(no inbound rules beyond Azure's defaults; customization uses Run Command), or the existing
subnet the spec names (used as is, never written or deleted)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from batchimage.azure.arm import NSG, SUBNET, VNET, tags_of
from batchimage.azure.ids import parse_id
from batchimage.azure.network import read_nsg, read_subnet, read_vnet, write_nsg, write_vnet
from batchimage.core.errors import PermanentAzureError
from batchimage.core.ownership import BUILD_ROLE, Marks
from batchimage.spec import BuildNetwork
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.create_group import CreateGroup
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.marks import observed, ref_for, resource_tags
from batchimage.steps.names import BuildNames


class NetworkOutputs(Outputs):
    """Where the build VM's NIC goes."""

    subnet_id: str


class NetworkInputs(StepInputs):
    """The spec's build network (an existing subnet, or the address space of ours), the
    region and the spec's tags; the build's names (the VNet's and NSG's are hashed)."""

    network: BuildNetwork
    location: str
    tags: dict[str, str]
    names: BuildNames = Field(exclude=True)


class CreateNetwork(DeletesCreated, Step[NetworkOutputs]):
    """A VNet + subnet + NSG named after the build (or the spec's existing subnet)."""

    given: NetworkInputs

    kind = "create_network"
    key = "build.network"
    apply_observes = True

    def __init__(self, spec: Any, group: CreateGroup) -> None:
        self.given = NetworkInputs(
            network=spec.image.build.network,
            location=spec.location,
            tags=dict(spec.tags),
            names=BuildNames.of(spec),
        )
        self.depends_on = (group,)

    def inputs(self) -> dict[str, Any]:
        if self.given.network.subnet_id:  # used as it is: only which one
            return {"subnet_id": self.given.network.subnet_id}
        return {
            "vnet": self.given.names.vnet,
            "nsg": self.given.names.nsg,
            "address_space": self.given.network.address_space,
            "location": self.given.location,
            "tags": self.given.tags,
        }

    def absent(self, ctx: RunContext) -> bool:
        """No build network of this name (its check needs the VNet): a spec's own subnet
        is for the check to find."""
        n = self.given.names
        return not self.given.network.subnet_id and read_vnet(ctx, n.group, n.vnet) is None

    def check(self, ctx: RunContext) -> NetworkOutputs | None:
        group, n = self.given.names.group, self.given.names
        if self.given.network.subnet_id:
            p = parse_id(self.given.network.subnet_id)
            vnet_name, subnet_name = p["names"].split("/")[:2]
            existing = read_subnet(ctx, p["group"], vnet_name, subnet_name)
            if existing is None:
                return None
            ref = ref_for(ctx, str(existing.id), SUBNET, None)
            return NetworkOutputs(
                subnet_id=str(existing.id), resources=(ref,), observed_fingerprint=ctx.fingerprint
            )
        return self._outputs(ctx, read_nsg(ctx, group, n.nsg), read_vnet(ctx, group, n.vnet))

    def _outputs(self, ctx: RunContext, nsg: Any, vnet: Any) -> NetworkOutputs | None:
        """The outputs of our NSG and VNet as read (None: either missing, or no subnet
        behind the NSG)."""
        if nsg is None or vnet is None:
            return None
        subnet = next((s for s in vnet.subnets or [] if s.name == self.given.names.subnet), None)
        if subnet is None or subnet.network_security_group is None:
            return None
        tags = tags_of(vnet)
        return NetworkOutputs(
            subnet_id=str(subnet.id),
            resources=(
                ref_for(ctx, str(vnet.id), VNET, tags),
                ref_for(ctx, str(nsg.id), NSG, tags_of(nsg)),
            ),
            observed_fingerprint=observed(ctx, tags),
        )

    def apply(self, ctx: RunContext) -> NetworkOutputs | None:
        if self.given.network.subnet_id:
            raise PermanentAzureError(
                f"subnet {self.given.network.subnet_id} (image.build.network.subnet_id) was not "
                "found; create it or remove subnet_id to let batchimage make a private network",
                code="SubnetNotFound",
                status=404,
            )
        group, n = self.given.names.group, self.given.names
        role = {Marks.Tag.ROLE: BUILD_ROLE}
        old_nsg = read_nsg(ctx, group, n.nsg)
        nsg = write_nsg(
            ctx,
            group,
            n.nsg,
            location=self.given.location,
            tags=resource_tags(ctx, self.given.tags, _tags(old_nsg), **role),
        )
        old_vnet = read_vnet(ctx, group, n.vnet)
        vnet = write_vnet(
            ctx,
            group,
            n.vnet,
            location=self.given.location,
            tags=resource_tags(ctx, self.given.tags, _tags(old_vnet), **role),
            space=self.given.network.address_space,
            subnet=n.subnet,
            nsg_id=str(nsg.id),
        )
        return self._outputs(ctx, nsg, vnet)

    def describe(self) -> str:
        if self.given.network.subnet_id:
            return f"existing subnet {self.given.network.subnet_id.rsplit('/', 1)[-1]}"
        return f"private network {self.given.names.vnet} + {self.given.names.nsg}"


def _tags(found: Any) -> dict[str, str] | None:
    return tags_of(found) if found is not None else None
