"""Property tests: random and mutated specs always end in exit 2 with located messages, never a
traceback, never a written file. Most run in-process through the CLI's `main`; a few as real
subprocesses."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchimage.cli import main
from batchimage.spec.common import SpecModel

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "specs").glob("*.yaml"))
SEEDS = [  # 'x-' keys are anchors only (ignored), so mutating them proves nothing
    {k: v for k, v in yaml.safe_load(p.read_text(encoding="utf-8")).items() if k[:2] != "x-"}
    for p in EXAMPLES
]
FREE_FORM = {"tags", "env", "environment", "metadata", "secret_env"}
LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")
FAST = settings(
    max_examples=int(os.environ.get("SPEC_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _all_fields() -> set[str]:
    names: set[str] = set()
    pending: list[type[SpecModel]] = [SpecModel]
    while pending:
        model = pending.pop()
        names.update(model.model_fields)
        pending.extend(model.__subclasses__())
    return names


ALL_FIELDS = _all_fields()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the examples' referenced files, where each case writes spec.yaml."""
    folder = tmp_path_factory.mktemp("bad-input")
    shutil.copytree(REPO / "specs/files", folder / "files")
    return folder


@contextlib.contextmanager
def _env_without_base_vhd() -> Iterator[None]:
    saved = os.environ.pop("BASE_VHD", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["BASE_VHD"] = saved


def validate(folder: Path, raw: bytes) -> tuple[int, str, str]:
    """Write raw bytes to folder/spec.yaml and run `batchimage validate` in-process."""
    spec = folder / "spec.yaml"
    spec.write_bytes(raw)
    before = sorted(folder.rglob("*"))
    out, err = io.StringIO(), io.StringIO()
    code: Any = None
    with _env_without_base_vhd(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["validate", str(spec)])
        except SystemExit as stop:
            code = stop.code
    assert sorted(folder.rglob("*")) == before, "validate wrote a file"
    return int(code), out.getvalue(), err.getvalue()


def assert_located_failure(folder: Path, raw: bytes) -> list[re.Match[str]]:
    """validate exits 2; every stdout line is `path:line:col: ...` within the file; no traceback."""
    code, out, err = validate(folder, raw)
    assert code == 2, out + err
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert lines, err
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    last_line = raw.count(b"\n") + 1
    for match in matches:
        assert match is not None
        assert match["path"] == str(folder / "spec.yaml")
        assert 1 <= int(match["line"]) <= last_line + 1
        assert int(match["col"]) >= 1
    assert len(out) < 2000 * len(lines), "a message echoes too much input"
    return [m for m in matches if m]


def dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")


def _walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _replace(data[path[0]], path[1:], value)  # type: ignore[index]
    return copy


def _strict_maps(data: Any) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    return [
        (path, node)
        for path, node in _walk(data)
        if isinstance(node, dict)
        and not (path and path[-1] in FREE_FORM)
        and not (path and path[-1] == "cloud")
    ]


seeds = st.sampled_from(SEEDS)
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_unmutated_seeds_are_valid(workdir: Path) -> None:
    for seed in SEEDS:
        code, out, err = validate(workdir, dump(seed))
        assert code == 0, out + err


@FAST
@given(seed=seeds, data=st.data())
def test_unknown_key_anywhere(workdir: Path, seed: Any, data: st.DataObject) -> None:
    path, node = data.draw(st.sampled_from(_strict_maps(seed)))
    key = data.draw(
        st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
            lambda k: k not in ALL_FIELDS and not k.startswith("x")
        )
    )
    mutated = _replace(seed, path, {**node, key: "value"})
    found = assert_located_failure(workdir, dump(mutated))
    assert any(f"unknown key '{key}'" in m["rest"] for m in found)


@FAST
@given(seed=seeds, data=st.data())
def test_misspelt_key_gets_a_suggestion(workdir: Path, seed: Any, data: st.DataObject) -> None:
    candidates = [
        (path, node, key) for path, node in _strict_maps(seed) for key in node if len(key) >= 4
    ]
    path, node, key = data.draw(st.sampled_from(candidates))
    position = data.draw(st.integers(1, len(key) - 1))
    typo = key[:position] + key[position + 1 :]  # drop one letter
    if typo in ALL_FIELDS or typo in node:
        return
    renamed = {(typo if k == key else k): v for k, v in node.items()}
    found = assert_located_failure(workdir, dump(_replace(seed, path, renamed)))
    assert any(f"unknown key '{typo}'; did you mean '" in m["rest"] for m in found)


