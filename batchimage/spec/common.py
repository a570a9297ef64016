"""Building blocks of the spec models: the strict base model, checked names, spec-relative
paths, secret references, and the helper that reports cross-field rule violations.

Rule violations are raised as a `ValidationError` holding one `spec_rule` error per broken
rule, located at the field concerned, so they are reported together with every other
problem (see `batchimage.spec.problems`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    SecretStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from batchimage.core import paths
from batchimage.core.errors import UsageError
from batchimage.core.ownership import Marks

Rule = tuple[tuple[str | int, ...], str]


class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are errors; numbers are accepted for strings."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=False)


def raise_rules(rules: Sequence[Rule]) -> None:
    """Raise every broken rule at once, each located at its field (relative to the model)."""
    if rules:
        details = [
            InitErrorDetails(type=PydanticCustomError("spec_rule", message), loc=loc, input=None)
            for loc, message in rules
        ]
        raise ValidationError.from_exception_data("Spec", details)


def exactly_one(model: BaseModel, names: Sequence[str], what: str) -> list[Rule]:
    """A rule (at the model) unless exactly one of the fields `names` is set."""
    given = [name for name in names if getattr(model, name) is not None]
    if len(given) == 1:
        return []
    choices = ", ".join(f"'{name}'" for name in names)
    if not given:
        return [((), f"{what} needs one of {choices}")]
    both = " and ".join(f"'{name}'" for name in given)
    return [((given[1],), f"{what} takes only one of {choices}, not {both}")]


def one_of_schema(*names: str) -> ConfigDict:
    """Model config telling editors (JSON Schema) that exactly one of `names` is given."""
    return ConfigDict(json_schema_extra={"oneOf": [{"required": [name]} for name in names]})


@dataclass(frozen=True)
class Checked:
    """Annotation for a string checked against `pattern`, whose error states `rule` in
    plain words (`Annotated[str, Checked(...)]`); `normalize` runs first, so the JSON
    Schema states `written` (what a spec may hold before normalizing) when given."""

    pattern: str
    rule: str
    normalize: Callable[[str], str] | None = None
    written: str | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^(?:{self.written or self.pattern})$"}

    def _check(self, value: str) -> str:
        value = self.normalize(value) if self.normalize else value
        if not re.fullmatch(self.pattern, value):
            shown = value if len(value) <= 60 else value[:57] + "..."
            raise PydanticCustomError("name_rule", f"'{shown}' is not valid: {self.rule}")
        return value


PipelineName = Annotated[
    str,
    Checked(
        r"[a-z0-9][a-z0-9-]{1,38}[a-z0-9]",
        "use 3-40 lowercase letters, digits and hyphens, starting and ending with a letter "
        "or digit",
    ),
]
Region = Annotated[
    str,
    Checked(
        r"[a-z0-9]+",
        "use the region's name, like 'eastus' or 'westeurope'",
        normalize=lambda value: value.replace(" ", "").lower(),
        written=r"[A-Za-z0-9][A-Za-z0-9 ]*",  # a display name too: 'East US'
    ),
]
ResourceGroupName = Annotated[
    str,
    Checked(
        r"[-\w.()]{0,89}[-\w()]",
        "use 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending with '.'",
    ),
]
StorageAccountName = Annotated[
    str, Checked(r"[a-z0-9]{3,24}", "use 3-24 lowercase letters and digits")
]
BatchAccountName = Annotated[
    str, Checked(r"[a-z0-9]{3,24}", "use 3-24 lowercase letters and digits")
]
ContainerName = Annotated[
    str,
    Checked(
        r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]",
        "use 3-63 lowercase letters, digits and single hyphens, starting with a letter or digit",
    ),
]
GalleryName = Annotated[
    str,
    Checked(
        r"[A-Za-z0-9]([A-Za-z0-9._]{0,78}[A-Za-z0-9])?",
        "use 1-80 letters, digits, '_' and '.', starting and ending with a letter or digit",
    ),
]
ImageName = Annotated[
    str,
    Checked(
        r"[A-Za-z0-9]([A-Za-z0-9._-]{0,78}[A-Za-z0-9_])?",
        "use 1-80 letters, digits, '_', '-' and '.', starting with a letter or digit",
    ),
]
ImageIdentifier = Annotated[
    str,
    Checked(
        r"[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9_])?",
        "use 1-128 letters, digits, '_', '-' and '.'",
    ),
]
VmSize = Annotated[
    str, Checked(r"[A-Za-z][A-Za-z0-9_-]{1,63}", "use a VM size name like 'Standard_D2s_v5'")
]
Uuid = Annotated[
    str,
    Checked(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "use a GUID like '00000000-0000-0000-0000-000000000000'",
        normalize=str.lower,
        written=r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    ),
]
SubnetId = Annotated[
    str,
    Checked(
        r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network"
        r"/virtualNetworks/[^/]+/subnets/[^/]+",
        "use a subnet resource id: /subscriptions/<sub>/resourceGroups/<group>/providers/"
        "Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>",
    ),
]
HttpsUrl = Annotated[str, Checked(r"https://[^\s/?#]+[^\s]*", "use an https:// URL")]
EnvName = Annotated[
    str,
    Checked(r"[A-Za-z_][A-Za-z0-9_]*", "use letters, digits and '_', not starting with a digit"),
]
KeyVaultUri = Annotated[
    str,
    Checked(
        r"https://[^/\s]+/secrets/[^/\s]+(/[^/\s]+)?/?",
        "use a secret URI like https://<vault>.vault.azure.net/secrets/<name>",
    ),
]


_TAG_NAME_FORBIDDEN = set("<>%&\\?/")


# Azure takes 50 tags on a resource; batchimage's own marks take the rest
MAX_TAGS = Marks.Tag.LIMIT - Marks.Tag.RESERVED


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise PydanticCustomError(
            "tags_rule",
            f"{len(tags)} tags given; at most {MAX_TAGS} (Azure allows 50 on a resource, and "
            f"batchimage adds up to {Marks.Tag.RESERVED} of its own)",
        )
    for key, value in tags.items():
        control = any(ord(c) < 32 or ord(c) == 127 for c in key)
        if not key.strip() or len(key) > 512 or _TAG_NAME_FORBIDDEN & set(key) or control:
            message = (
                f"tag name '{key[:60]!r}': use 1-512 characters, none of < > % & \\ ? / "
                "or a control character"
            )
            raise PydanticCustomError("tags_rule", message)
        if len(value) > 256:
            raise PydanticCustomError(
                "tags_rule", f"tag '{key}': a value has at most 256 characters"
            )
    return tags


Tags = Annotated[dict[str, str], AfterValidator(_check_tags)]
"""Azure resource tags: at most 38 (50 less batchimage's own), names up to 512 characters,
values up to 256."""


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir") or Path.cwd())


STATE_NAME_ROOM = len(".sandbox") + len(".") + 7 + len(".") + 8 + len(".tmp") + len(".")
"""Bytes a state file's name grows by in the files made beside it: `--sandbox` adds
`.sandbox`; a write goes through `.<name>.<pid>.<8 hex>.tmp` (pids have up to 7 digits)."""


def _local_path(value: Path, info: ValidationInfo, *, must_exist: bool, name_room: int = 0) -> Path:
    """The shared check of every path field (`batchimage.core.paths`), as a located problem."""
    try:
        resolved = paths.resolve(value, _base_dir(info), name_room=name_room)
        if must_exist and (info.context or {}).get("check_files", True):
            paths.require_file(resolved)
        else:
            problem = paths.kind_problem(resolved)
            if problem:
                raise paths.PathProblem(problem)
    except paths.PathProblem as problem:
        raise PydanticCustomError("path_rule", str(problem)) from None
    return resolved


def _spec_path(value: Path, info: ValidationInfo) -> Path:
    return _local_path(value, info, must_exist=False)


def _input_file(value: Path, info: ValidationInfo) -> Path:
    return _local_path(value, info, must_exist=True)


def _state_file(value: Path, info: ValidationInfo) -> Path:
    return _local_path(value, info, must_exist=False, name_room=STATE_NAME_ROOM)


SpecPath = Annotated[Path, AfterValidator(_spec_path)]
"""A path; relative paths resolve against the spec file's folder. When it exists it must
be a regular file (not a folder, pipe, device or kernel file)."""

InputFile = Annotated[Path, AfterValidator(_input_file)]
"""A regular file that must exist and be readable; relative paths resolve against the spec
file's folder."""

StateFile = Annotated[Path, AfterValidator(_state_file)]
"""A state file path: a `SpecPath` whose name leaves room for the files kept beside it."""


class SecretRef(SpecModel):
    """Where a secret is read from at run time: exactly one of `env`, `file`, `key_vault`.

    Secrets are never written in a spec; the resolved value is a `SecretStr` so it never
    prints, and it is never stored in state.
    """

    model_config = one_of_schema("env", "file", "key_vault")

    env: EnvName | None = Field(
        None, description="Name of an environment variable holding the secret."
    )
    file: SpecPath | None = Field(
        None,
        description="Path of a file holding the secret (trailing newline dropped); "
        "relative to the spec's folder.",
    )
    key_vault: KeyVaultUri | None = Field(
        None,
        description="Key Vault secret URI, e.g. https://myvault.vault.azure.net/secrets/name.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        if isinstance(data, (str, int, float)):
            raise PydanticCustomError(
                "inline_secret",
                "secrets are never written in a spec; use {env: NAME}, {file: path} or "
                "{key_vault: https://<vault>.vault.azure.net/secrets/<name>}",
            )
        return data

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        raise_rules(exactly_one(self, ("env", "file", "key_vault"), "a secret reference"))
        return self

    def describe(self) -> str:
        """Where the secret comes from, safe to print (never the value)."""
        if self.env is not None:
            return f"env:{self.env}"
        if self.file is not None:
            return f"file:{self.file}"
        return f"key_vault:{self.key_vault}"

    def resolve(
        self,
        environ: Mapping[str, str] | None = None,
        key_vault: Callable[[str], str] | None = None,
    ) -> SecretStr:
        """Read the secret; Key Vault references need the `key_vault` reader (URI -> value)."""
        if self.env is not None:
            value = (os.environ if environ is None else environ).get(self.env)
            if value is None:
                raise UsageError(f"secret {self.describe()}: the variable is not set")
            return SecretStr(value)
        if self.file is not None:
            problem = paths.kind_problem(self.file)  # a pipe made since the spec was checked
            if problem:
                raise UsageError(f"secret {self.describe()}: {problem}")
            try:
                return SecretStr(self.file.read_text(encoding="utf-8").rstrip("\r\n"))
            except OSError as exc:
                raise UsageError(f"secret {self.describe()}: {exc.strerror}") from exc
        if key_vault is None:
            raise UsageError(f"secret {self.describe()}: no Key Vault reader given")
        assert self.key_vault is not None
        return SecretStr(key_vault(self.key_vault))


def secret_refs(model: BaseModel, path: str = "") -> list[tuple[str, SecretRef]]:
    """Every secret reference under `model`, with its field path
    (`image.customize[0].secret_env.TOKEN`), in field order."""
    found: list[tuple[str, SecretRef]] = []

    def visit(value: Any, where: str) -> None:
        if isinstance(value, SecretRef):
            found.append((where, value))
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                visit(getattr(value, name), f"{where}.{name}" if where else name)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                visit(item, f"{where}.{key}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                visit(item, f"{where}[{index}]")

    visit(model, path)
    return found
