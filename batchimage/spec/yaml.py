"""Read one YAML document into plain data plus the line/column of every key and value.

Built from the parser's event stream (never the recursive composer), so nesting depth,
alias expansion and file size are bounded and every failure is a located `YamlProblem`
instead of an exception: duplicate keys, non-string keys, unsupported tags, tabs,
non-UTF-8 bytes, several documents, alias bombs. Mapping keys are kept as written
(`on:` stays the string "on"); timestamps stay strings; `<<` merge keys work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import Resolver

MAX_BYTES = 2_000_000
MAX_DEPTH = 40
MAX_VALUES = 20_000

DataPath = tuple[str | int, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the source text."""

    line: int
    column: int


@dataclass(frozen=True)
class YamlProblem:
    """A located problem found while reading the YAML (before any model checks)."""

    position: Position
    path: DataPath
    message: str


@dataclass
class YamlDocument:
    """The data of one YAML document and where each value and key was written."""

    data: Any
    values: dict[DataPath, Position] = field(default_factory=dict)
    keys: dict[DataPath, Position] = field(default_factory=dict)
    styles: dict[DataPath, str] = field(default_factory=dict)

    def locate(self, path: DataPath, *, key: bool = False) -> Position:
        """Position of `path` (its key if `key`), else of its nearest written ancestor."""
        if key and path in self.keys:
            return self.keys[path]
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, Position(1, 1))


