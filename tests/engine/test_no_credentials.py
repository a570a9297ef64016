"""A newcomer with no Azure sign-in runs a spec for Azure: each command says it once, in
its own words (what the credential chain tried, what to do next), with no raw dump of
azure-identity's list and no line cut mid-word; plan sends you to plan again, apply to
apply. Real subprocesses, the real DefaultAzureCredential, nothing set up for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.engine.procs import REPO, child_env

FAIL = (
    "FAIL credentials: no token for Azure Resource Manager: no sign-in found (tried "
    "environment variables, "
)
NEXT = "Next: sign in with `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and"


@pytest.fixture(scope="module")
def azure_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nocreds")
    data = yaml.safe_load((REPO / "specs" / "quickstart.yaml").read_text())
    data.update(cloud="AzurePublicCloud", subscription="00000000-0000-0000-0000-000000000001")
    (folder / "files").mkdir()
    (folder / "files" / "reference-data.txt").write_text("reference\n")
    path = folder / "azure.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`batchimage args... spec` with no AZURE_* variables, no `az` and an empty home."""
    env = {k: v for k, v in child_env().items() if not k.startswith(("AZURE_", "BATCHIMAGE_"))}
    env.update(PATH=str(spec.parent), HOME=str(spec.parent), PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "batchimage", *args, spec.name],
        cwd=spec.parent,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def one_clean_fail_line(text: str) -> str:
    lines = [line for line in text.splitlines() if "FAIL credentials" in line]
    assert len(lines) == 1, text
    line = lines[0].strip()
    assert line.startswith(FAIL) and NEXT in line, text
    assert line.endswith("or run where a managed identity is available"), text
    return line


def no_dump(proc: subprocess.CompletedProcess[str]) -> None:
    both = proc.stdout + proc.stderr
    assert "DefaultAzureCredential failed" not in both and "Attempted credentials" not in both
    assert "Traceback" not in both


def test_preflight(azure_spec: Path) -> None:
    proc = run(azure_spec, "preflight")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    no_dump(proc)
    one_clean_fail_line(proc.stdout)
    assert proc.stdout.splitlines()[-1] == "preflight: 0 passed, 1 failed"


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_and_apply_say_it_once(azure_spec: Path, command: str) -> None:
    proc = run(azure_spec, command, *(["--yes"] if command == "apply" else []))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    no_dump(proc)
    one_clean_fail_line(proc.stderr)
    assert "error: step preflight failed: 0 passed, 1 failed; nothing was created:" in proc.stderr
    assert proc.stderr.count("0 passed, 1 failed") == 1, proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert last == f"  next: fix what the FAIL lines say, then run {command} again"
