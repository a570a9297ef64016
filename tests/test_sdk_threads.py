"""The SDK's generated models are built safely from several threads: every model base the
tool uses is made safe when imported, and while one thread works out a new model class's
fields, another waits instead of reading them half-made (the raw-dict answers of
Azure/azure-sdk-for-python#47426)."""

from __future__ import annotations

import importlib
import threading
from typing import Any

import pytest

from batchimage.azure import sdk_threads
from tests.engine.procs import run_python

MODEL_BASES = [
    "azure.mgmt.compute._utils.model_base",
    "azure.mgmt.network._utils.model_base",
    "azure.mgmt.storage._utils.model_base",
    "azure.mgmt.batch._utils.model_base",
    "azure.mgmt.resource.resources._utils.model_base",
    "azure.batch._utils.model_base",
]

ACCOUNT = {
    "id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a",
    "name": "a",
    "location": "eastus",
    "properties": {
        "autoStorage": {"storageAccountId": "/subscriptions/s/x/storageAccounts/st"},
        "dedicatedCoreQuotaPerVMFamily": [{"name": "standardDSv5Family", "coreQuota": 100}],
    },
}


@pytest.mark.parametrize("name", MODEL_BASES)
def test_every_model_base_is_made_safe(name: str) -> None:
    module = importlib.import_module(name)
    assert vars(module.Model).get("_batchimage_safe") is True


def test_a_new_model_class_waits_while_another_is_worked_out() -> None:
    from azure.mgmt.batch import models
    from azure.mgmt.batch._utils.model_base import _deserialize

    # as if no object of the class had been made yet: its fields are worked out again
    models.BatchAccount._calculated.discard(f"{models.__name__}._models.BatchAccount")
    made: list[Any] = []
    with sdk_threads._LOCK:  # as a thread working out another class holds it
        other = threading.Thread(
            target=lambda: made.append(_deserialize(models.BatchAccount, ACCOUNT))
        )
        other.start()
        other.join(0.5)
        assert other.is_alive(), "a model class was worked out beside another"
    other.join(30)
    assert isinstance(made[0], models.BatchAccount)
    assert made[0].auto_storage.storage_account_id.endswith("/storageAccounts/st")
    assert made[0].dedicated_core_quota_per_vm_family[0].name == "standardDSv5Family"


def test_model_bases_imported_before_the_tool_are_made_safe_too() -> None:
    code = (
        "import azure.mgmt.batch._utils.model_base as m\n"
        "assert '_batchimage_safe' not in vars(m.Model)\n"
        "import batchimage.azure\n"
        "assert vars(m.Model)['_batchimage_safe'] is True\n"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
