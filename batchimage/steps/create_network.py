"""Step `build.network`: the build VM's private network - an NSG and a VNet with one subnet
(no inbound rules beyond Azure's defaults; customization uses Run Command), or the existing
subnet the spec names (used as is, never written or deleted)."""

from __future__ import annotations

from typing import Any

from batchimage.azure.arm import NSG, SUBNET, VNET, begin_and_wait, get_or_none, tags_of
from batchimage.core.ownership import BUILD_ROLE, Marks
from batchimage.steps.base import Outputs, RunContext, Step
from batchimage.steps.create_group import CreateGroup
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.marks import observed, ref_for, resource_tags
from batchimage.steps.names import BuildNames


class NetworkOutputs(Outputs):
    """Where the build VM's NIC goes."""

    subnet_id: str


class CreateNetwork(DeletesCreated, Step[NetworkOutputs]):
    """A VNet + subnet + NSG named after the build (or the spec's existing subnet)."""

    kind = "create_network"
    key = "build.network"

    def __init__(self, spec: Any, group: CreateGroup) -> None:
        self.names = BuildNames.of(spec)
        self.depends_on = (group,)
        self.network = spec.image.build.network
        self.location = spec.location
        self.tags = dict(spec.tags)

    def inputs(self) -> dict[str, Any]:
        if self.network.subnet_id:
            return {"subnet_id": self.network.subnet_id}
        return {
            "vnet": self.names.vnet,
            "nsg": self.names.nsg,
            "address_space": self.network.address_space,
            "location": self.location,
            "tags": self.tags,
        }

    def check(self, ctx: RunContext) -> NetworkOutputs | None:
        network = ctx.clients.network
        group, n = self.names.group, self.names
        if self.network.subnet_id:
            from batchimage.azure.ids import parse_id

            p = parse_id(self.network.subnet_id)
            vnet_name, subnet_name = p["names"].split("/")[:2]
            existing = get_or_none(
                f"read subnet {subnet_name}",
                network.subnets.get,
                p["group"],
                vnet_name,
                subnet_name,
            )
            if existing is None:
                return None
            ref = ref_for(ctx, existing.id, SUBNET, None)
            return NetworkOutputs(
                subnet_id=existing.id, resources=(ref,), observed_fingerprint=ctx.fingerprint
            )
        nsg = get_or_none(f"read NSG {n.nsg}", network.network_security_groups.get, group, n.nsg)
        vnet = get_or_none(f"read VNet {n.vnet}", network.virtual_networks.get, group, n.vnet)
        if nsg is None or vnet is None:
            return None
        subnet = next((s for s in vnet.subnets or [] if s.name == n.subnet), None)
        if subnet is None or subnet.network_security_group is None:
            return None
        tags = tags_of(vnet)
        return NetworkOutputs(
            subnet_id=subnet.id,
            resources=(
                ref_for(ctx, vnet.id, VNET, tags),
                ref_for(ctx, nsg.id, NSG, tags_of(nsg)),
            ),
            observed_fingerprint=observed(ctx, tags),
        )

    def apply(self, ctx: RunContext) -> NetworkOutputs | None:
        if self.network.subnet_id:
            from batchimage.core.errors import PermanentAzureError

            raise PermanentAzureError(
                f"subnet {self.network.subnet_id} (image.build.network.subnet_id) was not found; "
                "create it or remove subnet_id to let batchimage make a private network",
                code="SubnetNotFound",
                status=404,
            )
        network = ctx.clients.network
        group, n = self.names.group, self.names
        old_nsg = get_or_none(
            f"read NSG {n.nsg}", network.network_security_groups.get, group, n.nsg
        )
        nsg = begin_and_wait(
            ctx,
            f"create NSG {n.nsg}",
            f"NSG {n.nsg}",
            network.network_security_groups.begin_create_or_update,
            group,
            n.nsg,
            {
                "location": self.location,
                "tags": resource_tags(ctx, _tags(old_nsg), **{Marks.Tag.ROLE: BUILD_ROLE}),
                "properties": {"securityRules": []},
            },
        )
        old_vnet = get_or_none(f"read VNet {n.vnet}", network.virtual_networks.get, group, n.vnet)
        space = self.network.address_space
        begin_and_wait(
            ctx,
            f"create VNet {n.vnet}",
            f"VNet {n.vnet}",
            network.virtual_networks.begin_create_or_update,
            group,
            n.vnet,
            {
                "location": self.location,
                "tags": resource_tags(ctx, _tags(old_vnet), **{Marks.Tag.ROLE: BUILD_ROLE}),
                "properties": {
                    "addressSpace": {"addressPrefixes": [space]},
                    "subnets": [
                        {
                            "name": n.subnet,
                            "properties": {
                                "addressPrefix": space,
                                "networkSecurityGroup": {"id": nsg.id},
                                # outbound internet for package installs; no inbound path
                                "defaultOutboundAccess": True,
                            },
                        }
                    ],
                },
            },
        )
        return None

    def describe(self) -> str:
        if self.network.subnet_id:
            return f"existing subnet {self.network.subnet_id.rsplit('/', 1)[-1]}"
        return f"private network {self.names.vnet} + {self.names.nsg}"


def _tags(found: Any) -> dict[str, str] | None:
    return tags_of(found) if found is not None else None
