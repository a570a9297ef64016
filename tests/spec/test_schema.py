"""The committed JSON Schema matches the models, describes every field, and accepts the examples."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from batchimage.spec import load_spec_text
from batchimage.spec.schema import schema_text
from batchimage.spec.yaml import read_yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "schemas/batchimage.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


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


def _read(text: str) -> dict[str, Any]:
    doc, problems = read_yaml(text)
    assert doc is not None and not problems, problems
    data: dict[str, Any] = doc.data
    return data


@pytest.mark.parametrize("path", sorted((REPO / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_schema_accepts_every_example(path: Path) -> None:
    """As the file is, `x-` keys and all (two-pools.yaml keeps its anchors in one)."""
    jsonschema.validate(_read(path.read_text(encoding="utf-8")), SCHEMA)


def _doc_blocks() -> list[tuple[str, str]]:
    """Every ```yaml block of the README and docs/ whose top-level keys are spec keys (a
    whole spec, or part of one), as (where, text)."""
    fields = set(SCHEMA["properties"])
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^```yaml\n(.*?)^```", text, re.M | re.S):
            doc, problems = read_yaml(match.group(1))
            keys = set(doc.data) if doc is not None and isinstance(doc.data, dict) else set()
            if keys and not problems and keys <= fields | {k for k in keys if k.startswith("x-")}:
                line = text[: match.start()].count("\n") + 2
                found.append((f"{path.relative_to(REPO)}:{line}", match.group(1)))
    return found


def _merged(base: Any, part: Any) -> Any:
    if isinstance(base, dict) and isinstance(part, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in part.items()}}
    return part


DOC_BLOCKS = _doc_blocks()


def test_the_docs_have_spec_blocks() -> None:
    wheres = [where.split(":")[0] for where, _ in DOC_BLOCKS]
    assert wheres.count("README.md") == 1 and wheres.count("docs/spec.md") >= 3, wheres


@pytest.mark.parametrize(("where", "text"), DOC_BLOCKS, ids=[w for w, _ in DOC_BLOCKS])
def test_schema_accepts_every_spec_block_of_the_docs(where: str, text: str) -> None:
    """A whole spec as it is; a part of one (`${REGION:-westeurope}`, an `x-` anchor, ...)
    merged into specs/quickstart.yaml. Validate accepts each one too."""
    quickstart = _read((REPO / "specs/quickstart.yaml").read_text(encoding="utf-8"))
    block = _read(text)
    data = block if {"name", "image"} <= set(block) else _merged(quickstart, block)
    jsonschema.validate(data, SCHEMA)
    env = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-4000-8000-000000000001"}
    as_text = yaml.safe_dump(data, sort_keys=False)
    load_spec_text(as_text, f"{where}.yaml", base_dir=REPO / "specs", environ=env)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("location", "East US"),
        ("location", "${REGION:-westeurope}"),
        ("subscription", "${AZURE_SUBSCRIPTION_ID}"),
        ("subscription", "0000AAAA-0000-4000-8000-000000000001"),
        ("name", "quick-${SUFFIX:-a}"),
        ("cleanup", "${CLEANUP:-always}"),
    ],
)
def test_schema_accepts_what_validate_accepts(field: str, value: str) -> None:
    data = _read((REPO / "specs/quickstart.yaml").read_text(encoding="utf-8"))
    data[field] = value
    data["pools"][0]["dedicated_nodes"] = "${NODES:-2}"
    data["image"]["capture"]["gallery"]["definition"]["sku"] = 2019
    jsonschema.validate(data, SCHEMA)
    environ = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-4000-8000-000000000001"}
    text = yaml.safe_dump(data, sort_keys=False)
    load_spec_text(text, "case.yaml", base_dir=REPO / "specs", environ=environ)


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
    quickstart = _read((REPO / "specs/quickstart.yaml").read_text(encoding="utf-8"))
    for bad in ({"location": "east/us"}, {"unknown_key": 1}, {"cleanup": "sometimes"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**quickstart, **bad}, schema)
