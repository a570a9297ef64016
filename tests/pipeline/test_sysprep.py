"""Windows generalize: a sysprep that fails in the guest (the VM keeps running, the setup
state reads failed) stops the step at once with the state, setuperr.log's tail and the
next action, and nothing is captured; once the cause is gone, apply seals and captures."""

from __future__ import annotations

import time

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.core.errors import StepFailedError
from batchimage.spec import load_spec
from batchimage.steps.generalize_scripts import SysprepState
from tests.pipeline.harness import Harness

RULE = {"image_state": "IMAGE_STATE_UNDEPLOYABLE", "generalization_state": 4}


def versions(clients: AzureClients, gallery: str) -> list[str]:
    found = clients.compute.gallery_image_versions.list_by_gallery_image(
        "sandbox-rg", gallery, "windows-server-2022"
    )
    return [str(v.name) for v in found]


def test_failed_sysprep_is_reported_at_once_and_nothing_is_captured(
    pipeline: Harness, clients: AzureClients
) -> None:
    spec_path = pipeline.spec("windows-server.yaml")
    gallery = load_spec(spec_path).image.capture.gallery.gallery
    pipeline.admin.configure(compute={"sysprep_failure": RULE})
    try:
        started = time.monotonic()
        with pytest.raises(StepFailedError) as caught:
            pipeline.apply(spec_path)
        elapsed = time.monotonic() - started
    finally:
        pipeline.admin.configure(compute={"sysprep_failure": None})
    message = str(caught.value)
    assert caught.value.step == "generalize"
    assert "sysprep failed on" in message
    assert "ImageState IMAGE_STATE_UNDEPLOYABLE" in message
    assert "GeneralizationState 4" in message
    assert "last 8 line(s) of setuperr.log" in message
    assert "was installed for a user, but not provisioned for all users" in message
    assert "RunExternalDlls:An error occurred while running registry sysprep DLLs" in message
    assert "AppX package" in message and "pending Windows Update" in message
    assert "BitLocker" in message and "limited number of times" in message
    # Failed on the first guest check, not after timeouts.generalize_s (1800 s).
    assert elapsed < 60, elapsed
    assert "capture.version" not in pipeline.state(spec_path).steps or (
        pipeline.state(spec_path).steps["capture.version"].outputs is None
    )
    assert versions(clients, gallery) == []

    # The cause is gone: the same apply runs sysprep again, the VM stops, it is captured.
    pipeline.apply(spec_path)
    version = pipeline.outputs(spec_path, "capture.version")
    assert versions(clients, gallery) == [version["version"]]
    content = pipeline.image_content(version["version_id"])
    assert content["deprovisioned"] is True
    sysprep_runs = [m for m in content["manifest"] if "/generalize /oobe" in m.get("script", "")]
    assert len(sysprep_runs) == 2


def test_sysprep_state_still_running_or_sealed_is_not_a_failure() -> None:
    running = SysprepState.parse("ImageState: IMAGE_STATE_UNDEPLOYABLE\nSysprepRunning: True\n")
    assert not running.failed
    sealed = SysprepState.parse(
        "GeneralizationState: 7\nImageState: IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\n"
        "SysprepRunning: False\n"
    )
    assert not sealed.failed
    assert not SysprepState.parse("").failed  # no answer proves nothing
    failed = SysprepState.parse(
        "GeneralizationState: \nImageState: IMAGE_STATE_COMPLETE\nSysprepRunning: False\n"
        "2024-01-01 10:00:00, Error SYSPRP x\n"
    )
    assert failed.failed and failed.log == ["2024-01-01 10:00:00, Error SYSPRP x"]
