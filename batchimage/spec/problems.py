"""Turn pydantic validation errors into located `SpecProblem`s a person can act on.

Each error's `loc` is mapped back onto the YAML data (union tags dropped) to find the
line and column; unknown keys and bad choices get "did you mean 'x'?"; a misspelt key
is reported once (its "required" twin is dropped).
"""

from __future__ import annotations

import difflib
import json
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from batchimage.core.errors import SpecProblem
from batchimage.spec.yaml import DataPath, YamlDocument

_UNION_TAGS = frozenset({"named", "profile", "local", "azure_blob"})
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a map of keys",
    "model_type": "a map of keys",
    "model_attributes_type": "a map of keys",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_type": "a date (YYYY-MM-DD)",
    "literal_error": "",
}


def field_path(path: DataPath) -> str:
    """Render a data path as `pools[0].vm_size` (odd keys quoted: `tags["a b"]`)."""
    text = ""
    for item in path:
        if isinstance(item, int):
            text += f"[{item}]"
        elif _PLAIN_KEY.match(item):
            text += f".{item}" if text else item
        else:
            text += f"[{json.dumps(item, ensure_ascii=False)}]"
    return text


def problems_from_error(
    error: ValidationError, doc: YamlDocument, source: str, model: type[BaseModel]
) -> list[SpecProblem]:
    """Every error of `error` (from validating `doc.data` as `model`) as a located problem."""
    details = error.errors(include_url=False)
    renamed: set[DataPath] = set()
    for detail in details:
        if detail["type"] == "extra_forbidden":
            suggestion = _suggest_key(detail, model)
            if suggestion:
                renamed.add((*_data_path(detail["loc"], doc.data)[:-1], suggestion))
    problems = []
    for detail in details:
        path = _data_path(detail["loc"], doc.data)
        if detail["type"] == "state_backend" and isinstance(doc.data.get("state"), dict):
            path = ("state", "backend")
        if detail["type"] == "missing" and path in renamed:
            continue
        is_key = detail["type"] == "extra_forbidden" or "[key]" in detail["loc"]
        where = doc.locate(path, key=is_key)
        message = _message(detail, model)
        problems.append(SpecProblem(source, where.line, where.column, field_path(path), message))
    return problems


def _data_path(loc: tuple[int | str, ...], data: Any) -> DataPath:
    """Map a pydantic `loc` onto the data: drop union tags, keep only real keys/indexes
    (and, past the data, the names of missing fields)."""
    out: list[str | int] = []
    node, inside = data, True
    for item in loc:
        if item == "[key]":
            continue
        in_list = isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node)
        if inside and (in_list or (isinstance(node, dict) and item in node)):
            out.append(item)
            node = node[item]
        elif item in _UNION_TAGS:
            continue
        else:
            inside = False
            out.append(item)
    return tuple(out)


def _message(detail: ErrorDetails, model: type[BaseModel]) -> str:
    kind, ctx, value = detail["type"], detail.get("ctx") or {}, detail.get("input")
    if kind == "extra_forbidden":
        key = str(detail["loc"][-1])
        suggestion = _suggest_key(detail, model)
        hint = f"; did you mean '{suggestion}'?" if suggestion else ""
        shown = key if len(key) <= 60 else key[:57] + "..."
        return f"unknown key '{shown}'{hint}"
    if kind == "missing":
        return "required, but missing"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected) or re.split(r", | or ", expected)
        return _choice_message(value, choices)
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, not {_describe(value)}"
    if kind == "string_pattern_mismatch":
        return f"{_describe(value)} does not match the form {ctx.get('pattern')}"
    message = detail["msg"]
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if message.startswith("Input should be"):
        message = "must be" + message[len("Input should be") :]
    if message.startswith("String should"):
        message = "must" + message[len("String should") :]
    if message.startswith("List should"):
        message = "must" + message[len("List should") :]
    return message


def _choice_message(value: Any, choices: list[str]) -> str:
    shown = ", ".join(f"'{choice}'" for choice in choices)
    message = f"must be one of {shown}, not {_describe(value)}"
    if isinstance(value, str):
        close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
        folded = {choice.lower().replace("-", "_"): choice for choice in choices}
        match = folded.get(value.lower().replace("-", "_")) or (close[0] if close else None)
        if match:
            message += f"; did you mean '{match}'?"
    return message


def _describe(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return f"{value} (a number)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return repr(shown)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


def _suggest_key(detail: ErrorDetails, model: type[BaseModel]) -> str | None:
    key = str(detail["loc"][-1])
    names = _field_names(model, detail["loc"][:-1])
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    folded = {name.replace("_", ""): name for name in names}
    return folded.get(key.lower().replace("-", "").replace("_", "")) or (
        close[0] if close else None
    )


def _field_names(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the model(s) found by following `loc` through the type annotations."""
    current: list[Any] = [model]
    for item in loc:
        current = [nxt for annotation in current for nxt in _step(annotation, item)]
    return [name for t, _ in _members(current) if _is_model(t) for name in t.model_fields]


def _step(annotation: Any, item: int | str) -> list[Any]:
    members = _members([annotation])
    tagged = [t for t, tag in members if tag == item]
    if tagged:
        return tagged
    out: list[Any] = []
    for t, _ in members:
        origin = get_origin(t)
        if _is_model(t) and isinstance(item, str) and item in t.model_fields:
            out.append(t.model_fields[item].annotation)
        elif origin is list and isinstance(item, int):
            out.append(get_args(t)[0])
        elif origin is dict and isinstance(item, str):
            out.append(get_args(t)[1])
    return out


def _members(annotations: list[Any]) -> list[tuple[Any, str | None]]:
    """Flatten Annotated/Optional/Union into (type, union tag or None) pairs."""
    out: list[tuple[Any, str | None]] = []
    for annotation in annotations:
        origin = get_origin(annotation)
        if origin is Annotated:
            inner, *meta = get_args(annotation)
            tag = next((getattr(m, "tag", None) for m in meta if hasattr(m, "tag")), None)
            out += [(t, tag or inner_tag) for t, inner_tag in _members([inner])]
        elif origin in (Union, types.UnionType):
            out += _members(list(get_args(annotation)))
        else:
            out.append((annotation, None))
    return out


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
