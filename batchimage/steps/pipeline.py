"""Spec -> ordered steps: the one place that knows the pipeline, written out in order.

    preflight  -> preflight
    resolve    -> resolve_image, upload_vhd (a local VHD base)
    build      -> group.<name> (each group used), build.network, build.nic, build.vm
    customize  -> customize.0, customize.1, ... (a file entry's customize.<i>.stage first:
                  its file staged while the VM is built)
    generalize -> generalize
    capture    -> capture.classic (unmanaged disk), capture.gallery, capture.definition,
                  capture.version, capture.vhd_export, capture.managed_image
    pools      -> per spec pool: pool.<id>, pool.<id>.smoke (with a smoke test),
                  pool.<id>.retire
    retention  -> capture.release (exclude_from_latest: until_rolled_out), retention
                  (capture.gallery.keep / keep_days), after every pool's retire step
    cleanup    -> cleanup (unless cleanup: never)

Every step gets the steps it depends on as arguments. Build steps (network, NIC, VM,
customize, generalize, classic capture) are `apply_needs` of the capture steps: they run
only when a capture step has to apply, so a re-apply after cleanup does not rebuild a
captured image. A VHD base without customize steps builds no VM. The engine runs steps in
this order wherever dependencies allow, and concurrently where they are independent.

A step is added by writing its module under `batchimage/steps/` and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from batchimage.steps.base import Step
from batchimage.steps.capture_classic import CaptureClassic
from batchimage.steps.cleanup_build import CleanupBuild
from batchimage.steps.create_gallery import CreateGallery
from batchimage.steps.create_group import CreateGroup
from batchimage.steps.create_image_definition import CreateImageDefinition
from batchimage.steps.create_image_version import CreateImageVersion
from batchimage.steps.create_managed_image import CreateManagedImage
from batchimage.steps.create_network import CreateNetwork
from batchimage.steps.create_nic import CreateNic
from batchimage.steps.create_pool import CreatePool
from batchimage.steps.create_vm import CreateVm
from batchimage.steps.export_vhd import ExportVhd
from batchimage.steps.gallery import builds_vm
from batchimage.steps.generalize_vm import GeneralizeVm
from batchimage.steps.release_image_version import ReleaseImageVersion
from batchimage.steps.resolve_image import ResolveImage
from batchimage.steps.retain_image_versions import RetainImageVersions
from batchimage.steps.retire_pool import RetirePool
from batchimage.steps.run_customize import RunCustomize
from batchimage.steps.run_preflight import RunPreflight
from batchimage.steps.run_smoke_test import RunSmokeTest
from batchimage.steps.upload_vhd import UploadVhd

IMAGE_STAGES = ("preflight", "resolve", "build", "customize", "generalize", "capture", "cleanup")
STAGES = (*IMAGE_STAGES[:-1], "pools", "retention", "cleanup")  # the pipeline's order


@dataclass
class Pipeline:
    """The steps of one spec, by stage; `steps()` lists them in pipeline order."""

    preflight: list[Step[Any]] = field(default_factory=list)
    resolve: list[Step[Any]] = field(default_factory=list)
    build: list[Step[Any]] = field(default_factory=list)
    customize: list[Step[Any]] = field(default_factory=list)
    generalize: list[Step[Any]] = field(default_factory=list)
    capture: list[Step[Any]] = field(default_factory=list)
    pools: list[Step[Any]] = field(default_factory=list)
    retention: list[Step[Any]] = field(default_factory=list)
    cleanup: list[Step[Any]] = field(default_factory=list)

    def steps(self, stages: tuple[str, ...] = STAGES) -> list[Step[Any]]:
        """The steps of `stages` (all by default), in pipeline order; keys are unique."""
        out: list[Step[Any]] = []
        seen: dict[str, str] = {}
        for stage in STAGES:
            if stage not in stages:
                continue
            for step in getattr(self, stage):
                if step.key in seen:
                    raise ValueError(
                        f"step key {step.key!r} from stage {stage} repeats {seen[step.key]}"
                    )
                seen[step.key] = stage
                out.append(step)
        return out


def build_steps(spec: Any, stages: tuple[str, ...] = STAGES) -> list[Step[Any]]:
    """The steps `spec` needs (of `stages`: all by default), in pipeline order."""
    return pipeline(spec).steps(stages)


def pipeline(spec: Any) -> Pipeline:
    """Every step `spec` needs, wired to the steps it depends on."""
    out = Pipeline()
    out.preflight.append(RunPreflight(spec))
    resolve = ResolveImage(spec)
    out.resolve.append(resolve)
    base_source: Step[Any] = resolve
    if spec.image.base.vhd_file is not None:
        base_source = UploadVhd(spec)
        out.resolve.append(base_source)
    groups: dict[str, CreateGroup] = {}

    def group(name: str | None) -> CreateGroup:
        name = name or spec.resource_group
        if name not in groups:
            groups[name] = CreateGroup(name, spec.location, dict(spec.tags))
            out.build.append(groups[name])
        return groups[name]

    capture = spec.image.capture
    build_keys: list[str] = []
    staged: list[str] = []
    generalize: GeneralizeVm | None = None
    vm_source: Step[Any] | None = None
    if builds_vm(spec):
        build_group = group(spec.resource_group)
        network = CreateNetwork(spec, build_group)
        nic = CreateNic(spec, network)
        vm = CreateVm(spec, build_group, nic)
        out.build += [network, nic, vm]
        last: Step[Any] = vm
        customized: list[RunCustomize] = []
        for index in range(len(spec.image.customize)):
            customized.append(RunCustomize(spec, index, vm, None if last is vm else last))
            last = customized[-1]
            out.customize += [s for s in (last.stage, last) if s is not None]
        generalize = GeneralizeVm(spec, vm, last)
        out.generalize.append(generalize)
        build_keys = [build_group.key, network.key, nic.key, vm.key] + [s.key for s in customized]
        staged = [s.stage.key for s in customized if s.stage is not None]
        vm_source = generalize
        if spec.image.build.os_disk.type == "unmanaged":
            vm_source = CaptureClassic(spec, generalize)
            out.capture.append(vm_source)
    gallery = CreateGallery(spec, group(capture.gallery.resource_group))
    definition = CreateImageDefinition(spec, gallery)
    source = vm_source or base_source
    version = CreateImageVersion(
        spec, definition, source, source_is_need=vm_source is not None, base=resolve
    )
    out.capture += [gallery, definition, version]
    if capture.vhd_export is not None:
        out.capture.append(ExportVhd(spec, version, source))
    if capture.managed_image is not None and generalize is not None:
        out.capture.append(
            CreateManagedImage(spec, group(capture.managed_image.resource_group), generalize)
        )

    rollout: tuple[type[Step[Any]] | Step[Any], ...] = ()
    for pool in spec.pools:
        create = CreatePool(spec, pool, version, resolve)
        last_pool: Step[Any] = create
        out.pools.append(create)
        if pool.smoke_test is not None:
            last_pool = RunSmokeTest(spec, pool, create)
            out.pools.append(last_pool)
        out.pools.append(RetirePool(spec, pool, create, last_pool))
    if spec.pools:
        rollout = (RetirePool,)

    if capture.gallery.exclude_from_latest == "until_rolled_out":
        release = ReleaseImageVersion(definition, version, rollout)
        out.retention.append(release)
        rollout = (*rollout, release)
    if capture.gallery.retains:
        out.retention.append(RetainImageVersions(spec, definition, version, rollout))

    if spec.cleanup != "never" and build_keys:
        finals = [s for s in out.capture if s not in (gallery, definition)]
        vm_steps = [generalize.key] if generalize is not None else []
        out.cleanup.append(CleanupBuild(spec, build_keys, finals, vm_steps + staged))
    return out
