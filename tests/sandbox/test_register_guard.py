"""The register guard (batchimage.sandbox.register): under the test suite a sandbox answers
only error codes docs/azure-behaviours.md registers, whatever makes it answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.sandbox import register
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.errors import SandboxError
from batchimage.sandbox.runtime import SandboxProcess, start
from tests.conftest import REGISTER
from tests.sandbox.conftest import TEST_TIME_SCALE


def test_the_suite_runs_its_sandboxes_under_the_guard() -> None:
    assert register.registered() == register.codes(REGISTER.read_text(encoding="utf-8"))
    assert not register.unregistered("ResourceGroupNotFound")
    assert register.unregistered("NoSuchAzureCode")


def test_a_fault_rule_with_an_unregistered_code_is_refused(admin: SandboxAdmin) -> None:
    with pytest.raises(
        SandboxError, match=r"InvalidFaultRule.*NoSuchAzureCode.*is not in the register"
    ):
        admin.set_faults([{"kind": "lro_fail", "code": "NoSuchAzureCode"}])
    admin.set_faults([{"kind": "lro_fail", "code": "InternalExecutionError"}])
    assert [r["code"] for r in admin.faults()["rules"]] == ["InternalExecutionError"]


def test_a_status_fault_without_azure_default_needs_a_code(admin: SandboxAdmin) -> None:
    with pytest.raises(SandboxError, match="a status 409 fault needs a code"):
        admin.set_faults([{"kind": "status", "status": 409}])


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A sandbox whose register lacks the ResourceGroupNotFound row."""
    folder = tmp_path_factory.mktemp("guarded")
    text = REGISTER.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `ResourceGroupNotFound` |")]
    assert len(rows) == 1
    path = folder / "register.md"
    path.write_text(text.replace(rows[0] + "\n", ""), encoding="utf-8")
    proc = start(
        folder / "sandbox",
        env={"BATCHIMAGE_SANDBOX_TIME_SCALE": TEST_TIME_SCALE, register.ENV: str(path)},
    )
    yield proc
    proc.stop()


def test_an_answer_with_an_unregistered_code_becomes_a_500(trimmed: SandboxProcess) -> None:
    clients = AzureClients(sandbox_profile(trimmed.connection), retry_total=0)
    with pytest.raises(HttpResponseError) as err:
        clients.resource.resource_groups.get("no-such-group")
    assert err.value.status_code == 500
    assert err.value.error is not None and err.value.error.code == "InternalServerError"
    assert "'ResourceGroupNotFound' is not in the register" in err.value.error.message
