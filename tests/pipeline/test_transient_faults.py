"""One transient error never fails an apply (issue 13, item 2). A single failed call at the
deletes cleanup sends (each delete, each fault) - a 503 or a 429 with Retry-After (on all
four of the SDK's tries of that request, so the error reaches batchimage), a connection
dropped mid-answer (the SDK does not try that again), or a delete operation that ends
Failed - and a 429 in preflight (in apply, and in `batchimage preflight`): the run ends
well, the step says it retried with Azure's code, and nothing of the build is left;
`cleanup: always` after a failed script retries its deletes too. (A permanent failure
still fails cleanup: test_failures.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchimage.core.errors import StepFailedError
from batchimage.spec import load_spec
from tests.pipeline.harness import Harness, preflight_command

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

# What cleanup deletes through ARM (the staged file is a blob: Azurite takes no faults).
DELETES = (
    "virtualMachines",
    "disks",
    "networkInterfaces",
    "virtualNetworks",
    "networkSecurityGroups",
)
SDK_TRIES = 4  # retry_total=3 (batchimage.azure.errors.SDK_RETRY)
FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "503": ({"kind": "status", "status": 503, "times": SDK_TRIES}, "ServiceUnavailable"),
    "429": (
        {"kind": "status", "status": 429, "retry_after": 1, "times": SDK_TRIES},
        "TooManyRequests",
    ),
    "dropped": ({"kind": "drop", "times": 1}, "ConnectionError"),
    "failed operation": ({"kind": "lro_fail", "times": 1}, "InternalOperationError"),
}
THROTTLED_PROVIDER = {
    "kind": "status",
    "status": 429,
    "retry_after": 1,
    "times": SDK_TRIES,
    "method": "GET",
    "path": "/providers/Microsoft.Compute$",
}


def build_left(pipeline: Harness, name: str) -> list[str]:
    """The build's resources still there: ARM's list of the group and the sandbox's store."""
    store = [key for key in pipeline.tables()["resources"] if f"/{name}-" in key]
    return pipeline.build_resources("sandbox-rg", name) + store


def retries(pipeline: Harness, step: str) -> list[Any]:
    return [e for e in pipeline.events.events if e.kind == "step_retrying" and e.step == step]


# Each delete and each fault once (the faults in turn); tests/pools/test_fault_sweep.py
# and bench/fault_sweep.py put each fault at every request of a run.
PAIRS = [(target, list(FAULTS)[i % len(FAULTS)]) for i, target in enumerate(DELETES)]


@pytest.mark.parametrize(("target", "fault"), PAIRS)
def test_one_transient_error_at_a_cleanup_delete_is_retried(
    pipeline: Harness, target: str, fault: str
) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    name = load_spec(spec_path).name
    rule, code = FAULTS[fault]
    path = f"/{target}/{name}-[0-9a-f]{{8}}-[a-z]+$"  # the build's own, not a child's
    pipeline.admin.set_faults([{**rule, "method": "DELETE", "path": path}])
    pipeline.apply(spec_path)
    assert pipeline.admin.faults()["rules"][0]["fired"] == rule["times"]
    assert [e.data["code"] for e in retries(pipeline, "cleanup")] == [code]
    assert pipeline.state(spec_path).steps["cleanup"].attempts == 2
    assert build_left(pipeline, name) == []


def test_throttled_preflight_is_retried(pipeline: Harness) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    pipeline.admin.set_faults([THROTTLED_PROVIDER])
    pipeline.apply(spec_path)
    assert pipeline.admin.faults()["rules"][0]["fired"] == SDK_TRIES
    [retry] = retries(pipeline, "preflight")
    assert retry.data["code"] == "TooManyRequests" and retry.data["delay_s"] == 1
    assert build_left(pipeline, load_spec(spec_path).name) == []


def test_throttled_preflight_command_checks_again(pipeline: Harness, sandbox_folder: Path) -> None:
    spec = pipeline.spec("quickstart.yaml")
    pipeline.admin.set_faults([THROTTLED_PROVIDER])
    proc = preflight_command(spec, sandbox_folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TooManyRequests: checking again in 1 s" in proc.stderr
    assert "ok   providers: Microsoft.Compute registered" in proc.stdout
    assert pipeline.admin.faults()["rules"][0]["fired"] == SDK_TRIES


def test_cleanup_always_after_a_failed_script_retries_a_transient_error(
    pipeline: Harness,
) -> None:
    rule = {"pattern": "exit 7", "exit_code": 7, "stderr": "broken on purpose"}
    pipeline.admin.configure(compute={"script_failures": [rule]})

    def edit(data: dict[str, Any]) -> None:
        data["cleanup"] = "always"
        data["image"]["customize"].insert(1, {"name": "broken", "shell": "exit 7\n"})

    spec_path = pipeline.spec("quickstart.yaml", edit)
    name = load_spec(spec_path).name
    vm = f"/virtualMachines/{name}-[0-9a-f]{{8}}-vm$"
    pipeline.admin.set_faults([{**FAULTS["503"][0], "method": "DELETE", "path": vm}])
    with pytest.raises(StepFailedError) as caught:
        pipeline.apply(spec_path)
    message = str(caught.value)
    assert caught.value.step == "customize.1" and "exit code 7" in message
    assert "cleanup: always, so the build resources were deleted" in message
    assert "could not delete" not in message
    assert pipeline.admin.faults()["rules"][0]["fired"] == SDK_TRIES
    assert build_left(pipeline, name) == []


def test_a_run_command_whose_create_failed_is_made_again_not_waited_for(
    pipeline: Harness,
) -> None:
    # Its operation ended Failed before the guest took it: the command stays Pending for
    # good, so the retry deletes and re-creates it (waiting would last the step's timeout).
    spec_path = pipeline.spec("quickstart.yaml")
    rule = {"kind": "lro_fail", "method": "PUT", "path": "/runCommands/customize-0-", "times": 1}
    pipeline.admin.set_faults([rule])
    pipeline.apply(spec_path)
    assert pipeline.admin.faults()["rules"][0]["fired"] == 1
    assert [e.data["code"] for e in retries(pipeline, "customize.0")] == ["InternalOperationError"]
    assert pipeline.state(spec_path).steps["customize.0"].status == "done"
