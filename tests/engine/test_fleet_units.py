"""The pieces of a command over many specs that need no Azure: which files a folder
stands for, the worst exit code, the summary table, and STEP.FIELD after the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchimage.commands.fleet import Outcome, expand, summary_table, worst
from batchimage.commands.output import split_name
from batchimage.core.errors import UsageError


def test_a_folder_stands_for_its_specs_sorted(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "c.txt", "sub/d.yaml"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    extra = tmp_path / "sub" / "d.yaml"
    found = expand((str(tmp_path), str(extra), str(tmp_path / "b.yaml")))
    assert found == [str(tmp_path / "a.yml"), str(tmp_path / "b.yaml"), str(extra)]
    assert expand(("missing.yaml",)) == ["missing.yaml"]  # loading it says what is wrong
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no spec"):
        expand((str(tmp_path / "empty"),))


def outcome(result: str, code: int, name: str = "a") -> Outcome:
    return Outcome(f"{name}.yaml", name, result, code, 1.5, "1 created", "why")


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([], 0), ([0, 2], 2), ([2, 3], 3), ([3, 1, 2], 1), ([1, 130, 0], 130), ([0, 0], 0)],
)
def test_the_exit_code_is_the_worst(codes: list[int], expected: int) -> None:
    assert worst([outcome("x", c) for c in codes]) == expected


def test_the_summary_table() -> None:
    table = summary_table(
        [outcome("ok", 0, "alpha"), outcome("failed", 1, "b"), outcome("not started", 0, "c")]
    )
    assert table.splitlines() == [
        "spec   result       time   changes",
        "alpha  ok           1.5 s  1 created",
        "b      failed       1.5 s  1 created; why",
        "c      not started  -      1 created; why",
        "3 spec(s): 1 ok, 1 failed, 1 not started",
    ]


def test_below_the_table_the_whole_of_each_longer_error() -> None:
    """A row holds an error's first line; the failed checks and the next action follow the
    totals, under the spec's name (a one-line error is not repeated)."""
    checks = "step preflight failed: 2 passed, 1 failed:\n  FAIL region: unknown\n  next: fix it"
    long = Outcome("b.yaml", "b", "failed", 1, 1.5, "", checks.splitlines()[0], checks)
    short = Outcome("c.yaml", "c", "failed", 1, 1.5, "", "lock held", "lock held")
    assert summary_table([long, short]).splitlines()[-5:] == [
        "2 spec(s): 2 failed",
        "",
        "b: step preflight failed: 2 passed, 1 failed:",
        "  FAIL region: unknown",
        "  next: fix it",
    ]


def test_step_field_after_the_files(tmp_path: Path) -> None:
    spec = tmp_path / "a.yaml"
    spec.write_text("")
    assert split_name((str(spec), "capture.version.version_id")) == (
        (str(spec),),
        "capture.version.version_id",
    )
    assert split_name((str(spec),)) == ((str(spec),), None)
    assert split_name((str(spec), "b.yaml")) == ((str(spec), "b.yaml"), None)
    assert split_name((str(spec), str(tmp_path))) == ((str(spec), str(tmp_path)), None)


def test_the_steps_of_many_specs_built_side_by_side_depend_on_their_own() -> None:
    # Twenty specs' steps built one after another, as the threads of `apply specs/` build
    # them: each step's dependencies are steps of its own spec's list.
    from batchimage.spec import load_spec
    from batchimage.steps.pipeline import build_steps

    repo = Path(__file__).resolve().parents[2]
    specs = [load_spec(repo / "specs" / "quickstart.yaml") for _ in range(20)]
    built = [build_steps(spec) for spec in specs]
    for steps in built:
        for step in steps:
            for dep in [*step.depends_on, *step.reads]:
                assert isinstance(dep, type) or any(dep is s for s in steps), step
