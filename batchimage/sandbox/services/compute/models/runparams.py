"""Run command parameters: their JSON checks, and what the guest script gets from them.

A PUT of a managed run command carries `parameters` and `protectedParameters`, a POST
`runCommand` carries `parameters`: lists of `{name, value}` strings
(RunCommandInputParameter). A list that is not a list, an item that is not an object, or a
name or value that is an object or a list is refused as ARM refuses a body it cannot
deserialize (400 InvalidRequestContent); a number or boolean becomes its text, as the
service's JSON reader does. What the guest gets, as the run command handlers give it:

- Linux, managed (Azure/run-command-handler-linux, `SetEnvironmentVariables` in
  internal/exec/exec.go): public parameters, then protected ones; a named parameter with a
  non-empty value becomes an environment variable of the script (a later one wins), an
  unnamed one is appended to the command line (a positional argument), an empty value is
  skipped.
- Linux, action `RunShellScript`: the handler writes `export name=value ...` and
  `set -- value ...` above the script (Azure/azure-cli#10400): the same environment, and
  every value as a positional argument.
- Windows (both kinds): each named parameter is passed as `-Name value`; the script reads it
  through its `param(...)` block, and an unnamed one binds to the next declared parameter.

    params = parse(props, "protectedParameters")          # 400 when malformed
    inputs = guest_inputs("shell", public, protected, action=False)
    command = expand_shell(line, inputs, defined)         # one command, parameters filled in
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchimage.sandbox.apierrors import ApiError, invalid_request_content


def _refuse(path: str, found: Any) -> ApiError:
    token = "[" if isinstance(found, list) else "{"
    return invalid_request_content(
        "The request content was invalid and could not be deserialized: 'Unexpected "
        f"character encountered while parsing value: {token}. Path '{path}'.'"
    )


def _text(value: Any, path: str) -> str:
    """A parameter's name or value as the service reads it into a string (None -> "")."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise _refuse(path, value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def parse(body: dict[str, Any], key: str, prefix: str = "properties.") -> list[dict[str, str]]:
    """The `key` list of `body` as {name, value} strings; 400 InvalidRequestContent when
    its JSON shape is not a list of objects with scalar names and values (`prefix`: where
    `body` sits in the request, for the error's path)."""
    raw = body.get(key)
    if raw is None:
        return []
    path = f"{prefix}{key}"
    if not isinstance(raw, list):
        raise invalid_request_content(
            "The request content was invalid and could not be deserialized: 'Cannot "
            "deserialize the current JSON value into a list of run command parameters "
            f"because the type requires a JSON array. Path '{path}'.'"
        )
    out = []  # an error never echoes a value: it may be a secret
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            if isinstance(item, list):
                raise _refuse(f"{path}[{i}]", item)
            raise invalid_request_content(
                "The request content was invalid and could not be deserialized: 'Error "
                f"converting value to type 'RunCommandInputParameter'. Path '{path}[{i}]'.'"
            )
        name = _text(item.get("name"), f"{path}[{i}].name")
        value = _text(item.get("value"), f"{path}[{i}].value")
        out.append({"name": name, "value": value})
    return out


@dataclass
class GuestInputs:
    """What a script receives: environment variables (Linux), named parameters (Windows)
    and positional arguments."""

    env: dict[str, str] = field(default_factory=dict)
    named: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)


def guest_inputs(
    kind: str,
    public: list[dict[str, str]],
    protected: list[dict[str, str]] | None = None,
    *,
    action: bool = False,
) -> GuestInputs:
    """How the run command handler of the guest's OS hands the parameters to the script."""
    inputs = GuestInputs()
    for item in [*public, *(protected or [])]:
        name, value = item["name"], item["value"]
        if kind == "powershell":
            if name:
                inputs.named[name.lower()] = value
            else:
                inputs.args.append(value)
            continue
        if not value:
            continue  # the Linux handler skips an empty value
        if name and "=" not in name:
            inputs.env[name] = value  # os.Setenv refuses a name with '=': not set
        if action or not name:
            inputs.args.extend(value.split())  # appended unquoted: word-split by bash
    return inputs


# -- shell -------------------------------------------------------------------------------

STANDARD_ENV = frozenset(
    [
        "HOME",
        "PATH",
        "USER",
        "LOGNAME",
        "SHELL",
        "PWD",
        "OLDPWD",
        "HOSTNAME",
        "LANG",
        "LC_ALL",
        "TERM",
        "TMPDIR",
        "UID",
        "EUID",
        "PPID",
        "RANDOM",
        "LINENO",
        "SECONDS",
        "IFS",
        "OPTARG",
        "OPTIND",
        "REPLY",
        "BASH",
        "BASH_VERSION",
        "BASHPID",
        "HOSTTYPE",
        "OSTYPE",
        "MACHTYPE",
        "SHLVL",
    ]
)
_ASSIGNED = re.compile(
    r"(?:^|[\s;&|(])(?:(?:export|local|readonly|declare|typeset)\s+(?:-\w+\s+)*)?"
    r"([A-Za-z_]\w*)\+?="
)
_LOOP = re.compile(r"\bfor\s+([A-Za-z_]\w*)\s+in\b|\bread\s+(?:-\w+\s+)*([A-Za-z_][\w\s]*)")
_SHELL_REF = re.compile(r"\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*)|([0-9@*#]))")
_NOUNSET = re.compile(r"\bset\s+(?:-[a-zA-Z]*u[a-zA-Z]*\b|-o\s+nounset\b)")


def shell_defined(script: str) -> set[str]:
    """Names a shell script gives a value itself (assignments, `for x in`, `read x`)."""
    names = {m.group(1) for m in _ASSIGNED.finditer(script)}
    for match in _LOOP.finditer(script):
        names.update((match.group(1) or match.group(2) or "").split())
    return names


