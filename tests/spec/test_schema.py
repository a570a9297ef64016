"""The committed JSON Schema matches the models, describes every field, and accepts the examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from batchimage.spec_schema import schema_text
from batchimage.spec_yaml import read_yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "schemas/batchimage.schema.json"


def test_committed_schema_is_in_sync_with_the_models() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "schemas/batchimage.schema.json is out of date: run `batchimage schema`"
    )


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"<root>.{k}", v) for k, v in schema.get("properties", {}).items()]
    for name, definition in schema.get("$defs", {}).items():
        found += [(f"{name}.{k}", v) for k, v in definition.get("properties", {}).items()]
    return found


def test_every_field_has_a_description_and_models_forbid_unknown_keys() -> None:
    schema = json.loads(schema_text())
    missing = [name for name, prop in _properties(schema) if not prop.get("description")]
    assert missing == []
    objects = [d for d in schema["$defs"].values() if d.get("type") == "object"]
    assert objects and all(d.get("additionalProperties") is False for d in objects)


@pytest.mark.parametrize("path", sorted((REPO / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_schema_accepts_every_example(path: Path) -> None:
    doc, problems = read_yaml(path.read_text(encoding="utf-8"))
    assert doc is not None and not problems
    data = {k: v for k, v in doc.data.items() if not k.startswith("x-")}
    jsonschema.validate(data, json.loads(schema_text()))


def test_schema_rejects_what_the_models_reject() -> None:
    schema = json.loads(schema_text())
    base = {"marketplace": {"publisher": "a", "offer": "b", "sku": "c"}}
    both = {**base, "vhd_url": {"url": "https://x/y.vhd"}}
    definitions = schema["$defs"]
    jsonschema.validate(base, {"$defs": definitions, **definitions["BaseImage"]})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(both, {"$defs": definitions, **definitions["BaseImage"]})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "Bad Name"}, schema)
