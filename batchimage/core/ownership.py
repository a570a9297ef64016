"""The names batchimage writes on Azure resources - tags, pool metadata, blob metadata - to
say who made a resource and what it knows about it; every one is defined here, in `Marks`.

    Marks.Tag.PIPELINE                          "batchimage-pipeline" (an ARM tag)
    Marks.Pool.RUN                              "batchimage-run" (Batch pool metadata)
    Marks.Blob.PIPELINE                         "batchimage_pipeline" (blob metadata)
    Marks.Tag.creator(tags, "demo")             the run of pipeline "demo" that made it, or None

The values are what existing deployments carry: changing one makes batchimage lose track of
what it made before, so they never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class _Store:
    """One place Azure keeps marks, with the pair of names that say who made a resource."""

    PIPELINE: ClassVar[str]
    RUN: ClassVar[str]

    @classmethod
    def creator(cls, marks: Mapping[str, str] | None, pipeline: str) -> str | None:
        """The run named by `marks` when they say `pipeline` made the resource, else None."""
        marks = marks or {}
        return marks.get(cls.RUN) if marks.get(cls.PIPELINE) == pipeline else None


class Marks:
    """Every name batchimage writes on an Azure resource, grouped by where Azure keeps it."""

    class Tag(_Store):
        """ARM tags, on resource groups, VMs, NICs, disks, networks, images and gallery items.
        Tag names may hold hyphens, so they read `batchimage-<what>`."""

        PIPELINE = "batchimage-pipeline"  # the spec's name
        RUN = "batchimage-run"  # the run that created the resource
        STEP = "batchimage-step"  # the step that wrote it
        FINGERPRINT = "batchimage-fingerprint"  # that step's fingerprint
        IMAGE = "batchimage-image"  # the image fingerprint it was made or generalized for
        BASE = "batchimage-base"  # the exact Marketplace image it was made from (p:o:s:v)
        ROLE = "batchimage-role"  # "build" on the build VM and its network
        STAGED = "batchimage-staged"  # on the VM: the blob a customize step staged
        GENERALIZE = "batchimage-generalize"  # on the VM: the deprovisioning started
        ACTIVE_RUN = "batchimage-active-run"  # on the group: the run changing it now
        # An image version's provenance: what made it, readable with the state file lost.
        BASE_DIGEST = "batchimage-base-digest"  # a VHD base: its content digest (xxh3:<hex>)
        CUSTOMIZE = "batchimage-customize"  # sha256:<hex> over every customize step's inputs
        CUSTOMIZE_STEPS = "batchimage-customize-steps"  # each step's content digest, 8 hex, ","
        SPEC = "batchimage-spec"  # the spec file's SHA-256 (sha256:<hex>)
        TOOL = "batchimage-tool"  # the batchimage version that made it
        COMMIT = "batchimage-commit"  # the spec's git commit (<sha>, "+dirty" with local edits)
        # The most tags batchimage writes on one resource (4 ownership marks, the image and
        # base, and the provenance above): the spec's own `tags` get 50 (Azure's limit) less.
        RESERVED = 12
        LIMIT = 50  # Azure: tags on one resource
        # On the build VM: pipeline, run, step, fingerprint, role, image, base, generalize;
        # and one `step_ran` mark per restart step
        BUILD_VM_MARKS = 8
        VALUE_MAX = 256  # Azure: a tag value has at most 256 characters

        @staticmethod
        def active_run(pipeline: str) -> str:
            """The group tag of a run of `pipeline` while another pipeline's run holds
            ACTIVE_RUN ("batchimage-active-run-<pipeline>")."""
            return f"batchimage-active-run-{pipeline}"

        @staticmethod
        def step_ran(step_key: str) -> str:
            """The VM tag recording that customize step `step_key` ran ("batchimage-<key>")."""
            return f"batchimage-{step_key}"

    class Pool(_Store):
        """Batch pool metadata (name/value pairs on the pool). Batch allows hyphens in the
        names, so they read like the ARM tags, `batchimage-<what>`."""

        PIPELINE = "batchimage-pipeline"  # the spec's name
        POOL = "batchimage-pool"  # the spec's pool id (a generation is `<id>-*`)
        IMAGE_VERSION = "batchimage-image-version"  # the gallery version it runs
        RUN = "batchimage-run"  # the run that created it: only such pools are deleted
        SMOKE_TEST = "batchimage-smoke-test"  # the smoke test that passed on it

    class Blob(_Store):
        """Blob metadata. Its names must be C# identifiers (no hyphens), so they read
        `batchimage_<what>`."""

        PIPELINE = "batchimage_pipeline"  # the spec's name
        RUN = "batchimage_run"  # the run that wrote the blob
        IMAGE = "batchimage_image"  # the image fingerprint an exported VHD holds
        BASE = "batchimage_base"  # a captured VHD: the exact Marketplace image it holds
        FINGERPRINT = "batchimage_fingerprint"  # the export step's fingerprint
        # an exported VHD: "true" once checked; an uploaded one: "page-ranges" or "readback"
        VERIFIED = "batchimage_verified"
        LOCK_HOLDER = "batchimage_lock_holder"  # the state blob: who holds its lease
        STAGED_SHA256 = "sha256"  # a staged customize file: its SHA-256 (named before the prefix)
        # an uploaded VHD: how far the upload got and what it was made from
        UPLOAD_STATUS = "batchimage_status"  # uploading, complete or invalid
        SOURCE_SIZE = "batchimage_source_size"
        SOURCE_MTIME = "batchimage_source_mtime_ns"
        SOURCE_SAMPLE = "batchimage_source_sample"
        LAYOUT = "batchimage_layout"
        DIGEST = "batchimage_xxh3_sparse"
        DATA_BYTES = "batchimage_data_bytes"


BUILD_ROLE = "build"  # the value of tag `Marks.Tag.ROLE` on the build VM and its network
STAGING_CONTAINER = "batchimage-staging"  # the container of files staged for build VMs


def blob_marks(pipeline: str, run_id: str, image: str | None = None) -> dict[str, str]:
    """Metadata that marks a blob as written by `pipeline` in run `run_id` (for `image`)."""
    marks = {Marks.Blob.PIPELINE: pipeline, Marks.Blob.RUN: run_id}
    if image:
        marks[Marks.Blob.IMAGE] = image
    return marks
