"""Mutation property test over the specs/ examples: one path field or Marketplace identifier
set to hostile junk (random text, over-long names and paths, `~user`, `..`, NUL, real FIFOs,
link loops, folders, devices, /proc files). `batchimage validate` never prints a traceback:
it exits 0, or 2 with every problem located; a value known to be bad is always exit 2 with
a problem at that field. Bounded: a few hundred examples, in-process."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchimage.spec.problems import field_path
from tests.spec.test_bad_input import SEEDS, _walk
from tests.spec.test_path_fields import (
    make_fifo,
    make_folder,
    make_loop,
    no_such_user,
    validate,
)

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")
PATH_KEYS = {"shell_file", "powershell_file", "ssh_public_key", "ca_bundle"}
MARKETPLACE_KEYS = ("publisher", "offer", "sku", "version")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The examples' files plus real bad paths; BASE_VHD unset so the examples' defaults hold."""
    folder = tmp_path_factory.mktemp("path-fuzz")
    shutil.copytree(REPO / "specs/files", folder / "files")
    saved = os.environ.pop("BASE_VHD", None)
    yield folder
    if saved is not None:
        os.environ["BASE_VHD"] = saved


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `data` with `value` at `path` (missing maps on the way are made)."""
    if not path:
        return value
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    inner = data[path[0]] if isinstance(data, list) or path[0] in data else {}
    copy[path[0]] = _set(inner, path[1:], value)
    return copy


def path_slots(seed: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Where a seed holds a local path, plus `state.path`, which every seed may take."""
    slots: list[tuple[Any, ...]] = [("state", "path")]
    for path, _ in _walk(seed):
        if not path or not isinstance(path[-1], str):
            continue
        key, parent = path[-1], path[-2] if len(path) > 1 else None
        if (
            key in PATH_KEYS
            or (key == "source" and parent == "file")
            or (key == "path" and parent == "vhd_file")
        ):
            slots.append(path)
    return slots


def marketplace_slots(seed: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Where a seed names a Marketplace identifier (its base image and plan)."""
    base = seed["image"]["base"].get("marketplace")
    if base is None:
        return []
    at = ("image", "base", "marketplace")
    return [(*at, key) for key in MARKETPLACE_KEYS]


def known_bad_paths(folder: Path) -> list[str]:
    """Paths every path field refuses, whether or not its file must exist."""
    return [
        "n" * 256,
        "/" + "/".join(["d" * 250] * 17),
        make_loop(folder),
        make_loop(folder) + "/inside",
        f"~{no_such_user()}/file",
        "a\0b",
        make_fifo(folder),
        "/proc/self/mem",
        "/proc/self/status",
        "/dev/null",
        make_folder(folder),
        "",
        ".",
    ]


junk_paths = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.sampled_from(["..", ".", "~", "~root", "", "files", "x" * 255, "y" * 256, "pipe"]),
        min_size=1,
        max_size=20,
    ).map("/".join),
    st.text(alphabet="/.~\\:*?\n\t \x7f\u202e", max_size=40),
)
KNOWN_BAD_IDS = ["../../etc/passwd", "", " ", "a b", "a/b", ".hidden", "..", "pub;rm", "\t"]
TOO_LONG = {"offer": "o" * 51, "sku": "s" * 51}  # offer and plan IDs have at most 50


def check(folder: Path, mutated: dict[str, Any], at: tuple[Any, ...], bad: bool) -> None:
    """Validate `mutated`: no traceback; 0 or a located 2; 2 at `at` when `bad`."""
    spec = folder / "spec.yaml"
    raw = yaml.safe_dump(mutated, sort_keys=False, allow_unicode=True, width=100_000)
    spec.write_text(raw, encoding="utf-8")
    code, out, err = validate(spec)
    assert "Traceback" not in out + err
    assert code in (0, 2), out + err
    if code == 0:
        assert not bad, f"{field_path(at)} accepted: {out}"
        return
    matches = [LINE.match(line) for line in out.splitlines()]
    assert matches and all(matches), out
    last_line = raw.count("\n") + 1
    assert all(m and 1 <= int(m["line"]) <= last_line and int(m["col"]) >= 1 for m in matches)
    if bad:
        assert any(m and m["rest"].startswith(f"{field_path(at)}: ") for m in matches), out


@FUZZ
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_path_fields_never_trace_back(workdir: Path, seed: Any, data: st.DataObject) -> None:
    at = data.draw(st.sampled_from(path_slots(seed)))
    known = known_bad_paths(workdir)
    value = data.draw(st.sampled_from(known) | junk_paths)
    check(workdir, _set(seed, at, value), at, bad=value in known)


@settings(FUZZ, max_examples=100)
@given(
    seed=st.sampled_from([s for s in SEEDS if marketplace_slots(s)]),
    data=st.data(),
)
def test_marketplace_ids_never_trace_back(workdir: Path, seed: Any, data: st.DataObject) -> None:
    at = data.draw(st.sampled_from(marketplace_slots(seed)))
    known = KNOWN_BAD_IDS + ([TOO_LONG[at[-1]]] if at[-1] in TOO_LONG else [])
    value = data.draw(st.sampled_from(known) | st.text(max_size=60))
    check(workdir, _set(seed, at, value), at, bad=value in known)