@FAST
@given(seed=seeds, data=st.data())
def test_wrong_types(workdir: Path, seed: Any, data: st.DataObject) -> None:
    paths = [(p, n) for p, n in _walk(seed) if p and not (isinstance(n, str) and "${" in n)]
    path, node = data.draw(st.sampled_from(paths))
    if isinstance(node, (dict, list)):
        wrong: Any = data.draw(st.integers() | st.booleans())
        if path[-1] == "cloud" or (isinstance(node, dict) and not node):
            return
    else:
        wrong = data.draw(st.lists(junk, min_size=1, max_size=3) | st.just({"k": [1]}))
    assert_located_failure(workdir, dump(_replace(seed, path, wrong)))


@FAST
@given(seed=seeds, depth=st.integers(1, 120), data=st.data())
def test_deep_nesting(workdir: Path, seed: Any, depth: int, data: st.DataObject) -> None:
    leaves = [p for p, n in _walk(seed) if p and not isinstance(n, (dict, list))]
    path = data.draw(st.sampled_from(leaves))
    nested: Any = "x"
    for level in range(depth):
        nested = [nested] if level % 2 else {"k": nested}
    text = yaml.safe_dump(_replace(seed, path, nested), sort_keys=False, width=10_000)
    assert_located_failure(workdir, text.encode())


@FAST
@given(
    seed=seeds, size=st.integers(300, 300_000), field=st.sampled_from(["name", "resource_group"])
)
def test_huge_strings_are_not_echoed(workdir: Path, seed: Any, size: int, field: str) -> None:
    found = assert_located_failure(workdir, dump({**seed, field: "Q" * size}))
    assert any(m["rest"].startswith(f"{field}: ") for m in found)


@FAST
@given(index=st.integers(0, len(EXAMPLES) - 1), data=st.data())
def test_non_utf8_byte_is_located_exactly(workdir: Path, index: int, data: st.DataObject) -> None:
    raw = EXAMPLES[index].read_bytes()
    offset = data.draw(st.integers(0, len(raw)))
    bad = data.draw(st.sampled_from([b"\xff", b"\xfe", b"\xc3(", b"\x80"]))
    [match] = assert_located_failure(workdir, raw[:offset] + bad + raw[offset:])
    before = raw[:offset]
    assert int(match["line"]) == before.count(b"\n") + 1
    assert int(match["col"]) == offset - (before.rfind(b"\n") + 1) + 1
    assert "not valid UTF-8" in match["rest"]


@FAST
@given(index=st.integers(0, len(EXAMPLES) - 1), data=st.data())
def test_tab_indentation(workdir: Path, index: int, data: st.DataObject) -> None:
    lines = EXAMPLES[index].read_text(encoding="utf-8").splitlines(keepends=True)
    keyed = [
        i
        for i, line in enumerate(lines)
        if line.startswith("  ") and re.match(r"^\s+(- )?[a-z_]+:", line)
    ]
    row = data.draw(st.sampled_from(keyed))
    lines[row] = "\t" + lines[row].lstrip(" ")
    found = assert_located_failure(workdir, "".join(lines).encode())
    assert any("tab" in m["rest"] for m in found)


@settings(FAST, max_examples=min(FAST.max_examples, 25))
@given(
    width=st.integers(8, 30), depth=st.integers(5, 12), under=st.sampled_from(["x-bomb", "tags"])
)
def test_alias_bombs_stop_quickly(workdir: Path, width: int, depth: int, under: str) -> None:
    if width**depth <= 40_000:
        return
    lines = [f"{under}:", f"  l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
    raw = (EXAMPLES[0].read_text(encoding="utf-8") + "\n".join(lines) + "\n").encode()
    found = assert_located_failure(workdir, raw)
    assert any("alias bomb" in m["rest"] for m in found)


@FAST
@given(data=junk)
def test_random_yaml_documents(workdir: Path, data: Any) -> None:
    assert_located_failure(workdir, yaml.safe_dump(data).encode())


@FAST
@given(raw=st.binary(max_size=400))
def test_random_bytes(workdir: Path, raw: bytes) -> None:
    assert_located_failure(workdir, raw)


_BAD_FILES = st.sampled_from(
    [
        b"name: demo\n\tlocation: eastus\n",
        b"name: caf\xe9\n",
        b"a: &a [*a, *a]\nb: *a\n",
        b"[" * 500 + b"]" * 500,
        b"name: !!python/object/apply:os.system ['touch pwned']\n",
    ]
)


@settings(max_examples=5, deadline=None)
@given(raw=_BAD_FILES)
def test_as_a_subprocess(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "spec.yaml"
        spec.write_bytes(raw)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run(
            [sys.executable, "-m", "batchimage", "validate", "spec.yaml"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert re.match(r"^spec\.yaml:\d+:\d+: ", result.stdout)
        assert sorted(os.listdir(folder)) == ["spec.yaml"]
