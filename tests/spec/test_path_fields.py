"""Every local path field of the spec, and `--state`, against every kind of bad path (real
FIFOs, symbolic link loops, folders, devices, /proc files, over-long names and paths,
unknown `~user`, NUL): exit 2, no traceback, one problem located at the value with the
field's path and a message that says what to do. Run in-process through the CLI's `main`,
a few as real subprocesses."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import re
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest

from batchimage.cli import main
from batchimage.core.errors import UsageError
from batchimage.spec.common import SecretRef, SpecModel
from tests.engine.procs import child_env
from tests.spec.conftest import MINIMAL

LINUX = MINIMAL.replace("  capture:\n", "{image}  capture:\n") + "{root}"
WINDOWS = LINUX.replace(
    "{publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}",
    "{publisher: MicrosoftWindowsServer, offer: WindowsServer, sku: 2022-datacenter-g2}",
)
VHD = LINUX.replace(
    "    marketplace: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}\n",
    "    os_type: linux\n    vhd_file:\n      storage_account: demostore\n      path: {value}\n",
)


@dataclass(frozen=True)
class Placement:
    """Where one path field is written in a spec, and the model field it is."""

    field: str  # the located problem's field path
    model_field: str  # Model.field
    template: str
    image: str = ""
    root: str = ""
    must_exist: bool = True

    def text(self, value: str) -> str:
        """The spec with `value` (a YAML scalar) in this field."""
        image = self.image.replace("{value}", value)
        root = self.root.replace("{value}", value)
        return (
            self.template.replace("{image}", image)
            .replace("{root}", root)
            .replace("{value}", value)
        )


PLACEMENTS = [
    Placement("image.base.vhd_file.path", "VhdFile.path", VHD),
    Placement(
        "image.build.ssh_public_key",
        "Build.ssh_public_key",
        LINUX,
        image="  build:\n    ssh_public_key: {value}\n",
    ),
    Placement(
        "image.customize[0].shell_file",
        "CustomizeStep.shell_file",
        LINUX,
        image="  customize:\n    - shell_file: {value}\n",
    ),
    Placement(
        "image.customize[0].powershell_file",
        "CustomizeStep.powershell_file",
        WINDOWS,
        image="  customize:\n    - powershell_file: {value}\n",
    ),
    Placement(
        "image.customize[0].file.source",
        "FileUpload.source",
        LINUX,
        image="  customize:\n    - file:\n        destination: /opt/x\n        source: {value}\n",
    ),
    Placement(
        "image.customize[0].secret_env.TOKEN.file",
        "SecretRef.file",
        LINUX,
        image="  customize:\n    - shell: echo hi\n"
        "      secret_env:\n        TOKEN: {file: {value}}\n",
        must_exist=False,
    ),
    Placement(
        "cloud.ca_bundle",
        "CustomCloud.ca_bundle",
        LINUX,
        root="cloud:\n  name: stack\n  arm_endpoint: https://arm.example\n  ca_bundle: {value}\n",
    ),
    Placement(
        "state.path", "LocalState.path", LINUX, root="state:\n  path: {value}\n", must_exist=False
    ),
]


def _path_fields() -> set[str]:
    """Model.field for every spec field whose type holds a `Path`."""
    found: set[str] = set()
    pending: list[type[SpecModel]] = [SpecModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        for name, info in model.model_fields.items():
            if _holds_path(info.annotation):
                found.add(f"{model.__name__}.{name}")
    return found


def _holds_path(annotation: Any) -> bool:
    if annotation is Path:
        return True
    origin = get_origin(annotation)
    if origin in (Annotated, Union, types.UnionType):
        return any(_holds_path(arg) for arg in get_args(annotation))
    return False


def test_the_table_covers_every_path_field() -> None:
    assert {p.model_field for p in PLACEMENTS} == _path_fields()


def no_such_user() -> str:
    name = "nosuchuser"
    while True:
        try:
            pwd.getpwnam(name)
        except KeyError:
            return name
        name += "x"


@dataclass(frozen=True)
class Bad:
    """One kind of bad path: the value (made in `folder`) and what its message says."""

    kind: str
    make: Callable[[Path], str]
    says: str
    needs_existence: bool = False  # only a field whose file must exist refuses it


def make_fifo(folder: Path) -> str:
    path = folder / "pipe"
    if not path.exists():
        os.mkfifo(path)
    return str(path)


def make_loop(folder: Path) -> str:
    one, two = folder / "loop-a", folder / "loop-b"
    if not one.is_symlink():
        one.symlink_to(two)
        two.symlink_to(one)
    return str(one)


def make_folder(folder: Path) -> str:
    (folder / "a-folder").mkdir(exist_ok=True)
    return str(folder / "a-folder")


BAD = [
    Bad("long name", lambda _: "n" * 300, "is 300 bytes long; a name here has at most"),
    Bad("long path", lambda _: "/" + "/".join(["d" * 200] * 25), "a path has at most 4095"),
    Bad("symlink loop", make_loop, "leads into a loop of symbolic links: fix or remove the link"),
    Bad("loop inside", lambda f: make_loop(f) + "/x.sh", "leads into a loop of symbolic links"),
    Bad("unknown user", lambda _: f"~{no_such_user()}/x.sh", "names no user on this machine"),
    Bad("NUL", lambda _: "a\0b", "a path cannot hold a NUL character"),
    Bad("FIFO", make_fifo, "is a named pipe (FIFO), not a regular file: give a regular file"),
    Bad("/proc/self/mem", lambda _: "/proc/self/mem", "is a kernel file (under /proc or /sys)"),
    Bad("device", lambda _: "/dev/null", "is a character device, not a regular file"),
    Bad("folder", make_folder, "is a folder, not a regular file"),
    Bad("missing", lambda f: str(f / "absent.sh"), "no such file: ", needs_existence=True),
]


def validate(spec: Path) -> tuple[int, str, str]:
    """`batchimage validate spec` in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["validate", str(spec)])
        except SystemExit as stop:
            code = stop.code
    return int(code), out.getvalue(), err.getvalue()