def nounset(script: str) -> bool:
    """Whether the script turns on `set -u` (an unset variable is an error)."""
    return bool(_NOUNSET.search(script))


@dataclass
class Expanded:
    """One command with the parameters it references filled in."""

    text: str
    unbound: list[str] = field(default_factory=list)  # unset names it referenced
    emptied: bool = False  # a reference expanded to nothing


def _positional(symbol: str, args: list[str]) -> str:
    if symbol in "@*":
        return " ".join(args)
    if symbol == "#":
        return str(len(args))
    index = int(symbol)
    return args[index - 1] if 0 < index <= len(args) else ""


def _expand(
    command: str,
    pattern: re.Pattern[str],
    value_of: Callable[[re.Match[str]], str | None],
    quoted: Callable[[str, str], str],
) -> Expanded:
    """`command` with each `pattern` reference outside single quotes replaced by
    `value_of(match)` (None: left as written), written by `quoted(value, quote)` where
    `quote` is the double quote the reference sits in, or ""."""
    out: list[str] = []
    result = Expanded("")
    quote = ""
    i = 0
    while i < len(command):
        char = command[i]
        if char == "'" and quote != '"':
            quote = "" if quote == "'" else "'"
        elif char == '"' and quote != "'":
            quote = "" if quote == '"' else '"'
        match = pattern.match(command, i) if char == "$" and quote != "'" else None
        if match is None:
            out.append(char)
            i += 1
            continue
        value = value_of(match)
        if value is None:
            out.append(match.group(0))
        else:
            result.emptied = result.emptied or not value
            out.append(quoted(value, quote) if value else "")
        i = match.end()
    result.text = "".join(out)
    return result


def _shell_quoted(value: str, quote: str) -> str:
    return re.sub(r'(["\\])', r"\\\1", value) if quote else shlex.quote(value)


def expand_shell(command: str, inputs: GuestInputs, defined: set[str]) -> Expanded:
    """`command` (one shell command) with its `$NAME`, `${NAME}` and `$1`..`$@` references
    to the run command's parameters replaced by their values, outside single quotes. A
    name the script or the OS defines stays as written (the sandbox does not know it); any
    other is unset (listed in `unbound`, expands to nothing)."""
    unbound: list[str] = []

    def value_of(match: re.Match[str]) -> str | None:
        name = match.group(1) or match.group(2)
        if name is None:
            return _positional(match.group(3), inputs.args)
        if name in inputs.env:
            return inputs.env[name]
        if name in defined or name in STANDARD_ENV:
            return None
        unbound.append(name)
        return ""

    result = _expand(command, _SHELL_REF, value_of, _shell_quoted)
    result.unbound = unbound
    return result


# -- PowerShell --------------------------------------------------------------------------

_PARAM_BLOCK = re.compile(r"^(?:\s*(?:#[^\n]*)?\n)*(?:\s*\[[^\]]*\])*\s*param\s*\(", re.IGNORECASE)
_DECLARED = re.compile(r"\$([A-Za-z_]\w*)")
_ENV_SET = re.compile(
    r"^\s*\$env:([A-Za-z_]\w*)\s*=\s*(?:\$([A-Za-z_]\w*)|'([^']*)'|\"([^\"$]*)\")\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_PS_REF = re.compile(r"\$(?:\{env:([A-Za-z_]\w*)\}|env:([A-Za-z_]\w*)|([A-Za-z_]\w*))", re.I)


def _param_block(script: str) -> tuple[list[str], int]:
    """Names declared by the script's leading `param(...)` block, and where it ends."""
    match = _PARAM_BLOCK.match(script)
    if match is None:
        return [], 0
    depth, i = 1, match.end()
    while i < len(script) and depth:
        depth += {"(": 1, ")": -1}.get(script[i], 0)
        i += 1
    block = script[match.end() : i - 1]
    block = re.sub(r"\[[^\]]*\]", " ", block)  # drop [string], [Parameter(...)] attributes
    names = [m.group(1) for m in _DECLARED.finditer(block)]
    return list(dict.fromkeys(names)), i


@dataclass
class PowerShellScope:
    """Variables and environment variables a PowerShell script has before a command runs."""

    variables: dict[str, str]
    env: dict[str, str]


def powershell_scope(script: str, inputs: GuestInputs) -> PowerShellScope:
    """The parameters bound to the script's `param(...)` block (by name, then unnamed ones
    in order) and the `$env:NAME = ...` assignments it makes at top level."""
    declared, _end = _param_block(script)
    variables: dict[str, str] = {}
    free = list(inputs.args)
    for name in declared:
        if name.lower() in inputs.named:
            variables[name.lower()] = inputs.named[name.lower()]
        elif free:
            variables[name.lower()] = free.pop(0)
    env: dict[str, str] = {}
    for match in _ENV_SET.finditer(script):
        target, source, single, double = match.groups()
        if source is not None:
            if source.lower() in variables:
                env[target.lower()] = variables[source.lower()]
        else:
            env[target.lower()] = single if single is not None else double
    return PowerShellScope(variables, env)


def expand_powershell(command: str, scope: PowerShellScope) -> Expanded:
    """`command` with `$env:NAME`, `${env:NAME}` and `$Param` references filled in (outside
    single quotes); an unset environment variable is $null (nothing), any other variable
    the sandbox does not know stays as written."""

    def value_of(match: re.Match[str]) -> str | None:
        env_name = match.group(1) or match.group(2)
        if env_name is not None:
            return scope.env.get(env_name.lower(), "")
        return scope.variables.get(match.group(3).lower())

    return _expand(command, _PS_REF, value_of, lambda v, q: v if q else f"'{v}'")
