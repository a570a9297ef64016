"""Load a spec file: read bytes, parse YAML with positions, interpolate `${VAR}`, validate
the models, and raise one `SpecError` listing every located problem found."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError

from batchimage.core.errors import SpecError, SpecProblem
from batchimage.spec.interpolate import interpolate
from batchimage.spec.problems import field_path, problems_from_error
from batchimage.spec.root import Spec
from batchimage.spec.yaml import YamlProblem, decode, read_yaml


def load_spec(
    path: str | Path, *, environ: Mapping[str, str] | None = None, check_files: bool = True
) -> Spec:
    """Load and validate the spec file at `path`; raise `SpecError` with every problem.

    Relative paths in the spec resolve against the file's folder. `check_files` makes
    referenced input files (scripts, uploads, VHDs, keys) required to exist.
    """
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SpecError(
            [SpecProblem(str(path), 1, 1, "", f"cannot read the file: {reason}")]
        ) from exc
    spec = load_spec_bytes(
        raw, str(path), base_dir=source.resolve().parent, environ=environ, check_files=check_files
    )
    spec.attach_source(source.resolve(), spec.source_sha256, spec.base_dir)
    return spec


def load_spec_text(
    text: str | bytes,
    path: str | Path = "<spec>",
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> Spec:
    """Validate spec `text` as if read from `path` (for messages; relative paths resolve
    against `base_dir`, default the folder of `path`, or the current folder)."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if base_dir is None:
        base_dir = Path(path).resolve().parent if str(path) != "<spec>" else Path.cwd()
    return load_spec_bytes(
        raw, str(path), base_dir=base_dir, environ=environ, check_files=check_files
    )


def load_spec_bytes(
    raw: bytes,
    source: str,
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> Spec:
    """Validate raw spec bytes; `source` names the file in messages."""
    text, found = decode(raw)
    if text is None:
        raise SpecError(_located(found, source))
    doc, found = read_yaml(text)
    if doc is None:
        raise SpecError(_located(found, source))
    if not isinstance(doc.data, dict):
        message = "a spec is a map of keys (name:, location:, image:, ...), not a list or a value"
        found.append(YamlProblem(doc.locate(()), (), message))
        raise SpecError(_located(found, source))
    for key in [key for key in doc.data if key.startswith("x-")]:
        del doc.data[key]  # 'x-' keys hold YAML anchors for reuse; they are not spec fields
    unresolved = interpolate(doc, text, os.environ if environ is None else environ)
    found += unresolved
    problems = _located(found, source)
    context = {"base_dir": base_dir, "check_files": check_files}
    try:
        spec = Spec.model_validate(doc.data, context=context)
    except ValidationError as error:
        skip = {field_path(p.path) for p in unresolved}
        problems += [
            p for p in problems_from_error(error, doc, source, Spec) if p.field not in skip
        ]
        raise SpecError(_sorted(problems)) from None
    if problems:
        raise SpecError(_sorted(problems))
    spec.attach_source(None, hashlib.sha256(raw).hexdigest(), base_dir)
    return spec


def _located(found: list[YamlProblem], source: str) -> list[SpecProblem]:
    return _sorted(
        [
            SpecProblem(source, p.position.line, p.position.column, field_path(p.path), p.message)
            for p in found
        ]
    )


def _sorted(problems: list[SpecProblem]) -> list[SpecProblem]:
    """Unique problems in file order, each kept to one printable line."""
    clean = [replace(p, field=_one_line(p.field), message=_one_line(p.message)) for p in problems]
    return sorted(dict.fromkeys(clean), key=lambda p: (p.line, p.column, p.field))


def _one_line(text: str) -> str:
    """Escape control characters (a key or value may hold newlines) so a problem stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
