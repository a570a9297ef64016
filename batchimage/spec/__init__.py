"""The spec language: pydantic models of one pipeline and the loader that validates a file.

Public API: `load_spec(path) -> Spec` and `load_spec_text(text, path) -> Spec`, both
raising `batchimage.core.errors.SpecError` whose `problems` locate every problem
(`path:line:col: field.path: message`). The models live in `spec.root` (top level),
`spec.image`, `spec.pool`, `spec.settings` and `spec.common`; the loader in `spec.load`
(YAML positions in `spec.yaml`, `${VAR}` in `spec.interpolate`, messages in
`spec.problems`). Docs: docs/spec.md.
"""

from __future__ import annotations

from batchimage.spec.common import SecretRef, SpecModel
from batchimage.spec.image import (
    BaseImage,
    Build,
    BuildNetwork,
    Capture,
    CustomizeStep,
    FileUpload,
    Gallery,
    Generalize,
    Image,
    ImageDefinition,
    ManagedImage,
    Marketplace,
    OsDisk,
    OsType,
    PurchasePlan,
    Replica,
    VhdExport,
    VhdFile,
    VhdUrl,
)
from batchimage.spec.load import load_spec, load_spec_bytes, load_spec_text
from batchimage.spec.pool import (
    Autoscale,
    AzureBlobMount,
    AzureFilesMount,
    BatchAccountRef,
    CifsMount,
    Mount,
    NfsMount,
    Pool,
    PoolNetwork,
    ResourceFile,
    SmokeTest,
    StartTask,
)
from batchimage.spec.root import Spec
from batchimage.spec.settings import (
    AzureBlobState,
    CloudName,
    CustomCloud,
    LocalState,
    Retry,
    Timeouts,
    default_state_path,
)

__all__ = [
    "Autoscale",
    "AzureBlobMount",
    "AzureBlobState",
    "AzureFilesMount",
    "BaseImage",
    "BatchAccountRef",
    "Build",
    "BuildNetwork",
    "Capture",
    "CifsMount",
    "CloudName",
    "CustomCloud",
    "CustomizeStep",
    "FileUpload",
    "Gallery",
    "Generalize",
    "Image",
    "ImageDefinition",
    "LocalState",
    "ManagedImage",
    "Marketplace",
    "Mount",
    "NfsMount",
    "OsDisk",
    "OsType",
    "Pool",
    "PoolNetwork",
    "PurchasePlan",
    "Replica",
    "ResourceFile",
    "Retry",
    "SecretRef",
    "SmokeTest",
    "Spec",
    "SpecModel",
    "StartTask",
    "Timeouts",
    "VhdExport",
    "VhdFile",
    "VhdUrl",
    "default_state_path",
    "load_spec",
    "load_spec_bytes",
    "load_spec_text",
]
