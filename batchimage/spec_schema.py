"""The JSON Schema of the spec language, generated from the models (for editors and CI)."""

from __future__ import annotations

import json
from typing import Any

SCHEMA_PATH = "schemas/batchimage.schema.json"


def json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12) as a dict."""
    from batchimage.spec_root import Spec

    body = Spec.model_json_schema(mode="validation")
    head = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
    }
    return head | body


def schema_text() -> str:
    """The JSON Schema as the exact text committed in schemas/batchimage.schema.json."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
