"""Batch wire conventions: times, ETags, ISO 8601 durations, request bodies, OData
`$select` / `$filter` / `maxresults` paging, conditional headers, and `Reply` helpers."""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.lro import iso
from batchimage.sandbox.services.batch_data.errors import (
    condition_not_met,
    invalid_body,
    invalid_property,
    invalid_query,
)

JSON = "application/json;odata=minimalmetadata"
_TICKS_AT_EPOCH = 621355968000000000  # .NET ticks of 1970-01-01, as Batch ETags count
_DURATION = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


def stamp(ts: float) -> str:
    """Epoch seconds -> the ISO 8601 form Batch writes (`2016-11-22T18:55:25.2608598Z`)."""
    return iso(ts)


def etag(ts: float) -> str:
    """An ETag the way Batch writes them (`0x8D413091E739A56`): hex .NET ticks."""
    return f"0x{int(ts * 10_000_000) + _TICKS_AT_EPOCH:X}"


def rfc1123(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def seconds_of(text: Any) -> float | None:
    """ISO 8601 duration (`PT15M`, `P1DT2H`) -> seconds, None if not one."""
    m = _DURATION.fullmatch(str(text or ""))
    if not m or not any(m.groupdict().values()):
        return None
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    hours = parts.get("d", 0) * 24 + parts.get("h", 0)
    return hours * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def duration(call: Call, name: str, text: Any) -> float:
    """Seconds of an ISO 8601 duration property; 400 InvalidPropertyValue if not one."""
    seconds = seconds_of(text)
    if seconds is None:
        raise invalid_property(call, name, text, "The value is not a valid ISO 8601 duration.")
    return seconds


def iso_duration(seconds: float) -> str:
    """Seconds -> `PT15M` style (whole units where possible)."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    clock += f"{secs}S" if secs or (not days and not clock) else ""
    return out + ("T" + clock if clock else "")


def body(call: Call) -> dict[str, Any]:
    """The request body as a JSON object; 400 InvalidRequestBody otherwise."""
    try:
        data = json.loads(call.body or b"null")
    except ValueError as exc:
        raise invalid_body(call, f"The body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise invalid_body(call, "The body must be a JSON object.")
    return data


def reply(
    status: int, data: Any = None, record: dict[str, Any] | None = None, **headers: str
) -> Reply:
    """A Batch reply; `record` (with `_modified`) adds its ETag and Last-Modified."""
    out = dict(headers)
    if record is not None:
        out["ETag"] = etag(record["_modified"])
        out["Last-Modified"] = rfc1123(record["_modified"])
    if status in (201, 202, 204) and data is None and record is not None:
        out.setdefault("DataServiceId", record.get("url", ""))
    return Reply(status, data, out, JSON)


def check_conditions(call: Call, record: dict[str, Any], *, reading: bool) -> None:
    """Honour If-Match / If-None-Match / If-(Un)Modified-Since against `record`."""
    tag = etag(record["_modified"])
    modified = int(record["_modified"])
    failed = 304 if reading else 412
    match = _unquote(call.headers.get("if-match"))
    if match and match not in ("*", tag):
        raise condition_not_met(call, 412)
    none_match = _unquote(call.headers.get("if-none-match"))
    if none_match and none_match in ("*", tag):
        raise condition_not_met(call, failed)
    since = _http_time(call.headers.get("if-modified-since"))
    if since is not None and modified <= since:
        raise condition_not_met(call, failed)
    until = _http_time(call.headers.get("if-unmodified-since"))
    if until is not None and modified > until:
        raise condition_not_met(call, 412)


def _unquote(tag: str | None) -> str | None:
    """`"0x8D.."` or `W/"0x8D.."` -> `0x8D..` (clients quote ETags; Batch sends them bare)."""
    return tag.removeprefix("W/").strip('"') if tag else tag


def _http_time(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(text).timestamp())
    except (TypeError, ValueError):
        return None


def select(call: Call, item: dict[str, Any]) -> dict[str, Any]:
    """Apply `$select` (comma-separated top-level properties) to a rendered item."""
    wanted = call.arg("$select")
    if not wanted:
        return item
    names = {n.strip().lower() for n in wanted.split(",") if n.strip()}
    return {k: v for k, v in item.items() if k.lower() in names}


_CLAUSE = re.compile(
    r"\s*(?:startswith\(\s*(?P<sw_prop>[\w/]+)\s*,\s*'(?P<sw_val>[^']*)'\s*\)"
    r"|(?P<prop>[\w/]+)\s+(?P<op>eq|ne)\s+(?:'(?P<val>[^']*)'|(?P<raw>[\w.-]+)))\s*",
    re.IGNORECASE,
)


def filter_items(call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply a small OData `$filter`: `a eq 'x'`, `a ne 'x'`, `startswith(a,'x')`, joined
    by `and` / `or` (no parentheses); other forms answer 400 InvalidQueryParameterValue."""
    text = call.arg("$filter")
    if not text:
        return items
    tests: list[Callable[[dict[str, Any]], bool]] = []
    joins: list[str] = []
    for i, part in enumerate(re.split(r"\s+(and|or)\s+", text.strip(), flags=re.IGNORECASE)):
        if i % 2:
            joins.append(part.lower())
            continue
        m = _CLAUSE.fullmatch(part)
        if not m:
            raise invalid_query(
                call, "$filter", text, f"The sandbox cannot evaluate the clause '{part}'."
            )
        tests.append(_clause(m))

    def keep(item: dict[str, Any]) -> bool:
        result = tests[0](item)
        for join, test in zip(joins, tests[1:], strict=True):
            result = (result and test(item)) if join == "and" else (result or test(item))
        return result

    return [i for i in items if keep(i)]


def _clause(m: re.Match[str]) -> Callable[[dict[str, Any]], bool]:
    if m.group("sw_prop"):
        prop, prefix = m.group("sw_prop"), m.group("sw_val").lower()
        return lambda item: _value(item, prop).lower().startswith(prefix)
    prop, op = m.group("prop"), m.group("op").lower()
    want = (m.group("val") if m.group("val") is not None else m.group("raw")).lower()
    if op == "eq":
        return lambda item: _value(item, prop).lower() == want
    return lambda item: _value(item, prop).lower() != want


def _value(item: dict[str, Any], path: str) -> str:
    found: Any = item
    for key in path.split("/"):
        found = found.get(key) if isinstance(found, dict) else None
    if isinstance(found, bool):
        return "true" if found else "false"
    return "" if found is None else str(found)


def page(call: Call, items: list[dict[str, Any]], url: str) -> Reply:
    """A list reply (`value`, `odata.nextLink` when `maxresults` cuts it short)."""
    try:
        size = int(call.arg("maxresults") or 1000)
        start = int(call.arg("$skiptoken") or 0)
    except ValueError as exc:
        raise invalid_query(call, "maxresults", call.arg("maxresults") or "", str(exc)) from exc
    size = max(1, min(size, 1000))
    out: dict[str, Any] = {"value": [select(call, i) for i in items[start : start + size]]}
    if start + size < len(items):
        query = {k: v for k, v in call.query.items() if k not in ("api-version", "$skiptoken")}
        query.update({"maxresults": str(size), "$skiptoken": str(start + size)})
        out["odata.nextLink"] = f"{url}?{urlencode(query, safe='$,')}"
    return Reply(200, out, {}, JSON)
