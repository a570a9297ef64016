"""`plan --format markdown`: the renderer over (spec name, plan result) pairs, and the
real command against the sandbox."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from batchimage.commands.markdown import PlanResult, render_markdown
from batchimage.engine.result import Change
from tests.engine.procs import REPO
from tests.engine.sandbox_cli import ci_env, cli

CHANGES = [
    Change("preflight", "run_preflight", "read", "first read"),
    Change("build.vm", "create_vm", "create", "does not exist yet (after build.nic)"),
    Change("customize.0", "run_customize", "update", "the script changed"),
    Change("pool.q", "create_pool", "replace", "blue/green rollout onto the new image version"),
    Change("capture.gallery", "create_gallery", "no-op", "up to date"),
    Change("cleanup", "cleanup_build", "delete", "deletes the build resources"),
]
ANSI_OR_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row (header and rule rows included), stripped."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([c.strip() for c in cells])
    return rows


def test_one_spec_heading_counts_and_the_steps_that_change() -> None:
    text = render_markdown([("quickstart", PlanResult(CHANGES, state="state/quickstart.json"))])
    lines = text.splitlines()
    assert lines[0] == "## batchimage plan"
    assert "**Plan: 1 to create, 1 to update, 1 to replace, 1 to delete**." in text
    assert "### quickstart" in lines and "State: `state/quickstart.json`" in lines
    rows = table_rows(text)
    assert rows[0] == ["", "step", "action", "why"]
    assert [r[1:3] for r in rows[2:]] == [
        ["`build.vm`", "create"],
        ["`customize.0`", "update"],
        ["`pool.q`", "replace"],
        ["`cleanup`", "delete"],
    ]
    assert rows[2][3] == "does not exist yet (after build.nic)"
    assert "2 other steps unchanged (read, no-op or skip)." in lines
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_no_changes_says_so_without_a_table() -> None:
    unchanged = [Change("capture.gallery", "create_gallery", "no-op", "up to date")]
    text = render_markdown([("quickstart", PlanResult(unchanged))])
    assert "**No changes**: Azure matches the spec." in text
    assert "No changes: Azure matches the spec." in text.splitlines()
    assert table_rows(text) == []


def test_several_specs_get_a_table_of_specs_and_a_section_each() -> None:
    unchanged = [Change("capture.gallery", "create_gallery", "no-op", "up to date")]
    text = render_markdown(
        [
            ("alpha", PlanResult(CHANGES)),
            ("beta", PlanResult(unchanged)),
            ("gamma", PlanResult(error="AuthorizationFailed: no access")),
        ]
    )
    assert "**Plan: 1 to create, 1 to update, 1 to replace, 1 to delete** in 1 of 3 specs." in text
    assert "**1 of 3 specs failed to plan.**" in text
    rows = table_rows(text)
    assert rows[0] == ["spec", "plan", "create", "update", "replace", "delete"]
    assert rows[2:5] == [
        ["alpha", "changes", "1", "1", "1", "1"],
        ["beta", "no changes", "0", "0", "0", "0"],
        ["gamma", "failed", "", "", "", ""],
    ]
    sections = [line for line in text.splitlines() if line.startswith("### ")]
    assert sections == ["### alpha", "### beta", "### gamma"]
    assert "**Plan failed:** AuthorizationFailed: no access" in text


def test_notes_and_checks_that_did_not_pass_are_quoted() -> None:
    result = PlanResult(
        CHANGES,
        notes=("base image a:b:c: 2.0 is newer than the pinned 1.0",),
        checks=("WARN quota: 4 of 10 cores left",),
    )
    text = render_markdown([("q", result)])
    assert "> **preflight:** WARN quota: 4 of 10 cores left" in text
    assert "> **note:** base image a:b:c: 2.0 is newer than the pinned 1.0" in text


def test_words_are_escaped_and_cleaned_of_ansi_control_characters_and_secrets() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4eHh4eHgifQ.c2lnbmF0dXJlc2ln"
    reason = f"\x1b[31mred\x1b[0m a|b <b>x</b> *y* _z_ `w`\nnext\tline token {jwt} sig=abc123"
    changes = [Change("pool.a|b", "create_pool", "create", reason)]
    text = render_markdown([("s\x1b[1mpec", PlanResult(changes, error=None))])
    assert not ANSI_OR_CONTROL.search(text)
    assert jwt not in text and "abc123" not in text and "REDACTED" in text
    row = table_rows(text)[2]
    assert len(row) == 4  # the pipes in the key and the reason stay inside their cells
    assert row[1] == "`pool.a\\|b`"
    assert row[3].startswith("red a\\|b &lt;b&gt;x&lt;/b&gt; \\*y\\* \\_z\\_ \\`w\\` next line")
    assert "### spec" in text


def test_plan_format_markdown_against_the_sandbox(tmp_path: Path, sandbox_folder: Path) -> None:
    folder = tmp_path / "specs"
    shutil.copytree(REPO / "specs", folder)
    spec = folder / "mdplan.yaml"
    quickstart = (folder / "quickstart.yaml").read_text()
    spec.write_text(quickstart.replace("name: quickstart", "name: mdplan"))
    env = {**ci_env(sandbox_folder), "FORCE_COLOR": "1", "TERM": "xterm-256color"}
    result = cli(tmp_path, env, "plan", str(spec), "--format", "markdown")
    assert result.returncode == 2, result.stderr
    text = result.stdout
    assert text.startswith("## batchimage plan\n")
    assert not ANSI_OR_CONTROL.search(text)
    assert "### mdplan" in text
    rows = {r[1]: r[2] for r in table_rows(text)[2:]}
    assert rows["`capture.version`"] == "create"
    assert rows["`pool.quickstart`"] == "create"
    assert "`preflight`" not in rows  # a read is counted, not listed
    assert "other steps unchanged" in text
    assert "State: `" in text


def test_a_spec_plan_for_markdown_keeps_the_checks_that_did_not_pass_and_the_notes() -> None:
    from batchimage.commands.plan import SpecPlan
    from batchimage.steps.preflight.report import Report, ok, warn
    from batchimage.steps.resolve_image import BaseUpdate

    report = Report([ok("region", "eastus"), warn("quota", "4 of 10 cores left")])
    update = BaseUpdate("Canonical:ubuntu-24_04-lts:server", "1.0.20250101", "1.0.20250301")
    plan = SpecPlan(
        "q.yaml", "q", "state/q.json", CHANGES, report, update, None, [update.message()]
    )
    result = plan.for_markdown()
    assert result.checks == ("WARN quota: 4 of 10 cores left",)
    assert result.notes == (update.message(),)
    assert result.state == "state/q.json" and result.changes == CHANGES
    bare = SpecPlan("q.yaml", "q", "s", CHANGES, None, None, None, [])
    assert bare.for_markdown().checks == () and bare.for_markdown().notes == ()
