"""Routes: (method, path pattern) -> handler, matched case-insensitively like ARM paths.

A pattern is a path with `{name}` placeholders (one segment each; `{name:path}` takes the
rest). `plane` picks auth and error shape: "arm", "batch", "auth", "admin", "public".
`operation` names the operation in the request log and counters (REST operationId style).
`write` is whether it changes the world (default: every method but GET/HEAD).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchimage.sandbox.context import Call, Reply

Handler = Callable[["Call"], "Reply"]
_PLACEHOLDER = re.compile(r"\{(\w+)(:path)?\}")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """`/a/{x}/b/{rest:path}` -> a case-insensitive full-match regex with named groups."""
    out, pos = [], 0
    for m in _PLACEHOLDER.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out) + "/?", re.IGNORECASE)


@dataclass
class Route:
    """One operation of one API."""

    method: str
    pattern: str
    handler: Handler
    operation: str
    plane: str = "arm"
    write: bool | None = None
    regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        self.regex = compile_pattern(self.pattern)
        if self.write is None:
            self.write = self.method not in ("GET", "HEAD")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method and not (method == "HEAD" and self.method == "GET"):
            return None
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


class Router:
    """Routes in registration order; the first match wins (register specific ones first)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, route: Route) -> None:
        self.routes.append(route)

    def extend(self, routes: list[Route]) -> None:
        self.routes.extend(routes)

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for `method path` and its path parameters, or None."""
        exact = [r for r in self.routes if r.method == method]
        for route in exact + [r for r in self.routes if r.method != method]:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None

    def path_known(self, path: str) -> list[str]:
        """Methods that some route serves at `path` (for 405 answers)."""
        return sorted({r.method for r in self.routes if r.regex.fullmatch(path)})
