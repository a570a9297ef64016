"""The JSON Schema of the spec language, generated from the models (for editors and CI).

It accepts what `validate` accepts before the models see the spec: top-level `x-` keys
(anchors), `${VAR}` / `${VAR:-default}` in any scalar value (interpolated first), a number
where text is expected, a number written as text (`"2"`), and display names of regions
(`East US`, normalized)."""

from __future__ import annotations

import json
from typing import Any

# A scalar holding an interpolation (`spec.interpolate`): it is checked once substituted.
INTERPOLATED = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}
NUMERIC_TEXT = {"type": "string", "pattern": r"^\s*[-+]?[0-9]+(\.[0-9]+)?\s*$"}
SCALARS = ("string", "integer", "number", "boolean")
META = ("title", "description", "default", "examples")
NESTED_MAPS = ("properties", "patternProperties", "$defs")
NESTED_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
NESTED_ONE = ("items", "additionalProperties", "not")


def json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12) as a dict."""
    from batchimage.spec.root import Spec

    body = loosen(Spec.model_json_schema(mode="validation"))
    body["patternProperties"] = {"^x-": {"description": "Ignored: a place for YAML anchors."}}
    head = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
    }
    return head | body


def loosen(node: Any) -> Any:
    """`node` with every scalar schema also taking what the loader turns into it."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in NESTED_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: loosen(value) for name, value in out[key].items()}
    for key in NESTED_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [loosen(value) for value in out[key]]
    for key in NESTED_ONE:
        if isinstance(out.get(key), dict):
            out[key] = loosen(out[key])
    kind = out.get("type")
    choice = "enum" in out or "const" in out
    if kind == "null" or (kind not in SCALARS and not choice):
        return out
    meta = {key: out.pop(key) for key in META if key in out}
    choices = [out]
    if kind == "string" and not choice:
        choices.append({"type": "number"})  # coerce_numbers_to_str: `sku: 2019`
    if kind in ("integer", "number"):
        choices.append(NUMERIC_TEXT)
    choices.append(INTERPOLATED)
    return {**meta, "anyOf": choices}


def schema_text() -> str:
    """The JSON Schema as the exact text committed in schemas/batchimage.schema.json."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
