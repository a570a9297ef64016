"""Microsoft.Compute: virtual machines, extensions, run commands, disks, images,
galleries, marketplace images, usages and resource SKUs."""

from __future__ import annotations

from batchimage.sandbox.services import Service

SERVICE = Service("compute", routes=[])
