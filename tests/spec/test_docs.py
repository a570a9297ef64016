"""docs/spec.md documents every key of the spec language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchimage.spec import load_spec_text
from batchimage.spec.common import SpecModel

REPO = Path(__file__).resolve().parents[2]


def test_every_field_of_every_model_is_documented() -> None:
    text = (REPO / "docs/spec.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`[^`]*`", text))
    words = {w for chunk in documented for w in re.findall(r"[a-z_][a-z0-9_]*", chunk)}
    models: list[type[SpecModel]] = [SpecModel]
    missing = []
    while models:
        model = models.pop()
        models.extend(model.__subclasses__())
        missing += [f"{model.__name__}.{name}" for name in model.model_fields if name not in words]
    assert missing == []


def _first_yaml_block(path: Path, heading: str) -> str:
    text = path.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(
    ("doc", "heading"), [("README.md", "## Spec walkthrough"), ("docs/spec.md", "## A first spec")]
)
def test_the_walkthrough_spec_is_valid(doc: str, heading: str) -> None:
    text = _first_yaml_block(REPO / doc, heading)
    spec = load_spec_text(text, f"{doc}.yaml", base_dir=REPO / "specs", environ={})
    assert spec.name == "quickstart"
    assert spec.pools[0].wait_for == "idle"
