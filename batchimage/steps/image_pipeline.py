"""The image pipeline's steps for a spec, built together (they reference each other) and
handed to `batchimage.steps.stages.STAGES` one stage at a time:

    preflight  -> preflight
    resolve    -> resolve_image, upload_vhd (a local VHD base)
    build      -> group.<name> (each group used), build.network, build.nic, build.vm
    customize  -> customize.0, customize.1, ...
    generalize -> generalize
    capture    -> capture.classic (unmanaged disk), capture.gallery, capture.definition,
                  capture.version, capture.vhd_export, capture.managed_image
    cleanup    -> cleanup (unless cleanup: never)

Build steps (network, NIC, VM, customize, generalize, classic capture) are `apply_needs`
of the capture steps: they run only when a capture step has to apply, so a re-apply after
cleanup does not rebuild a captured image. A VHD base without customize steps builds no VM.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchimage.azure.gallery import builds_vm
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
from batchimage.steps.create_vm import CreateVm
from batchimage.steps.export_vhd import ExportVhd
from batchimage.steps.generalize_vm import GeneralizeVm
from batchimage.steps.resolve_image import ResolveImage
from batchimage.steps.run_customize import RunCustomize
from batchimage.steps.run_preflight import RunPreflight
from batchimage.steps.upload_vhd import UploadVhd

STAGE_NAMES = ("preflight", "resolve", "build", "customize", "generalize", "capture", "cleanup")


@dataclass
class ImageSteps:
    """The steps of each stage, in order."""

    preflight: list[Step[Any]] = field(default_factory=list)
    resolve: list[Step[Any]] = field(default_factory=list)
    build: list[Step[Any]] = field(default_factory=list)
    customize: list[Step[Any]] = field(default_factory=list)
    generalize: list[Step[Any]] = field(default_factory=list)
    capture: list[Step[Any]] = field(default_factory=list)
    cleanup: list[Step[Any]] = field(default_factory=list)


def make_image_steps(spec: Any) -> ImageSteps:
    """Every image step `spec` needs, wired together."""
    out = ImageSteps()
    out.preflight.append(RunPreflight())
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
    generalize: GeneralizeVm | None = None
    vm_source: Step[Any] | None = None
    if builds_vm(spec):
        build_group = group(spec.resource_group)
        network = CreateNetwork(spec, build_group)
        nic = CreateNic(spec, network)
        vm = CreateVm(spec, build_group, nic)
        out.build += [network, nic, vm]
        last: Step[Any] = vm
        for index in range(len(spec.image.customize)):
            last = RunCustomize(spec, index, vm, None if last is vm else last)
            out.customize.append(last)
        generalize = GeneralizeVm(spec, vm, last)
        out.generalize.append(generalize)
        build_keys = [build_group.key, network.key, nic.key, vm.key] + [
            s.key for s in out.customize
        ]
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
    if spec.cleanup != "never" and build_keys:
        finals = [s for s in out.capture if s not in (gallery, definition)]
        vm_steps = [generalize.key] if generalize is not None else []
        out.cleanup.append(CleanupBuild(spec, build_keys, finals, vm_steps))
    return out


_cache: dict[int, tuple[Any, ImageSteps]] = {}
_lock = threading.Lock()
CACHED = 256  # specs whose steps are kept; many specs in one command build theirs at once


def image_steps(spec: Any) -> ImageSteps:
    """The image steps of `spec`, built once per spec object (every stage shares them).
    The oldest spec's are forgotten first, one at a time: a spec whose stages are being
    built while others are keeps its own (clearing them all made a later stage build new
    steps, which the earlier stages' did not depend on)."""
    with _lock:
        hit = _cache.get(id(spec))
        if hit is not None and hit[0] is spec:
            return hit[1]
        steps = make_image_steps(spec)
        while len(_cache) >= CACHED:
            del _cache[next(iter(_cache))]
        _cache[id(spec)] = (spec, steps)
        return steps


def stage(name: str) -> Callable[[Any], list[Step[Any]]]:
    """The STAGES builder of stage `name` (one of STAGE_NAMES)."""
    if name not in STAGE_NAMES:
        raise ValueError(f"unknown image stage {name!r}")

    def build(spec: Any) -> list[Step[Any]]:
        return list(getattr(image_steps(spec), name))

    build.__name__ = f"{name}_stage"
    return build
