"""`batchimage validate` / `schema` / `--help` as real subprocesses: exit codes and output."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p.relative_to(REPO)) for p in (REPO / "specs").glob("*.yaml"))
LINE = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?:(?P<field>[\w.\[\]\"]+): )?(?P<msg>.+)$"
)


def run(*args: str, cwd: Path = REPO, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m batchimage ARGS` (or `python -c CODE ARGS`) with the repo importable."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("BASE_VHD", None)
    command = (
        [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "batchimage", *args]
    )
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_validate_every_example_exits_0() -> None:
    result = run("validate", *EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"{path}: ok" for path in EXAMPLES]
    assert f"{len(EXAMPLES)} file(s) checked, all valid" in result.stderr


def test_validate_reports_every_problem_in_every_file(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("name: demo\nlocaton: eastus\n")
    (tmp_path / "two.yaml").write_text("name: x\n\tbad: tab\n")
    shutil.copy(REPO / "specs/quickstart.yaml", tmp_path / "good.yaml")
    shutil.copytree(REPO / "specs/files", tmp_path / "files")
    result = run("validate", "one.yaml", "good.yaml", "two.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert "good.yaml: ok" in lines
    problems = [LINE.match(line) for line in lines if line != "good.yaml: ok"]
    assert all(problems), lines
    by_file = {(m["path"], m["field"]): m for m in problems if m}
    typo = by_file[("one.yaml", "locaton")]
    assert (typo["line"], typo["col"]) == ("2", "1")
    assert typo["msg"] == "unknown key 'locaton'; did you mean 'location'?"
    for field in ("resource_group", "image"):
        assert ("one.yaml", field) in by_file
    tab = next(m for m in problems if m and m["path"] == "two.yaml")
    assert (tab["line"], tab["col"], tab["field"]) == ("2", "1", None)
    assert tab["msg"].endswith("(YAML indents with spaces, never tabs)")
    assert "3 file(s) checked" in result.stderr


def test_validate_json_format(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: demo\ncleanup: sometimes\n")
    result = run("validate", "--format", "json", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    [entry] = report["files"]
    assert entry["path"] == "bad.yaml" and entry["valid"] is False
    cleanup = next(p for p in entry["problems"] if p["field"] == "cleanup")
    assert (cleanup["line"], cleanup["column"]) == (2, 10)
    assert cleanup["message"].startswith("must be one of 'always', 'on_success', 'never'")
    ok = run("validate", "--format", "json", "specs/quickstart.yaml")
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["files"][0] == {
        "path": "specs/quickstart.yaml",
        "valid": True,
        "name": "quickstart",
        "problems": [],
    }


def test_validate_writes_nothing(tmp_path: Path) -> None:
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = run("validate", *EXAMPLES, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_missing_file_and_usage_errors_exit_2(tmp_path: Path) -> None:
    result = run("validate", "absent.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout.startswith("absent.yaml:1:1: cannot read the file")
    assert run("validate", cwd=tmp_path).returncode == 2
    assert run("validate", "--format", "xml", "a.yaml", cwd=tmp_path).returncode == 2


@pytest.mark.parametrize("args", [["--help"], ["validate", "--help"], ["schema", "--help"]])
def test_help_exits_0(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 0
    assert "Usage:" in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and re.search(r"\d+\.\d+\.\d+", result.stdout)


_MODULES = """
import sys
from batchimage.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'azure', 'pydantic', 'rich'})
print('HEAVY=' + ','.join(heavy))
"""


def test_help_and_validate_do_not_import_the_azure_sdks() -> None:
    help_run = run("--help", code=_MODULES)
    assert help_run.stdout.splitlines()[-1] == "HEAVY="  # not even pydantic
    validate_run = run("validate", "specs/quickstart.yaml", code=_MODULES)
    assert "specs/quickstart.yaml: ok" in validate_run.stdout
    assert validate_run.stdout.splitlines()[-1] == "HEAVY=pydantic"


def test_schema_print_write_and_check(tmp_path: Path) -> None:
    committed = (REPO / "schemas/batchimage.schema.json").read_text()
    printed = run("schema", "--print")
    assert printed.returncode == 0 and printed.stdout == committed
    target = tmp_path / "out/schema.json"
    assert run("schema", "--check", "--output", str(target)).returncode == 1
    assert not target.exists()
    assert run("schema", "--output", str(target)).returncode == 0
    assert target.read_text() == committed
    assert run("schema", "--check", "--output", str(target)).returncode == 0
