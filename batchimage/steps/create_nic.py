"""Step `build.nic`: the build VM's network interface in the build subnet, private only
(a public IP too only when the spec asks for one)."""

from __future__ import annotations

from typing import Any

from batchimage.azure.arm import NIC, PUBLIC_IP, begin_and_wait, get_or_none, tags_of
from batchimage.core.ownership import BUILD_ROLE, Marks
from batchimage.steps.base import Outputs, RunContext, Step
from batchimage.steps.create_network import CreateNetwork
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.marks import observed, ref_for, resource_tags
from batchimage.steps.names import BuildNames


class NicOutputs(Outputs):
    """The NIC (and public IP, if any) of the build VM."""

    nic_id: str
    public_ip_id: str | None = None


class CreateNic(DeletesCreated, Step[NicOutputs]):
    """The build VM's NIC, named after the build."""

    kind = "create_nic"
    key = "build.nic"

    def __init__(self, spec: Any, network: CreateNetwork) -> None:
        self.names = BuildNames.of(spec)
        self.depends_on = (network,)
        self.public_ip = spec.image.build.public_ip
        self.location = spec.location
        self.tags = dict(spec.tags)

    def inputs(self) -> dict[str, Any]:
        return {
            "nic": self.names.nic,
            "public_ip": self.public_ip,
            "location": self.location,
            "tags": self.tags,
        }

    def check(self, ctx: RunContext) -> NicOutputs | None:
        network = ctx.clients.network
        group, n = self.names.group, self.names
        nic = get_or_none(f"read NIC {n.nic}", network.network_interfaces.get, group, n.nic)
        if nic is None:
            return None
        subnet = ctx.output(CreateNetwork).subnet_id
        configs = nic.ip_configurations or []
        if (
            not configs
            or (configs[0].subnet is None)
            or configs[0].subnet.id.lower() != subnet.lower()
        ):
            return None
        pip_id = configs[0].public_ip_address.id if configs[0].public_ip_address else None
        if self.public_ip and pip_id is None:
            return None
        refs = [ref_for(ctx, nic.id, NIC, tags_of(nic))]
        if pip_id:
            pip = get_or_none(
                f"read public IP {n.public_ip}", network.public_ip_addresses.get, group, n.public_ip
            )
            refs.append(ref_for(ctx, pip_id, PUBLIC_IP, tags_of(pip) if pip is not None else None))
        return NicOutputs(
            nic_id=nic.id,
            public_ip_id=pip_id,
            resources=tuple(refs),
            observed_fingerprint=observed(ctx, tags_of(nic)),
        )

    def apply(self, ctx: RunContext) -> NicOutputs | None:
        network = ctx.clients.network
        group, n = self.names.group, self.names
        ip_config: dict[str, Any] = {
            "subnet": {"id": ctx.output(CreateNetwork).subnet_id},
            "privateIPAllocationMethod": "Dynamic",
        }
        role = {Marks.Tag.ROLE: BUILD_ROLE}
        if self.public_ip:
            old = get_or_none(
                f"read public IP {n.public_ip}", network.public_ip_addresses.get, group, n.public_ip
            )
            pip = begin_and_wait(
                ctx,
                f"create public IP {n.public_ip}",
                f"public IP {n.public_ip}",
                network.public_ip_addresses.begin_create_or_update,
                group,
                n.public_ip,
                {
                    "location": self.location,
                    "tags": resource_tags(ctx, tags_of(old) if old else None, **role),
                    "sku": {"name": "Standard"},
                    "properties": {"publicIPAllocationMethod": "Static"},
                },
            )
            ip_config["publicIPAddress"] = {"id": pip.id}
        old_nic = get_or_none(f"read NIC {n.nic}", network.network_interfaces.get, group, n.nic)
        begin_and_wait(
            ctx,
            f"create NIC {n.nic}",
            f"NIC {n.nic}",
            network.network_interfaces.begin_create_or_update,
            group,
            n.nic,
            {
                "location": self.location,
                "tags": resource_tags(ctx, tags_of(old_nic) if old_nic else None, **role),
                "properties": {
                    "ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}]
                },
            },
        )
        return None

    def describe(self) -> str:
        return f"NIC {self.names.nic}" + (" + public IP" if self.public_ip else "")