class _Stop(Exception):
    """Ends reading early with one located problem."""

    def __init__(self, problem: YamlProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass(eq=False)
class _Node:
    kind: str  # "scalar" | "seq" | "map" | "alias" (items[0] is the anchored node)
    start: Position
    value: str = ""
    tag: str | None = None
    plain: bool = False
    style: str = ""
    items: list[_Node] = field(default_factory=list)
    pending_key: _Node | None = None


def _pos(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def decode(raw: bytes) -> tuple[str | None, list[YamlProblem]]:
    """Decode spec bytes as UTF-8 (a BOM is allowed); a bad byte is a located problem."""
    if len(raw) > MAX_BYTES:
        msg = f"the file is {len(raw)} bytes; a spec may be at most {MAX_BYTES} bytes"
        return None, [YamlProblem(Position(1, 1), (), msg)]
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        msg = f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        return None, [YamlProblem(Position(line, column), (), msg)]


def read_yaml(text: str) -> tuple[YamlDocument | None, list[YamlProblem]]:
    """Parse `text` as one YAML document; return it (None if unusable) and every problem."""
    problems: list[YamlProblem] = []
    try:
        root = _compose(text, problems)
        if root is None:
            problems.append(YamlProblem(Position(1, 1), (), "the file is empty"))
            return None, problems
        doc = YamlDocument(data=None)
        doc.data = _Builder(doc, problems).build(root, (), 0)
    except _Stop as stop:
        problems.append(stop.problem)
        return None, problems
    except yaml.MarkedYAMLError as exc:
        problems.append(_syntax_problem(exc, text))
        return None, problems
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        problems.append(_reader_problem(exc, text))
        return None, problems
    return doc, list(dict.fromkeys(problems))


def _compose(text: str, problems: list[YamlProblem]) -> _Node | None:
    """Turn the event stream into a node graph; aliases share nodes (nothing expands yet)."""
    stack: list[_Node] = []
    anchors: dict[str, _Node] = {}
    root: _Node | None = None
    documents = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                msg = "a spec file holds one YAML document; remove the extra '---' document"
                raise _Stop(YamlProblem(_pos(event.start_mark), (), msg))
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            stack.pop()
            continue
        if isinstance(event, yaml.AliasEvent):
            target = anchors.get(event.anchor)  # type: ignore[arg-type]
            if target is None:
                msg = f"unknown YAML alias '*{event.anchor}'"
                raise _Stop(YamlProblem(_pos(event.start_mark), (), msg))
            node = _Node("alias", _pos(event.start_mark), items=[target])
        elif isinstance(event, yaml.ScalarEvent):
            node = _Node(
                "scalar",
                _pos(event.start_mark),
                value=event.value,
                tag=event.tag,
                plain=bool(event.implicit[0]),
                style=event.style or "",
            )
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            kind = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
            node = _Node(kind, _pos(event.start_mark), tag=event.tag)
        else:
            continue
        anchor = getattr(event, "anchor", None)
        if anchor is not None and not isinstance(event, yaml.AliasEvent):
            anchors[anchor] = node
        if not stack:
            root = node
        else:
            _attach(stack[-1], node)
        if node.kind in ("seq", "map"):
            stack.append(node)
            if len(stack) > MAX_DEPTH:
                msg = f"the YAML nests deeper than {MAX_DEPTH} levels"
                raise _Stop(YamlProblem(node.start, (), msg))
    return root


def _attach(parent: _Node, node: _Node) -> None:
    if parent.kind == "seq":
        parent.items.append(node)
    elif parent.pending_key is None:
        parent.pending_key = node
    else:
        parent.items.extend((parent.pending_key, node))
        parent.pending_key = None


class _Builder:
    """Expands the node graph into plain data, recording positions, within a value budget."""

    def __init__(self, doc: YamlDocument, problems: list[YamlProblem]) -> None:
        self.doc = doc
        self.problems = problems
        self.count = 0
        self.aliases: list[Position] = []  # where the aliases being expanded were used

    def build(self, node: _Node, path: DataPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            msg = f"YAML aliases expand to more than {MAX_VALUES} values (an alias bomb?)"
            where = self.aliases[0] if self.aliases else node.start
            raise _Stop(YamlProblem(where, path[:4], msg))
        if node.kind == "alias":
            self.aliases.append(node.start)
            try:
                value = self.build(node.items[0], path, depth)
            finally:
                self.aliases.pop()
            self.doc.values[path] = node.start
            return value
        if depth > MAX_DEPTH:
            msg = f"the YAML nests deeper than {MAX_DEPTH} levels (through aliases)"
            raise _Stop(YamlProblem(node.start, path[:4], msg))
        self.doc.values[path] = node.start
        if node.kind == "scalar":
            return self._scalar(node, path)
        self._check_tag(node, path, "seq" if node.kind == "seq" else "map")
        if node.kind == "seq":
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.items)]
        return self._mapping(node, path, depth)

    def _mapping(self, node: _Node, path: DataPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        pending = [(source, depth) for source in self._fill(node, path, depth, result, False)]
        while pending:  # '<<' merges: keys written in the map itself win
            merge, level = pending.pop(0)
            while merge.kind == "alias":
                merge = merge.items[0]
            if level > MAX_DEPTH:
                msg = f"'<<' merges nest deeper than {MAX_DEPTH} levels"
                raise _Stop(YamlProblem(merge.start, path, msg))
            for item in merge.items if merge.kind == "seq" else [merge]:
                source = item.items[0] if item.kind == "alias" else item
                if source.kind != "map":
                    self._problem(source.start, path, "a '<<' merge needs a map or a list of maps")
                    continue
                nested = self._fill(source, path, depth, result, True)
                pending.extend((inner, level + 1) for inner in nested)
        return result

    def _fill(
        self, node: _Node, path: DataPath, depth: int, result: dict[str, Any], merged: bool
    ) -> list[_Node]:
        """Add `node`'s pairs to `result` (keys already there win); return its merge values."""
        merges: list[_Node] = []
        seen: dict[str, Position] = {}
        for key_node, value_node in zip(node.items[::2], node.items[1::2], strict=True):
            if key_node.kind == "alias":
                key_node = key_node.items[0]
            if key_node.kind != "scalar":
                self._problem(key_node.start, path, "a key must be a plain name, not a list or map")
                continue
            key = key_node.value
            if key == "<<" and key_node.plain:
                merges.append(value_node)
                continue
            if key in seen:
                msg = f"duplicate key '{key}' (first written at line {seen[key].line})"
                self._problem(key_node.start, (*path, key), msg)
                continue
            seen[key] = key_node.start
            if merged and key in result:
                continue
            self.doc.keys[(*path, key)] = key_node.start
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return merges

    def _scalar(self, node: _Node, path: DataPath) -> Any:
        self.doc.styles[path] = node.style
        tag = node.tag
        if tag in (None, "!"):
            if not node.plain:
                return node.value
            tag = _RESOLVER.resolve(yaml.ScalarNode, node.value, (True, False))
        assert tag is not None
        kind = tag[len(_TAG) :] if tag.startswith(_TAG) else tag
        if kind in ("str", "timestamp", "value", "merge"):
            return node.value
        if kind == "null":
            return None
        if kind in ("bool", "int", "float"):
            try:
                scalar = yaml.ScalarNode(tag, node.value)
                return getattr(_CONSTRUCTOR, f"construct_yaml_{kind}")(scalar)
            except (ConstructorError, ValueError, KeyError):
                msg = f"'{_clip(node.value)}' is not a valid YAML {kind}"
                self._problem(node.start, path, msg)
                return node.value
        self._problem(node.start, path, _unsupported(node.tag))
        return node.value

    def _check_tag(self, node: _Node, path: DataPath, kind: str) -> None:
        if node.tag not in (None, "!", _TAG + kind):
            self._problem(node.start, path, _unsupported(node.tag))

    def _problem(self, position: Position, path: DataPath, message: str) -> None:
        self.problems.append(YamlProblem(position, path, message))


def _unsupported(tag: str | None) -> str:
    shown = "!!" + tag[len(_TAG) :] if tag and tag.startswith(_TAG) else tag
    return f"unsupported YAML tag '{shown}'; specs use plain YAML values only"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    position = _pos(mark) if mark is not None else Position(1, 1)
    message = exc.problem or "invalid YAML"
    if exc.context:
        message = f"{exc.context}, {message}"
    lines = text.splitlines()
    line = lines[position.line - 1] if 0 < position.line <= len(lines) else ""
    if "\t" in line[: position.column] or "'\\t'" in message:
        message += " (YAML indents with spaces, never tabs)"
    return YamlProblem(position, (), f"invalid YAML: {message}")


def _reader_problem(exc: yaml.YAMLError, text: str) -> YamlProblem:
    offset = int(getattr(exc, "position", 0) or 0)
    before = text[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    character = getattr(exc, "character", None)
    code = ord(character) if isinstance(character, str) and character else character
    what = f"the character #x{code:04x}" if isinstance(code, int) else "a character"
    return YamlProblem(Position(line, column), (), f"{what} is not allowed in YAML")
