"""Local VHD files as base images: validate a fixed VHD, upload it as a page blob.

Public API: `validate_fixed_vhd`, `VhdInfo`, `VhdError` (and the other errors in
`batchimage.azure.vhd.errors`); the upload API lives in `batchimage.azure.vhd.upload`.
"""

from batchimage.azure.vhd.errors import VhdChangedError, VhdError, VhdVerifyError
from batchimage.azure.vhd.formats import VhdInfo, validate_fixed_vhd

__all__ = ["VhdChangedError", "VhdError", "VhdInfo", "VhdVerifyError", "validate_fixed_vhd"]
