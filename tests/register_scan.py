"""Every error code the sandbox can answer with, read statically from its source.

A code reaches a client through a *sink*: the `code` of an `ApiError` (or of any other
class with a `code` field or a `self.code = ...`), or the value of a `"code"` key in a dict
literal (error bodies, failed operations, resize errors, node errors, failureInfo). The
scan follows each sink's value back to string literals: through parameters (to every
call site of the function or class, whatever module calls it), closures, local and
module-level names (tuple unpacking included), imports, `x if c else y`, `a or b`, the
return values of sandbox functions and `CONSTANT.get(key, default)`.

What it cannot follow is reported as *unresolved* with its place (an f-string code, a
`**kwargs` call, a function passed around as a value), so a new way of making a code
cannot slip past it. `x.code`, `x["code"]` and `x.get("code")` pass a code on from
another sink and add nothing. Dicts shaped like an InstanceViewStatus (with
`displayStatus` or `level`: `PowerState/running`, `ProvisioningState/failed`) carry
status codes, not error codes, and are not sinks.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

Val = str | tuple[frozenset["Val"], ...]
STATUS_KEYS = {"displayStatus", "level"}
LOOP = -1  # "an element of what a loop runs over"
PLAIN_DECORATORS = {"staticmethod", "classmethod", "property", "dataclass"}


@dataclass(frozen=True)
class Site:
    """A place in the source: module path (relative to the scanned root's parent) and line."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Found:
    """What a scan found: each code with the places its literal is, and what it could not
    follow (place -> why)."""

    codes: dict[str, set[Site]] = field(default_factory=dict)
    unresolved: dict[Site, str] = field(default_factory=dict)


@dataclass
class Module:
    name: str
    path: str
    tree: ast.Module
    imports: dict[str, tuple[str, str | None]]  # local name -> (module, attribute or None)
    defs: dict[str, ast.AST]  # top-level functions, classes and assignments by name


@dataclass(frozen=True)
class Scope:
    """A function (or class body, or module) in a module; `parent` encloses it."""

    module: Module
    node: ast.AST
    parent: Scope | None
    cls: ast.ClassDef | None = None


@dataclass
class _Result:
    values: set[Val] = field(default_factory=set)
    unresolved: dict[Site, str] = field(default_factory=dict)
    sites: dict[str, set[Site]] = field(default_factory=dict)  # where each string's literal is

    def add(self, other: _Result) -> None:
        self.values |= other.values
        self.unresolved.update(other.unresolved)
        for text, sites in other.sites.items():
            self.sites.setdefault(text, set()).update(sites)


class Scanner:
    """Scans the Python modules under `root` (a package directory)."""

    def __init__(self, root: Path, skip: tuple[str, ...] = ()) -> None:
        self.modules: dict[str, Module] = {}
        base = root.parent
        while (base / "__init__.py").exists():  # name modules from the top package
            base = base.parent
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(base)
            name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
            tree = ast.parse(path.read_text(), str(rel))
            self.modules[name] = Module(name, str(rel), tree, _imports(name, tree), _defs(tree))
        self.skip = skip
        self.scopes: dict[ast.AST, Scope] = {}
        self.calls: list[tuple[ast.Call, Scope]] = []
        self.names: list[tuple[ast.expr, Scope]] = []  # every name and attribute read
        for module in self.modules.values():
            self._index(module, module.tree, Scope(module, module.tree, None))
        self._memo: dict[tuple[int, str], _Result] = {}
        self._busy: set[tuple[int, str]] = set()
        self.callers: dict[int, list[tuple[ast.Call, Scope]]] = {}
        for call, scope in self.calls:
            targets = self._targets(call, scope)
            if not targets and isinstance(call.func, ast.Attribute):
                targets = self._any_method(call.func.attr)  # a method of an unknown receiver
            for target, _ in targets:
                self.callers.setdefault(id(target), []).append((call, scope))
        called = {id(call.func) for call, _ in self.calls}
        self.values_of: dict[int, list[tuple[ast.expr, Scope]]] = {}  # uses not as a call
        for ref, scope in self.names:
            if id(ref) not in called:
                for target, _ in self._lookup(ref, scope):
                    self.values_of.setdefault(id(target), []).append((ref, scope))

    # -- indexing ----------------------------------------------------------------------

    def _index(self, module: Module, node: ast.AST, scope: Scope) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                cls = scope.node if isinstance(scope.node, ast.ClassDef) else None
                inner = Scope(module, child, scope, cls)
                self.scopes[child] = inner
            elif isinstance(child, ast.ClassDef):
                inner = Scope(module, child, scope)
                self.scopes[child] = inner
            if isinstance(child, ast.Call):
                self.calls.append((child, scope))
            elif isinstance(child, ast.Name | ast.Attribute) and isinstance(child.ctx, ast.Load):
                self.names.append((child, scope))
            self._index(module, child, inner)

    # -- the scan ----------------------------------------------------------------------

    def scan(self) -> Found:
        """Every code at every sink, and what could not be followed."""
        found = Found()
        for sink, scope in self._sinks():
            result = self._resolve(sink, scope)
            for site, why in result.unresolved.items():
                if not self._skipped(site.path):
                    found.unresolved[site] = why
            for value in result.values:
                if not isinstance(value, str) or not value:
                    continue
                sites = {s for s in result.sites[value] if not self._skipped(s.path)}
                if sites:
                    found.codes.setdefault(value, set()).update(sites)
        return found

    def _skipped(self, path: str) -> bool:
        return any(path.endswith(s) for s in self.skip)

    def _sinks(self) -> Iterator[tuple[ast.expr, Scope]]:
        for module in self.modules.values():
            root = Scope(module, module.tree, None)
            for node, scope in self._walk(module.tree, root):
                if isinstance(node, ast.Dict):
                    keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                    if "code" in keys and not keys & STATUS_KEYS:
                        for k, v in zip(node.keys, node.values, strict=True):
                            if isinstance(k, ast.Constant) and k.value == "code":
                                yield v, scope
                elif isinstance(node, ast.Call) and _name(node.func) == "dict":
                    for kw in node.keywords:
                        if kw.arg == "code":
                            yield kw.value, scope
                elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if isinstance(target, ast.Attribute) and target.attr == "code":
                            yield node.value, scope
                elif isinstance(node, ast.ClassDef):
                    for param in _class_params(node):
                        if param.arg == "code":
                            yield param, self.scopes[node]  # resolved through its callers

    def _walk(self, node: ast.AST, scope: Scope) -> Iterator[tuple[ast.AST, Scope]]:
        for child in ast.iter_child_nodes(node):
            yield child, scope
            inner = self.scopes.get(child, scope)
            yield from self._walk(child, inner)

    # -- resolution --------------------------------------------------------------------

    def _resolve(self, node: ast.AST, scope: Scope) -> _Result:
        key = (id(node), scope.module.name)
        if key in self._memo:
            return self._memo[key]
        if key in self._busy:
            return _Result()
        self._busy.add(key)
        try:
            result = self._resolve_uncached(node, scope)
        finally:
            self._busy.discard(key)
        self._memo[key] = result
        return result

    def _unresolved(self, node: ast.AST, scope: Scope, why: str) -> _Result:
        site = Site(scope.module.path, getattr(node, "lineno", 0))
        return _Result(unresolved={site: why})

    def _resolve_uncached(self, node: ast.AST, scope: Scope) -> _Result:
        if isinstance(node, ast.arg):  # a class field / constructor parameter
            return self._param(scope, node.arg)
        if isinstance(node, ast.Constant):
            if node.value is None:
                return _Result()
            if isinstance(node.value, str):
                site = Site(scope.module.path, node.lineno)
                return _Result({node.value}, sites={node.value: {site}})
            return self._unresolved(node, scope, f"a code that is not a string: {node.value!r}")
        if isinstance(node, ast.Tuple | ast.List):
            parts = [self._resolve(e, scope) for e in node.elts]
            out = _Result({tuple(frozenset(p.values) for p in parts)})
            for p in parts:
                out.add(_Result(unresolved=p.unresolved, sites=p.sites))
            return out
        if isinstance(node, ast.IfExp):
            out = self._resolve(node.body, scope)
            out.add(self._resolve(node.orelse, scope))
            return out
        if isinstance(node, ast.BoolOp):
            out = _Result()
            for value in node.values:
                out.add(self._resolve(value, scope))
            return out
        if isinstance(node, ast.Name):
            return self._name(node, scope)
        if isinstance(node, ast.Attribute):
            return self._attribute(node, scope)
        if isinstance(node, ast.Subscript):
            return self._subscript(node, scope)
        if isinstance(node, ast.Call):
            return self._call_value(node, scope)
        return self._unresolved(node, scope, f"cannot follow {ast.unparse(node)!r}")

    def _name(self, node: ast.Name, scope: Scope) -> _Result:
        name = node.id
        current: Scope | None = scope
        while current is not None:
            if isinstance(current.node, ast.Module):
                return self._global(current.module, name, node, scope)
            if not isinstance(current.node, ast.ClassDef):
                if name in _param_names(current.node):
                    return self._param(current, name)
                assigned = list(_assignments(current.node, name))
                if assigned:
                    out = _Result()
                    for value, index in assigned:
                        out.add(self._pick(self._resolve(value, current), index, value, current))
                    return out
            current = current.parent
        return self._unresolved(node, scope, f"unknown name {name!r}")

    def _global(self, module: Module, name: str, node: ast.AST, scope: Scope) -> _Result:
        target = module.defs.get(name)
        if isinstance(target, ast.Assign | ast.AnnAssign) and target.value is not None:
            return self._resolve(target.value, Scope(module, module.tree, None))
        imported = self._imported(module, name)
        if imported:
            return self._global(imported[0], imported[1], node, scope)
        return self._unresolved(node, scope, f"cannot follow the name {name!r}")

    def _pick(self, result: _Result, index: int | None, node: ast.AST, scope: Scope) -> _Result:
        """Element `index` of tuple values (tuple unpacking), or the values as they are."""
        if index is None:
            return result
        if index == LOOP:
            return self._unresolved(node, scope, "an element of what a loop runs over")
        out = _Result(unresolved=dict(result.unresolved), sites=result.sites)
        for value in result.values:
            if isinstance(value, tuple) and index < len(value):
                out.values |= value[index]
            else:
                out.add(self._unresolved(node, scope, "unpacks something that is not a tuple"))
        return out

    def _attribute(self, node: ast.Attribute, scope: Scope) -> _Result:
        if node.attr == "code":
            return _Result()  # another sink's code, passed on
        if isinstance(node.value, ast.Name):
            module = self._module_alias(scope.module, node.value.id)
            if module is not None:
                return self._global(module, node.attr, node, scope)
        return self._unresolved(node, scope, f"cannot follow {ast.unparse(node)!r}")

    def _subscript(self, node: ast.Subscript, scope: Scope) -> _Result:
        key = node.slice
        if isinstance(key, ast.Constant) and key.value == "code":
            return _Result()  # another sink's code, passed on
        if isinstance(key, ast.Constant) and isinstance(key.value, int):
            return self._pick(self._resolve(node.value, scope), key.value, node, scope)
        return self._unresolved(node, scope, f"cannot follow {ast.unparse(node)!r}")

    def _call_value(self, node: ast.Call, scope: Scope) -> _Result:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and first.value == "code":
                return _Result()  # another sink's code, passed on
            table = self._dict_literal(func.value, scope)
            if table is not None:
                out = _Result()
                for value in table.values:
                    out.add(self._resolve(value, scope))
                for default in node.args[1:2]:
                    out.add(self._resolve(default, scope))
                return out
        targets = self._targets(node, scope)
        functions = [t for t in targets if not isinstance(t[0], ast.ClassDef)]
        if not functions:
            return self._unresolved(node, scope, f"cannot follow {ast.unparse(node)!r}")
        out = _Result()
        for target, target_scope in functions:
            for ret in _own_nodes(target):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    out.add(self._resolve(ret.value, target_scope))
        return out

    def _dict_literal(self, node: ast.expr, scope: Scope) -> ast.Dict | None:
        if isinstance(node, ast.Dict):
            return node
        if isinstance(node, ast.Name):
            target = scope.module.defs.get(node.id)
            if isinstance(target, ast.Assign | ast.AnnAssign) and isinstance(
                target.value, ast.Dict
            ):
                return target.value
        return None

    # -- parameters: every caller's argument ---------------------------------------

    def _param(self, scope: Scope, name: str) -> _Result:
        fn = scope.node
        out = _Result()
        if isinstance(fn, ast.ClassDef):
            params = _class_params(fn)
            default = _class_default(fn, name)
            offset = 0
        else:
            assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            params = [*fn.args.posonlyargs, *fn.args.args]
            default = _default(fn, name)
            offset = (
                1 if scope.cls is not None and params and params[0].arg in ("self", "cls") else 0
            )
            if offset == 0 and isinstance(fn, ast.Lambda):
                return self._unresolved(fn, scope, "a lambda's parameter")
        names = [p.arg for p in params][offset:]
        position = names.index(name) if name in names else None
        if not isinstance(fn, ast.ClassDef | ast.Lambda):
            for ref, ref_scope in self.values_of.get(id(fn), []):
                out.add(self._unresolved(ref, ref_scope, f"{_label(fn)} is passed as a value"))
        for decorator in getattr(fn, "decorator_list", []):
            if _name(decorator) not in PLAIN_DECORATORS:
                why = f"{_label(fn)} is decorated: its callers are not known"
                out.add(self._unresolved(decorator, scope, why))
        missing = False
        for call, call_scope in self.callers.get(id(fn), []):
            arg = _argument(call, position, name)
            if arg is None:
                if any(isinstance(a, ast.Starred) for a in call.args) or any(
                    k.arg is None for k in call.keywords
                ):
                    why = f"{_label(fn)} called with *args/**kwargs"
                    out.add(self._unresolved(call, call_scope, why))
                else:
                    missing = True
                continue
            out.add(self._resolve(arg, call_scope))
        if missing and default is not None:
            out.add(self._resolve(default, scope))
        return out

    def _any_method(self, name: str) -> list[tuple[ast.AST, Scope]]:
        if not hasattr(self, "_method_index"):
            self._method_index: dict[str, list[tuple[ast.AST, Scope]]] = {}
            for node, scope in self.scopes.items():
                if scope.cls is not None and isinstance(
                    node, ast.FunctionDef | ast.AsyncFunctionDef
                ):
                    self._method_index.setdefault(node.name, []).append((node, scope))
        return self._method_index.get(name, [])

    def _targets(self, call: ast.Call, scope: Scope) -> list[tuple[ast.AST, Scope]]:
        return self._lookup(call.func, scope)

    def _lookup(self, func: ast.expr, scope: Scope) -> list[tuple[ast.AST, Scope]]:
        """The sandbox functions or classes an expression in call position names."""
        if isinstance(func, ast.Name) and func.id == "cls":
            cls = _enclosing_class(scope)
            return [(cls, self.scopes[cls])] if cls is not None else []
        if isinstance(func, ast.Name):
            current: Scope | None = scope
            while current is not None:
                if isinstance(current.node, ast.Module):
                    return self._top(current.module, func.id)
                for child in ast.iter_child_nodes(current.node):
                    if _defines(child, func.id) and not isinstance(current.node, ast.ClassDef):
                        return [(child, self.scopes[child])]
                current = current.parent
            return []
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = func.value.id
            module = self._module_alias(scope.module, owner)
            if module is not None:
                return self._top(module, func.attr)
            if owner in ("self", "cls"):
                cls = _enclosing_class(scope)
                if cls is not None:
                    return self._methods(cls, func.attr)
            for found in self._top(scope.module, owner):  # Class.method
                if isinstance(found[0], ast.ClassDef):
                    return self._methods(found[0], func.attr)
        return []

    def _top(self, module: Module, name: str) -> list[tuple[ast.AST, Scope]]:
        target = module.defs.get(name)
        if isinstance(target, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return [(target, self.scopes[target])]
        imported = self._imported(module, name)
        return self._top(imported[0], imported[1]) if imported else []

    def _imported(self, module: Module, name: str) -> tuple[Module, str] | None:
        """(module, name) that `from ... import name` in `module` brings in; None for a
        submodule or something outside the scanned package."""
        source, attr = module.imports.get(name, ("", None))
        if attr is None or source not in self.modules or f"{source}.{attr}" in self.modules:
            return None
        return self.modules[source], attr

    def _methods(self, cls: ast.ClassDef, name: str) -> list[tuple[ast.AST, Scope]]:
        return [(c, self.scopes[c]) for c in cls.body if _defines(c, name)]

    def _module_alias(self, module: Module, name: str) -> Module | None:
        if name not in module.imports:
            return None
        source, attr = module.imports[name]
        dotted = f"{source}.{attr}" if attr else source
        return self.modules.get(dotted)


# -- AST helpers ----------------------------------------------------------------------


def _imports(name: str, tree: ast.Module) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    package = name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                out[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = (alias.name, None)
    return out


def _defs(tree: ast.Module) -> dict[str, ast.AST]:
    out: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def _defines(node: ast.AST, name: str) -> bool:
    return (
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name == name
    )


def _name(node: ast.expr) -> str:
    """The plain name a call or decorator uses (`dataclass` for `@dataclass(frozen=True)`)."""
    if isinstance(node, ast.Call):
        return _name(node.func)
    return node.id if isinstance(node, ast.Name) else ""


def _label(fn: ast.AST) -> str:
    return getattr(fn, "name", "a lambda")


def _param_names(fn: ast.AST) -> set[str]:
    if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return set()
    args = fn.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    return {a.arg for a in every}


def _default(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, name: str) -> ast.expr | None:
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    for arg, value in zip(
        positional[len(positional) - len(args.defaults) :], args.defaults, strict=True
    ):
        if arg.arg == name:
            return value
    for arg, kw_value in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if arg.arg == name:
            return kw_value
    return None


@functools.cache
def _class_params(cls: ast.ClassDef) -> list[ast.arg]:
    """A class's constructor parameters: its __init__'s, else its dataclass fields."""
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            return [*node.args.posonlyargs, *node.args.args][1:] + node.args.kwonlyargs
    fields = []
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(node.value, ast.Call) and "init=False" in ast.unparse(node.value):
                continue
            arg = ast.arg(node.target.id)
            ast.copy_location(arg, node)
            fields.append(arg)
    return fields


def _class_default(cls: ast.ClassDef, name: str) -> ast.expr | None:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            return _default(node, name)
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and node.value is not None
        ):
            return node.value
    return None


def _argument(call: ast.Call, position: int | None, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    plain = [a for a in call.args if not isinstance(a, ast.Starred)]
    if position is not None and position < len(plain) and len(plain) == len(call.args):
        return plain[position]
    return None


def _assignments(fn: ast.AST, name: str) -> Iterator[tuple[ast.expr, int | None]]:
    """(value, tuple index or None) of each assignment to `name` in `fn`'s own body; a loop
    variable gives each element of a literal tuple or list it runs over (index LOOP for
    any other iterable: not followed)."""
    for node in _own_nodes(fn):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield from _bind(target, node.value, name)
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            yield from _bind(node.target, node.value, name)
        elif isinstance(node, ast.For | ast.comprehension):
            if not any(True for _ in _bind(node.target, node.target, name)):
                continue  # the loop binds other names
            if isinstance(node.iter, ast.Tuple | ast.List):
                for item in node.iter.elts:
                    yield from _bind(node.target, item, name)
            else:
                yield node.iter, LOOP


def _bind(target: ast.expr, value: ast.expr, name: str) -> Iterator[tuple[ast.expr, int | None]]:
    if isinstance(target, ast.Name) and target.id == name:
        yield value, None
    elif isinstance(target, ast.Tuple | ast.List):
        for i, element in enumerate(target.elts):
            if isinstance(element, ast.Name) and element.id == name:
                if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts):
                    yield value.elts[i], None
                else:
                    yield value, i


def _own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """The nodes of `fn`'s body, not those of functions or classes nested in it."""
    for child in ast.iter_child_nodes(fn):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield child
        yield from _own_nodes(child)


def _enclosing_class(scope: Scope) -> ast.ClassDef | None:
    current: Scope | None = scope
    while current is not None:
        if current.cls is not None:
            return current.cls
        if isinstance(current.node, ast.ClassDef):
            return current.node
        current = current.parent
    return None
