"""The top-level `Spec` model: one pipeline (image build + capture + pools), its spec-wide
rules, and the defaults that depend on other fields (filled in after validation, so code
reading a loaded spec never has to repeat them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from batchimage.core.ownership import Marks
from batchimage.spec.common import (
    PipelineName,
    Region,
    ResourceGroupName,
    Rule,
    SpecModel,
    Tags,
    Uuid,
    raise_rules,
)
from batchimage.spec.image import Image, OsType, Replica
from batchimage.spec.pool import Pool
from batchimage.spec.settings import (
    AzureBlobState,
    Cloud,
    LocalState,
    Retry,
    State,
    Timeouts,
    default_state_path,
)

_SCRIPT_OS: dict[str, OsType] = {
    "shell": "linux",
    "shell_file": "linux",
    "powershell": "windows",
    "powershell_file": "windows",
}


class Spec(SpecModel):
    """One batchimage pipeline: a custom image built, captured to a gallery, and the Batch
    pools that run on it."""

    name: PipelineName = Field(
        description="Pipeline name: 3-40 lowercase letters, digits and hyphens; resource "
        "names derive from it."
    )
    cloud: Cloud = Field(
        "AzurePublicCloud",
        description="AzurePublicCloud (default), AzureUSGovernment, AzureChinaCloud, sandbox "
        "(the local Azure), or a custom profile with its endpoints.",
    )
    subscription: Uuid | None = Field(
        None, description="Subscription id; may be omitted only with cloud: sandbox."
    )
    location: Region = Field(description="Region of the build and the gallery, e.g. eastus.")
    resource_group: ResourceGroupName = Field(
        description="Resource group for build resources, and the default for every other "
        "resource group in the spec (created when missing)."
    )
    tags: Tags = Field(default_factory=dict, description="Azure tags on every created resource.")
    image: Image = Field(description="The custom image to build and capture.")
    pools: list[Pool] = Field(default_factory=list, description="Batch pools on the image.")
    cleanup: Literal["always", "on_success", "never"] = Field(
        "on_success",
        description="Delete the build resources this run created: always, on_success "
        "(default; keep them after a failure to debug) or never.",
    )
    state: State = Field(
        default_factory=LocalState,
        description="Where the run's journal is kept: a local file (default) or an Azure blob.",
    )
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Step time limits.")
    retry: Retry = Field(default_factory=Retry, description="Retry of transient failures.")

    _source_path: Path | None = PrivateAttr(None)
    _source_sha256: str = PrivateAttr("")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def source_path(self) -> Path | None:
        """The spec file this was loaded from (None for text loaded without a file)."""
        return self._source_path

    @property
    def source_sha256(self) -> str:
        """SHA-256 (hex) of the spec file's raw bytes, as read."""
        return self._source_sha256

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the spec resolve against."""
        return self._base_dir

    @property
    def os_type(self) -> OsType:
        """The image's OS (given or inferred; always known once loaded)."""
        assert self.image.base.os_type is not None
        return self.image.base.os_type

    @property
    def local_state_path(self) -> Path | None:
        """The resolved state file for the local backend; None for azure_blob."""
        return self.state.path if isinstance(self.state, LocalState) else None

    def attach_source(self, path: Path | None, sha256: str, base_dir: Path) -> None:
        """Record where this spec came from (called by the loader)."""
        self._source_path = path
        self._source_sha256 = sha256
        self._base_dir = base_dir

    @model_validator(mode="after")
    def _spec_rules(self, info: ValidationInfo) -> Spec:
        rules: list[Rule] = []
        if self.subscription is None and self.cloud != "sandbox":
            rules.append((("subscription",), "required (only cloud: sandbox may omit it)"))
        rules += self._os_rules()
        rules += self._pool_rules()
        rules += self._disk_rules()
        rules += self._region_rules()
        rules += self._build_vm_tag_rules()
        raise_rules(rules)
        self._fill_defaults(Path((info.context or {}).get("base_dir") or Path.cwd()))
        return self

    def _os_rules(self) -> list[Rule]:
        base, definition = self.image.base, self.image.capture.gallery.definition
        inferred = base.marketplace.inferred_os_type() if base.marketplace else None
        os_type = base.os_type or definition.os_type or inferred
        where = ("image", "base", "os_type")
        if os_type is None:
            return [(where, "required for a VHD base (linux or windows)")]
        if definition.os_type not in (None, os_type):
            at = ("image", "capture", "gallery", "definition", "os_type")
            return [(at, f"'{definition.os_type}' differs from the base image's '{os_type}'")]
        base.os_type = definition.os_type = os_type
        rules: list[Rule] = []
        for index, step in enumerate(self.image.customize):
            wanted = _SCRIPT_OS.get(step.action)
            if wanted is not None and wanted != os_type:
                step_at: tuple[str | int, ...] = ("image", "customize", index, step.action)
                rules.append((step_at, f"a {wanted} script step cannot run on a {os_type} image"))
        build = self.image.build
        if os_type == "windows" and build.ssh_public_key is not None:
            rules.append((("image", "build", "ssh_public_key"), "only Linux images take this"))
        if os_type == "linux" and build.admin_password is not None:
            rules.append((("image", "build", "admin_password"), "only Windows images take this"))
        return rules

    def _build_vm_tag_rules(self) -> list[Rule]:
        """The build VM carries the spec's tags, batchimage's marks and one mark per
        `restart` step: together within Azure's 50 tags on a resource."""
        restarts = sum(1 for step in self.image.customize if step.action == "restart")
        room = Marks.Tag.LIMIT - Marks.Tag.BUILD_VM_MARKS - len(self.tags)
        if restarts <= room:
            return []
        return [
            (
                ("tags",),
                f"{len(self.tags)} tags and {restarts} restart steps: the build VM would carry "
                f"{len(self.tags) + Marks.Tag.BUILD_VM_MARKS + restarts} tags (the spec's, "
                f"{Marks.Tag.BUILD_VM_MARKS} of batchimage's and one per restart step), and "
                f"Azure allows {Marks.Tag.LIMIT}: drop {restarts - room} tag(s) or restart step(s)",
            )
        ]

    def _region_rules(self) -> list[Rule]:
        """Region names of the public cloud are known (batchimage/data/azure_public_regions.json);
        other clouds' are checked by preflight against the subscription's locations."""
        if self.cloud != "AzurePublicCloud":
            return []
        from batchimage.spec.regions import public_regions, unknown_region

        known = public_regions()
        named: list[tuple[tuple[str | int, ...], str | None]] = [(("location",), self.location)]
        named += [
            (("pools", i, "batch_account", "location"), pool.batch_account.location)
            for i, pool in enumerate(self.pools)
        ]
        named += [
            (("image", "capture", "gallery", "replicas", i, "region"), replica.region)
            for i, replica in enumerate(self.image.capture.gallery.replicas or [])
        ]
        where = "in the Azure public cloud"
        return [
            (at, unknown_region(name, known, where))
            for at, name in named
            if name is not None and name not in known
        ]

    def _disk_rules(self) -> list[Rule]:
        """Public Azure retired unmanaged disks (docs/azure-behaviours.md, Disks)."""
        disk = self.image.build.os_disk
        if self.cloud != "AzurePublicCloud" or disk.type != "unmanaged" or not self.image.builds_vm:
            return []
        return [
            (
                ("image", "build", "os_disk", "type"),
                "unmanaged disks are retired in public Azure (no new ones since 30 January "
                "2024; VMs on them cannot start after 31 March 2026): use type: managed (the "
                "default) - the image still becomes a gallery version, and capture.vhd_export "
                "writes the VHD the classic flow made",
            )
        ]

    def _pool_rules(self) -> list[Rule]:
        rules: list[Rule] = []
        if self.pools and self.image.builds_vm and not self.image.generalize.enabled:
            rules.append(
                (
                    ("image", "generalize", "enabled"),
                    "Batch pools need a generalized image (a specialized one cannot make a "
                    "pool): remove 'enabled: false', or the pools",
                )
            )
        seen: set[tuple[str, str]] = set()
        for index, pool in enumerate(self.pools):
            key = (pool.batch_account.name, pool.id.lower())
            if key in seen:
                message = f"pool id '{pool.id}' is used twice in account '{key[0]}'"
                rules.append((("pools", index, "id"), message))
            seen.add(key)
        replicas = self.image.capture.gallery.replicas
        if not replicas:
            return rules
        regions = {replica.region for replica in replicas}
        if self.location not in regions:
            message = f"must include the spec's location '{self.location}' (the image's source)"
            rules.append((("image", "capture", "gallery", "replicas"), message))
        for pool in self.pools:
            region = pool.batch_account.location
            if region is not None and region not in regions:
                message = (
                    f"must include '{region}', the region of pool '{pool.id}' "
                    f"(Batch account '{pool.batch_account.name}')"
                )
                rules.append((("image", "capture", "gallery", "replicas"), message))
        return rules

    def _fill_defaults(self, base_dir: Path) -> None:
        group = self.resource_group
        capture = self.image.capture
        owners: list[Any] = [
            capture.gallery,
            capture.vhd_export,
            capture.managed_image,
            self.image.base.vhd_file,
        ]
        owners += [pool.batch_account for pool in self.pools]
        for owner in owners:
            if owner is not None and owner.resource_group is None:
                owner.resource_group = group
        if not capture.gallery.replicas:
            regions = [self.location] + [p.batch_account.location for p in self.pools]
            unique = dict.fromkeys(region for region in regions if region)
            capture.gallery.replicas = [Replica(region=region) for region in unique]
        build = self.image.build
        if build.timeout_s is None:
            build.timeout_s = self.timeouts.build_s
        for step in self.image.customize:
            if step.timeout_s is None:
                step.timeout_s = self.timeouts.customize_step_s
        if isinstance(self.state, AzureBlobState):
            self.state.blob = self.state.blob or f"{self.name}.json"
            self.state.resource_group = self.state.resource_group or group
        elif self.state.path is None:
            self.state.path = default_state_path(base_dir, self.name)