def where(text: str, value: str) -> tuple[int, int]:
    """Line and column (1-based) of the YAML scalar `value` in `text`."""
    offset = text.index(value)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@pytest.mark.parametrize("placement", PLACEMENTS, ids=lambda p: p.field)
def test_each_placement_is_valid_with_a_good_path(tmp_path: Path, placement: Placement) -> None:
    (tmp_path / "good.txt").write_text("content\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(placement.text("good.txt"))
    code, out, err = validate(spec)
    assert code == 0, out + err


@pytest.mark.parametrize("bad", BAD, ids=lambda b: b.kind)
@pytest.mark.parametrize("placement", PLACEMENTS, ids=lambda p: p.field)
def test_bad_path_is_one_located_problem(tmp_path: Path, placement: Placement, bad: Bad) -> None:
    value = json.dumps(bad.make(tmp_path))  # a YAML double-quoted scalar
    spec = tmp_path / "spec.yaml"
    text = placement.text(value)
    spec.write_text(text)
    code, out, err = validate(spec)
    assert "Traceback" not in out + err
    if bad.needs_existence and not placement.must_exist:
        assert code == 0, out + err
        return
    assert code == 2, out + err
    line, column = where(text, value)
    [problem] = out.splitlines()
    assert problem.startswith(f"{spec}:{line}:{column}: {placement.field}: "), problem
    assert bad.says in problem


@dataclass(frozen=True)
class StateCase:
    """A bad `--state` value and what the message says."""

    kind: str
    make: Callable[[Path], str]
    says: str


STATE_CASES = [
    StateCase("long name", lambda _: "s" * 240, "a name here has at most 225"),
    StateCase("long path", lambda _: "/" + "/".join(["d" * 200] * 25), "at most 4095"),
    StateCase("symlink loop", make_loop, "loop of symbolic links"),
    StateCase("FIFO", make_fifo, "is a named pipe (FIFO)"),
    StateCase("device", lambda _: "/dev/null", "is a character device"),
    StateCase("folder", make_folder, "is a directory"),  # click's own check of --state
    StateCase("/proc", lambda _: "/proc/self/status", "is a kernel file"),
]


@pytest.mark.parametrize("case", STATE_CASES, ids=lambda c: c.kind)
@pytest.mark.parametrize("command", ["status", "plan", "apply"])
def test_bad_state_option_is_a_usage_error(tmp_path: Path, command: str, case: StateCase) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(LINUX.replace("{image}", "").replace("{root}", "cloud: sandbox\n"))
    value = case.make(tmp_path)
    argv = [command, str(spec), "--state", value] + (["--yes"] if command == "apply" else [])
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        pytest.raises(SystemExit) as stop,
    ):
        main(argv)
    assert stop.value.code == 2, out.getvalue() + err.getvalue()
    assert "Traceback" not in out.getvalue() + err.getvalue()
    assert "error: --state " in err.getvalue() or "'--state'" in err.getvalue(), err.getvalue()
    assert case.says in err.getvalue()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")) == []


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchimage", *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_refuses_a_fifo_state_path_as_a_subprocess(tmp_path: Path) -> None:
    """A FIFO as `state.path` used to make status wait forever for a writer."""
    os.mkfifo(tmp_path / "state.json")
    placement = next(p for p in PLACEMENTS if p.field == "state.path")
    (tmp_path / "spec.yaml").write_text(placement.text("state.json"))
    done = _run("status", "spec.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert re.match(
        r"error: spec\.yaml:\d+:9: state\.path: .*state\.json is a named pipe \(FIFO\)", done.stderr
    ), done.stderr
    (tmp_path / "spec.yaml").write_text(LINUX.replace("{image}", "").replace("{root}", ""))
    done = _run("status", "spec.yaml", "--state", "state.json", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: --state state.json: " in done.stderr


@pytest.mark.parametrize("kind", ["/proc/self/mem", "loop", "~user", "long name"])
def test_validate_as_a_subprocess(tmp_path: Path, kind: str) -> None:
    value = {
        "/proc/self/mem": "/proc/self/mem",
        "loop": make_loop(tmp_path),
        "~user": f"~{no_such_user()}/data.bin",
        "long name": "f" * 256,
    }[kind]
    placement = next(p for p in PLACEMENTS if p.field == "image.customize[0].file.source")
    (tmp_path / "spec.yaml").write_text(placement.text(json.dumps(value)))
    done = _run("validate", "spec.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert re.match(r"^spec\.yaml:\d+:\d+: image\.customize\[0\]\.file\.source: ", done.stdout)
    assert done.stderr.strip() == "1 file(s) checked, 1 problem(s) in 1 file(s)"


def test_a_secret_file_that_became_a_fifo_is_not_read(tmp_path: Path) -> None:
    """Checked again when the secret is read: reading a pipe would wait for a writer."""
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    ref = SecretRef(file=secret)
    secret.unlink()
    os.mkfifo(secret)
    with pytest.raises(UsageError, match=r"token is a named pipe \(FIFO\), not a regular file"):
        ref.resolve()
