"""The example CI pipelines (examples/ci/) run as CI would run them, against the sandbox:
their own `batchimage` commands, read from the workflow files, with the environment the
pipelines set (the repository variables, the variable group) pointing at the sandbox
instead of Azure. A pull request validates and plans (the plan in the job's summary), the
main branch applies, and a later pull request plans no changes."""

from __future__ import annotations

import re
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from tests.engine.procs import REPO
from tests.engine.sandbox_cli import ci_env
from tests.engine.workflows import JobRun, run_azure_pipelines, run_github

pytestmark = pytest.mark.long  # an apply of the example spec: scheduled first

EXAMPLES = REPO / "examples" / "ci"
GITHUB = EXAMPLES / "github" / "batchimage.yml"
AZURE = EXAMPLES / "azure-pipelines.yml"
SUMMARY = re.compile(r"^##vso\[task\.uploadsummary\](.+)$", re.M)


def sandbox_variables(sandbox: Connection) -> dict[str, str]:
    """The values a team would set for its subscription, here the sandbox's."""
    return {
        "AZURE_CLOUD": "sandbox",
        "AZURE_PLAN_CLIENT_ID": sandbox.client_id,
        "AZURE_APPLY_CLIENT_ID": sandbox.client_id,
        "AZURE_TENANT_ID": sandbox.tenant_id,
        "AZURE_SUBSCRIPTION_ID": sandbox.subscription_id,
        "RESOURCE_GROUP": "ci-example-rg",
        "STATE_STORAGE_ACCOUNT": sandbox.storage_account,
        "STATE_RESOURCE_GROUP": sandbox.resource_group,
        "BATCH_ACCOUNT": sandbox.batch_account,
        "BATCH_RESOURCE_GROUP": sandbox.resource_group,
    }


@pytest.fixture
def specs_repo(tmp_path: Path) -> Path:
    """A repository of specs as the examples expect it: the folder specs/ at its root."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "specs", repo / "specs")
    return repo


@pytest.fixture
def runner_env(tmp_path: Path, sandbox_folder: Path) -> dict[str, str]:
    """A CI runner's environment with this checkout's `batchimage` first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "batchimage"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m batchimage "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = ci_env(sandbox_folder)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def report(runs: dict[str, JobRun]) -> str:
    """Every step's output, for an assertion's message."""
    return "\n".join(
        f"[{job}/{step.name}] exit {step.done.returncode}\n{step.done.stdout}{step.done.stderr}"
        for job, run in runs.items()
        for step in run.steps
    )


def uses(run: JobRun) -> list[str]:
    return [str(step["uses"]).split("@")[0] for step in run.skipped if "uses" in step]


def test_the_github_workflow_signs_in_with_openid_connect_only() -> None:
    doc: dict[str, Any] = yaml.safe_load(GITHUB.read_text())
    assert "secrets." not in GITHUB.read_text()
    for name, identity in (("plan", "AZURE_PLAN_CLIENT_ID"), ("apply", "AZURE_APPLY_CLIENT_ID")):
        job = doc["jobs"][name]
        assert job["permissions"]["id-token"] == "write"
        # One identity per job: pull requests read, the main branch writes.
        assert job["env"]["AZURE_CLIENT_ID"] == f"${{{{ vars.{identity} }}}}"
        login = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("azure/login@"))
        assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
        assert login["with"]["client-id"] == "${{ env.AZURE_CLIENT_ID }}"
    assert "permissions" not in doc["jobs"]["validate"]  # the workflow's: contents: read


def test_the_azure_pipeline_signs_in_with_its_federated_service_connection() -> None:
    doc: dict[str, Any] = yaml.safe_load(AZURE.read_text())
    jobs = {job["job"]: job for job in doc["jobs"]}
    for name in ("plan", "apply"):
        task = next(s for s in jobs[name]["steps"] if "task" in s and "batchimage" in str(s))
        assert task["task"] == "AzureCLI@2"
        assert task["inputs"]["azureSubscription"] == f"batchimage-{name}"
        assert task["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"


def test_the_examples_run_against_the_sandbox(
    specs_repo: Path, runner_env: dict[str, str], sandbox: Connection
) -> None:
    variables = sandbox_variables(sandbox)
    admin = SandboxAdmin(sandbox)
    seq = admin.counters()["seq"]

    def github(event: str, ref: str) -> dict[str, JobRun]:
        return run_github(GITHUB, event, ref, variables, runner_env, specs_repo)

    pull = github("pull_request", "refs/pull/7/merge")
    assert list(pull) == ["validate", "plan"], report(pull)
    assert all(run.ok for run in pull.values()), report(pull)
    assert pull["validate"].commands == ['batchimage validate "$SPEC"']
    assert pull["plan"].commands[0].startswith('batchimage plan "$SPEC" --format markdown')
    assert uses(pull["plan"]) == ["actions/checkout", "actions/setup-python", "azure/login"]
    summary = pull["plan"].steps[0].summary
    assert summary.startswith("## batchimage plan\n"), report(pull)
    assert "### ci-example" in summary
    assert "| + | `capture.version` | create |" in summary
    assert "| + | `pool.ci-example` | create |" in summary

    push = github("push", "refs/heads/main")
    assert list(push) == ["apply"]
    assert push["apply"].ok, report(push)
    assert push["apply"].commands == ['batchimage apply "$SPEC" --yes']
    # the folder's one spec applied: its row in the summary table names what it created
    assert re.search(
        r"^ci-example +ok .* [1-9]\d* created", push["apply"].steps[0].done.stdout, re.M
    )

    again = github("pull_request", "refs/pull/8/merge")
    assert all(run.ok for run in again.values()), report(again)
    assert "**No changes**: Azure matches the spec." in again["plan"].steps[0].summary

    # The Azure Pipelines example on the same state: its plan finds nothing to change,
    # its apply changes nothing.
    predefined = {"System.AccessToken": "not-a-real-token"}
    agent_temp = specs_repo.parent / "agent-temp"
    agent_temp.mkdir()
    env = {**runner_env, "AGENT_TEMPDIRECTORY": str(agent_temp)}

    def azure(reason: str, branch: str) -> dict[str, JobRun]:
        build = {**predefined, "Build.Reason": reason, "Build.SourceBranch": branch}
        return run_azure_pipelines(AZURE, variables, build, env, specs_repo)

    pr = azure("PullRequest", "refs/pull/9/merge")
    assert list(pr) == ["validate", "plan"], report(pr)
    assert all(run.ok for run in pr.values()), report(pr)
    uploaded = SUMMARY.findall(pr["plan"].steps[0].done.stdout)
    assert len(uploaded) == 1, report(pr)
    text = Path(uploaded[0]).read_text()
    assert text.startswith("## batchimage plan\n") and "**No changes**" in text

    # The example's state is reached with the jobs' own sign-in (auth: entra_id), no key.
    paths = [str(r["path"]).lower() for r in admin.requests(since=seq)]
    assert any("/storageaccounts/" in p for p in paths)
    assert not [p for p in paths if p.endswith("/listkeys")]

    ci = azure("IndividualCI", "refs/heads/main")
    assert list(ci) == ["apply"], report(ci)
    assert ci["apply"].ok, report(ci)
    assert ci["apply"].commands == ['batchimage apply "$SPEC" --yes']
    assert re.search(
        r"^ci-example +ok .* 0 created, 0 changed, 0 deleted",
        ci["apply"].steps[0].done.stdout,
        re.M,
    ), report(ci)
