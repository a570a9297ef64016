"""Many specs in one command, as real `batchimage` subprocesses against the sandbox: a
folder of specs planned, applied, shown and destroyed together, each with its own state;
the summary table, the JSON events carrying each spec's name, the exit code the worst of
theirs; a failing spec leaving the others to finish, or with --fail-fast stopping the
rest; two specs sharing a gallery (destroy keeps it while the other's definition is in it,
then deletes it); and one process-wide request budget: a 429 with Retry-After seen by one
spec holds back every spec's ARM requests (read from the sandbox's request log)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchimage.spec import load_spec
from batchimage.state import StepStatus
from tests.engine.sandbox_cli import ci_env, cli
from tests.engine.sandbox_pipeline import admin, clients, cloud, pools  # noqa: F401
from tests.pools.harness import PoolHarness

pytestmark = pytest.mark.long  # 20 s or more: scheduled first


def gallery_of(spec: Path) -> str:
    return str(yaml.safe_load(spec.read_text())["image"]["capture"]["gallery"]["gallery"])


def sharing(gallery: str, definition: str) -> Any:
    """A spec edit: the image goes to `gallery` (another spec's), as `definition`."""

    def edit(data: dict[str, Any]) -> None:
        data["image"]["capture"]["gallery"]["gallery"] = gallery
        data["image"]["capture"]["gallery"]["definition"]["name"] = definition

    return edit


def failures(stderr: str) -> str:
    """The JSON events of failed steps and errors, for an assertion's message."""
    return "\n".join(x for x in stderr.splitlines() if "failed" in x or '"error"' in x)


def totals(table: str) -> str:
    """The summary's line of totals ("2 spec(s): 2 ok")."""
    return next(x for x in table.splitlines() if re.match(r"\d+ spec\(s\): ", x))


def rows(table: str) -> dict[str, list[str]]:
    """The summary table's rows by spec: [result, time, changes]."""
    lines = table.strip().splitlines()
    header = lines.index(next(x for x in lines if x.startswith("spec ")))
    found = {}
    for line in lines[header + 1 : lines.index(totals(table))]:
        cells = [c for c in line.split("  ") if c.strip()]
        found[cells[0].strip()] = [c.strip() for c in cells[1:]]
    return found


def test_a_folder_of_specs_sharing_a_gallery(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    first = pools.spec("quickstart.yaml")
    gallery = gallery_of(first)
    second = pools.spec("quickstart.yaml", sharing(gallery, "other-image"))
    names = [load_spec(first).name, load_spec(second).name]
    env = ci_env(sandbox_folder)
    folder = pools.tmp

    planned = cli(folder, env, "plan", ".")
    assert planned.returncode == 2, planned.stdout + planned.stderr  # changes pending
    assert [x for x in planned.stdout.splitlines() if x.startswith("plan for ")] == [
        f"plan for {name} (state state/{name}.json):" for name in sorted(names)
    ]
    assert {k: v[0] for k, v in rows(planned.stderr).items()} == dict.fromkeys(names, "changes")
    summary = cli(folder, env, "plan", ".", "--format", "markdown")
    assert summary.returncode == 2, summary.stdout + summary.stderr
    assert summary.stdout.startswith("## batchimage plan\n"), summary.stdout
    assert "in 2 of 2 specs." in summary.stdout
    md = summary.stdout.splitlines()
    for name in names:  # a row in the table of specs, and each spec's own section
        assert any(line.startswith(f"| {name} | ") for line in md), summary.stdout
        assert f"### {name}" in md

    applied = cli(folder, env, "apply", "--yes", ".", "--parallel", "2", "--log-format", "json")
    assert applied.returncode == 0, applied.stdout + failures(applied.stderr)
    events = [json.loads(line) for line in applied.stderr.splitlines()]
    assert sorted(e["spec"] for e in events if e["event"] == "run_started") == sorted(names)
    assert all(e.get("spec") in names for e in events if e["event"].startswith("step_"))
    table = rows(applied.stdout)
    assert {k: v[0] for k, v in table.items()} == dict.fromkeys(names, "ok")
    assert totals(applied.stdout) == "2 spec(s): 2 ok"
    for spec in (first, second):
        assert pools.state(spec).steps["capture.version"].status == StepStatus.DONE
    gallery_id = pools.outputs(first, "capture.gallery")["id"]
    assert pools.outputs(second, "capture.gallery")["id"] == gallery_id
    owners = [
        [r for r in pools.outputs(spec, "capture.gallery")["resources"] if r["created_by_run"]]
        for spec in (first, second)
    ]
    assert sorted(len(o) for o in owners) == [0, 1]  # one of them created it, not both

    start = pools.admin.counters()["seq"]
    again = cli(folder, env, "plan", first.name, second.name)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {k: v[0] for k, v in rows(again.stderr).items()} == dict.fromkeys(names, "no changes")
    # One snapshot of Azure for the whole command: the gallery both specs use, read by each
    # spec's preflight and step checks (four times), is asked for once.
    reads = Counter(e["path"] for e in pools.admin.requests(since=start) if e["method"] == "GET")
    assert reads[gallery_id] == 1, reads

    status = cli(folder, env, "status", ".", "--offline", "--format", "json")
    assert status.returncode == 0, status.stderr
    docs = json.loads(status.stdout)["specs"]
    assert sorted(d["document"]["pipeline"] for d in docs) == sorted(names)
    shown = cli(folder, env, "output", ".", "capture.version.version_id")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [x for x in lines if x.startswith("== ")] == [
        f"== {name}.yaml ==" for name in sorted(names)
    ]
    assert sum("/galleries/" in x for x in lines) == 2

    destroyed = cli(folder, env, "destroy", "--yes", ".")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert "2 spec(s): 2 ok" in destroyed.stdout
    assert pools.resource(gallery_id) is None  # kept while the other's definition was in it
    for spec in (first, second):
        steps = pools.state(spec).steps
        assert steps["capture.gallery"].status in (StepStatus.DESTROYED, StepStatus.DONE)
        assert not steps["capture.gallery"].created


def test_a_failing_spec_leaves_the_others_and_fail_fast_stops_them(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    specs = sorted([pools.spec("quickstart.yaml") for _ in range(3)], key=lambda p: p.name)
    bad = load_spec(specs[0])
    definition = bad.image.capture.gallery.definition.name
    gallery = bad.image.capture.gallery.gallery
    pools.admin.set_faults(
        [
            {
                "kind": "status",
                "method": "PUT",
                "path": f"/galleries/{gallery}/images/{definition}$",
                "status": 400,
                "code": "InvalidParameter",
                "message": "The value of parameter galleryImage is invalid.",
            }
        ]
    )
    env = ci_env(sandbox_folder)
    names = [load_spec(s).name for s in specs]

    fast = cli(pools.tmp, env, "apply", "--yes", ".", "--parallel", "1", "--fail-fast")
    assert fast.returncode == 1, fast.stdout + fast.stderr
    table = rows(fast.stdout)
    assert table[names[0]][0] == "failed" and "InvalidParameter" in table[names[0]][2]
    assert table[names[1]][0] == "not started" and table[names[2]][0] == "not started"
    assert "capture.version" not in pools.state(specs[0]).steps or (
        pools.state(specs[0]).steps["capture.version"].status != StepStatus.DONE
    )
    for spec in specs[1:]:
        assert not (pools.tmp / "state" / f"{load_spec(spec).name}.json").exists()

    (pools.tmp / "zz-invalid.yaml").write_text("name: x\nnot_a_field: 1\n")
    every = cli(pools.tmp, env, "apply", "--yes", ".", "--parallel", "2")
    assert every.returncode == 1, every.stdout + every.stderr  # failed (1) beats invalid (2)
    table = rows(every.stdout)
    assert [table[n][0] for n in names] == ["failed", "ok", "ok"]
    assert table["zz-invalid.yaml"][0] == "invalid"
    for spec in specs[1:]:
        assert pools.state(spec).steps["capture.version"].status == StepStatus.DONE
    pools.admin.clear_faults()
    (pools.tmp / "zz-invalid.yaml").unlink()
    cli(pools.tmp, env, "destroy", "--yes", ".")


def test_a_429_seen_by_one_spec_holds_back_every_spec(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    specs = [pools.spec("quickstart.yaml") for _ in range(2)]
    names = [load_spec(s).name for s in specs]
    pause = 3
    # The 30th ARM request after this one, whichever spec sends it, is throttled.
    pools.admin.set_faults(
        [
            {
                "kind": "status",
                "path": "^/subscriptions/",
                "nth": 30,
                "status": 429,
                "retry_after": pause,
            }
        ]
    )
    start = pools.admin.counters()["seq"]
    env = ci_env(sandbox_folder)
    applied = cli(pools.tmp, env, "apply", "--yes", ".", "--parallel", "2")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    log = [e for e in pools.admin.requests(since=start) if e["plane"] == "arm"]
    throttled = [e for e in log if e["status"] == 429]
    assert len(throttled) == 1
    at = throttled[0]["time"]
    # Requests in flight when the 429 came back are answered at once; after that, no ARM
    # request of either spec reaches the sandbox until Retry-After has passed.
    held = [e for e in log if at + 0.5 <= e["time"] < at + pause - 0.2]
    assert held == [], held
    assert any(e["time"] < at for e in log)
    for name in names:  # both were still at work after the pause
        assert any(f"{name}-" in e["path"] and e["time"] >= at + pause for e in log), name
    pools.admin.clear_faults()
    cli(pools.tmp, env, "destroy", "--yes", ".")
