"""The Azure SDK's generated models, safe to build from several threads at once.

Each generated package (`azure.mgmt.compute`, `azure.batch`, ...) carries a `model_base`
whose `Model.__new__` works out a model class's fields the first time an object of that
class is made, and caches them on the class. Two threads doing it at once for related
classes can read a class's attributes while the other writes them; the error is swallowed
by deserialization, which then hands back the raw JSON: a `dict` where a model should be
(`auto_storage`, `primary_endpoints`, ...), which the tool then reads as missing
(Azure/azure-sdk-for-python#47426; fixed in the generator by microsoft/typespec#11236,
not yet in the packages this tool installs). The engine's steps and the preflight's checks
run in threads, so `install()` makes that first-time work one thread at a time: for every
`model_base` already imported, and, through an import hook, for every one imported later.

    install()   # once, before any SDK package is imported (batchimage.azure does it)
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_LOCK = threading.RLock()  # held while a model class's fields are first worked out


def is_model_base(name: str) -> bool:
    """Whether module `name` is a generated Azure SDK package's model base."""
    return name.startswith("azure.") and name.rsplit(".", 1)[-1] in ("model_base", "_model_base")


def make_safe(module: ModuleType) -> None:
    """Make `module.Model`'s first-time work on a class one thread at a time (idempotent)."""
    model = getattr(module, "Model", None)
    if model is None or "_batchimage_safe" in vars(model):
        return
    original = model.__new__

    def new(cls: Any, *args: Any, **kwargs: Any) -> Any:
        if f"{cls.__module__}.{cls.__qualname__}" in cls._calculated:
            return original(cls, *args, **kwargs)
        with _LOCK:
            return original(cls, *args, **kwargs)

    model.__new__ = staticmethod(new)
    model._batchimage_safe = True


class _Loader(importlib.abc.Loader):
    """The module's own loader, then `make_safe`."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        make_safe(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds model bases as the path finder does, with a loader that makes them safe."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not is_model_base(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Make every generated model base safe: those imported already, and those to come."""
    for name, module in list(sys.modules.items()):
        if is_model_base(name) and module is not None:
            make_safe(module)
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
