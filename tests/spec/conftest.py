"""Fixtures for spec tests: write spec text to a real file and load it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from batchimage.core.errors import SpecError, SpecProblem
from batchimage.spec import Spec, load_spec

MINIMAL = """\
name: demo
subscription: 00000000-0000-4000-8000-000000000001
location: eastus
resource_group: demo-rg
image:
  base:
    marketplace: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}
  capture:
    gallery:
      gallery: demo_gallery
      definition: {name: demo, publisher: contoso, offer: demo, sku: linux}
"""


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write (dedented) spec text to tmp_path/<name> and return the file's path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(write_spec: Callable[..., Path]) -> Callable[..., Spec]:
    """Write spec text to a file and load it (environ defaults to empty)."""

    def _load(text: str, environ: dict[str, str] | None = None) -> Spec:
        return load_spec(write_spec(text), environ=environ or {})

    return _load


@pytest.fixture
def problems(write_spec: Callable[..., Path]) -> Callable[..., list[SpecProblem]]:
    """Write spec text, load it expecting failure, and return the problems."""

    def _problems(text: str, environ: dict[str, str] | None = None) -> list[SpecProblem]:
        with pytest.raises(SpecError) as caught:
            load_spec(write_spec(text), environ=environ or {})
        return caught.value.problems

    return _problems
