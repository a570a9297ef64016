"""Microsoft.Batch management routes (Batch accounts)."""

from __future__ import annotations

from batchimage.sandbox.arm import ResourceType
from batchimage.sandbox.services.batch_management import models

BATCH_ACCOUNTS = ResourceType(
    models.NS,
    "batchAccounts",
    "BatchAccount",
    models.build_account,
    "batch_account",
    check_name=models.check_name,
    put_style="location",
    delete_style="location",
    render=models.render_account,
)

ROUTES = BATCH_ACCOUNTS.routes()
