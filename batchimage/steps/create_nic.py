"""Step `build.nic`: the build VM's network interface in the build subnet, private only
(a public IP too only when the spec asks for one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from batchimage.azure.arm import NIC, PUBLIC_IP, tags_of
from batchimage.azure.network import read_nic, read_public_ip, write_nic, write_public_ip
from batchimage.core.ownership import BUILD_ROLE, Marks
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.create_network import CreateNetwork
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.marks import observed, ref_for, resource_tags
from batchimage.steps.names import BuildNames


class NicOutputs(Outputs):
    """The NIC (and public IP, if any) of the build VM."""

    nic_id: str
    public_ip_id: str | None = None


class NicInputs(StepInputs):
    """The NIC's name, whether it has a public IP, its region and the spec's tags; read, not
    hashed: the build's other names."""

    nic: str
    public_ip: bool
    location: str
    tags: dict[str, str]
    names: BuildNames = Field(exclude=True)


class CreateNic(DeletesCreated, Step[NicOutputs]):
    """The build VM's NIC, named after the build."""

    given: NicInputs

    kind = "create_nic"
    key = "build.nic"
    apply_observes = True

    def __init__(self, spec: Any, network: CreateNetwork) -> None:
        names = BuildNames.of(spec)
        self.given = NicInputs(
            nic=names.nic,
            public_ip=spec.image.build.public_ip,
            location=spec.location,
            tags=dict(spec.tags),
            names=names,
        )
        self.depends_on = (network,)

    def absent(self, ctx: RunContext) -> bool:
        """No NIC of this name."""
        return read_nic(ctx, self.given.names.group, self.given.names.nic) is None

    def check(self, ctx: RunContext) -> NicOutputs | None:
        group, n = self.given.names.group, self.given.names
        nic = read_nic(ctx, group, n.nic)
        if nic is None:
            return None
        return self._outputs(ctx, nic, lambda: read_public_ip(ctx, group, n.public_ip))

    def _outputs(self, ctx: RunContext, nic: Any, pip: Callable[[], Any]) -> NicOutputs | None:
        """The outputs of our NIC as read, in the build subnet (`pip`: the public IP, read
        when the NIC has one); None when it is elsewhere or lacks the public IP asked for."""
        subnet = ctx.output(CreateNetwork).subnet_id
        configs = nic.ip_configurations or []
        if (
            not configs
            or configs[0].subnet is None
            or str(configs[0].subnet.id).lower() != subnet.lower()
        ):
            return None
        pip_id = configs[0].public_ip_address.id if configs[0].public_ip_address else None
        if self.given.public_ip and pip_id is None:
            return None
        refs = [ref_for(ctx, str(nic.id), NIC, tags_of(nic))]
        if pip_id:
            found = pip()
            refs.append(ref_for(ctx, pip_id, PUBLIC_IP, tags_of(found) if found else None))
        return NicOutputs(
            nic_id=str(nic.id),
            public_ip_id=pip_id,
            resources=tuple(refs),
            observed_fingerprint=observed(ctx, tags_of(nic)),
        )

    def apply(self, ctx: RunContext) -> NicOutputs | None:
        group, n = self.given.names.group, self.given.names
        role = {Marks.Tag.ROLE: BUILD_ROLE}
        pip_id, pip = None, None
        if self.given.public_ip:
            old = read_public_ip(ctx, group, n.public_ip)
            pip = write_public_ip(
                ctx,
                group,
                n.public_ip,
                location=self.given.location,
                tags=resource_tags(ctx, self.given.tags, tags_of(old) if old else None, **role),
            )
            pip_id = str(pip.id)
        old_nic = read_nic(ctx, group, n.nic)
        nic = write_nic(
            ctx,
            group,
            n.nic,
            location=self.given.location,
            tags=resource_tags(ctx, self.given.tags, tags_of(old_nic) if old_nic else None, **role),
            subnet_id=ctx.output(CreateNetwork).subnet_id,
            public_ip_id=pip_id,
        )
        return self._outputs(ctx, nic, lambda: pip)

    def describe(self) -> str:
        return f"NIC {self.given.names.nic}" + (" + public IP" if self.given.public_ip else "")
