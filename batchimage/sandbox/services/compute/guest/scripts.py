"""What a guest script "does" in the sandbox: nothing runs, but the script is recorded
on the OS disk's manifest; downloads (curl, wget, Invoke-WebRequest, WebClient,
azcopy) of sandbox blob URLs are really read from Azurite through their SAS and
recorded with their SHA-256, failing like the tool would on a missing or expired blob;
a failure rule from the config makes a matching script fail with its exit code and output.

What a script does to the guest (applied by `agent` when the command completes):

- `waagent -deprovision` in the script's foreground deprovisions the disk and stops the
  guest agent first (Azure/WALinuxAgent, azurelinuxagent/pa/deprovision/default.py), so
  the run command never reports; a foreground `shutdown -h` / `poweroff` / `halt` (or
  `Stop-Computer`, `shutdown /s`) powers the VM off under it, with the same end;
- the same in a `systemd-run --on-active=<span>` unit (see `detached`) happens that long
  after the command reported - when the delay is at least `REPORTS_WITHIN_S`, else the
  agent is gone before the handler's status reached Azure (the sandbox's rule);
- `sysprep /generalize` runs on after the script returned and seals the disk
  (`/shutdown`: then stops the VM) after the `vm.sysprep` duration - unless the config's
  `sysprep_failure` rule makes it fail (no shutdown, the setup state reads failed);
  PowerShell reading the setup state gets it (see `windows`).

The run command's parameters reach the script as the handler passes them (see
`runparams`): a download whose URL is `"$NAME"` (Linux) or `$env:NAME` / a `param()`
variable (Windows) reads the parameter's value. A download referencing a name nobody set
fails under `set -u` ("unbound variable"), and a URL that expands to nothing fails as the
tool does ("no URL specified"); the script recorded on the disk is the text as sent,
never the expanded one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from batchimage.sandbox.context import World
from batchimage.sandbox.lro import iso
from batchimage.sandbox.services.compute import settings
from batchimage.sandbox.services.compute.guest import detached, windows
from batchimage.sandbox.services.compute.models import blobs, runparams

DEPROVISION = {
    "shell": re.compile(r"\bwaagent\b[^\n]*-deprovision"),
    "powershell": re.compile(r"sysprep(\.exe)?\b[^\n]*/generalize", re.IGNORECASE),
}
SHUTDOWN = {
    "shell": re.compile(r"\b(shutdown\s+(-h|-P|now)|poweroff|halt)\b"),
    "powershell": re.compile(
        r"sysprep(\.exe)?\b[^\n]*/shutdown|\bStop-Computer\b|\bshutdown(\.exe)?\s+/s\b",
        re.IGNORECASE,
    ),
}
SYSPREP_SHUTDOWN = re.compile(r"sysprep(\.exe)?\b[^\n]*/shutdown", re.IGNORECASE)
# A detached unit must start this long after the script returned for the run command's
# result to reach Azure before the agent stops: the sandbox's rule, after the one-minute
# delay of Microsoft's own DevTest Labs deprovision artifact (Azure/azure-devtestlab,
# Artifacts/linux-deprovision/depro.sh: `... | at now + 1 minute`).
REPORTS_WITHIN_S = 60.0
_SPLIT = re.compile(r"&&|\|\||;|\||\n")
_SAS = re.compile(r"(https?://[^\s'\"?]+)\?[^\s'\"]*")


def redact(script: str) -> str:
    """`script` with the query (SAS tokens) of every URL removed: a SAS is a secret."""
    return _SAS.sub(r"\1?<query removed>", script)


@dataclass
class ScriptRun:
    """The outcome of one script: exit code, output, manifest entries, guest effects."""

    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    entries: list[dict[str, Any]] = field(default_factory=list)
    deprovisioned: bool = False  # the disk is deprovisioned when the script completes
    agent_stops: bool = False  # the guest agent stops under the script (it never reports)
    powers_off: bool = False  # the VM powers off under the script (it never reports)
    # Work that runs after the script returned: {"delay", "deprovision", "shutdown"} (Linux
    # systemd units) or {"sysprep": seconds, "shutdown"} (Windows sysprep finishing).
    later: list[dict[str, Any]] = field(default_factory=list)
    setup_state: dict[str, Any] | None = None  # Windows setup state sysprep left

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def hangs(self) -> bool:
        """The guest agent or the VM goes away before the command's result is reported."""
        return self.agent_stops or self.powers_off


@dataclass(frozen=True)
class Download:
    tool: str
    url: str
    destination: str
    fail_on_http_error: bool = True
    line: int = 0  # the script line it is on
    unbound: tuple[str, ...] = ()  # names it referenced that nobody set


def sha256(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def _basename(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1] or "index.html"


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


def _tokens(command: str, posix: bool) -> list[str]:
    """Words of one command; PowerShell keeps backslashes (paths), only quotes go."""
    try:
        words = shlex.split(command, posix=posix)
    except ValueError:
        words = command.split()
    if not posix:
        words = [_unquote(w) for w in words]
    while words and (words[0] == "sudo" or re.fullmatch(r"\w+=\S*", words[0])):
        words = words[1:]
    return words


def _url(words: list[str]) -> str:
    return next((w for w in words if re.match(r"https?://", w)), "")


def _curl(words: list[str]) -> Download | None:
    url = _url(words)
    if not url:
        return None
    dest, fail = "-", False
    for i, word in enumerate(words):
        short = word.startswith("-") and not word.startswith("--")
        if word in ("--fail", "--fail-with-body") or (short and "f" in word[1:]):
            fail = True
        if word in ("-o", "--output") or (short and word.endswith("o") and len(word) > 2):
            dest = words[i + 1] if i + 1 < len(words) else dest
        if word in ("-O", "--remote-name") or (short and word.endswith("O") and len(word) > 2):
            dest = _basename(url)
    return Download("curl", url, dest, fail)


def _wget(words: list[str]) -> Download | None:
    url = _url(words)
    if not url:
        return None
    dest = _basename(url)
    for i, word in enumerate(words):
        if word in ("-O", "--output-document") and i + 1 < len(words):
            dest = words[i + 1]
        elif word.startswith("--output-document="):
            dest = word.split("=", 1)[1]
    return Download("wget", url, dest)


def _powershell(words: list[str]) -> Download | None:
    url, dest = "", ""
    for i, word in enumerate(words):
        lowered = word.lower()
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if lowered in ("-uri", "-source"):
            url = "" if nxt.startswith("-") else nxt  # a $null argument: no value at all
        elif lowered in ("-outfile", "-destination"):
            dest = nxt
    url = url or _url(words)
    return Download("Invoke-WebRequest", url, dest or _basename(url)) if url else None


_WEBCLIENT = re.compile(r"DownloadFile\(\s*['\"]([^'\"]+)['\"]\s*,\s*['\"]([^'\"]+)['\"]", re.I)


_TOOLS = {"curl", "wget", "invoke-webrequest", "iwr", "start-bitstransfer"}
# Scripts whose variables the sandbox cannot know (sourced files, eval, here-documents).
_OPAQUE = re.compile(r"(^|[;&|]\s*|\n\s*)(\.|source)\s+\S|\beval\b|<<", re.MULTILINE)


def _download(words: list[str], name: str) -> Download | None:
    if name == "curl" and not any(w.lower() in ("-uri", "-outfile") for w in words):
        return _curl(words)
    if name == "wget" and not any(w.lower() in ("-uri", "-outfile") for w in words):
        return _wget(words)
    if name in ("invoke-webrequest", "iwr", "curl", "wget", "start-bitstransfer"):
        return _powershell(words)
    if name == "azcopy" and len(words) >= 4 and words[1] in ("copy", "cp"):
        return Download("azcopy", words[2], words[3])
    return None


def downloads(
    script: str, kind: str = "shell", inputs: runparams.GuestInputs | None = None
) -> list[Download]:
    """The downloads a script makes, in order (as far as the sandbox recognises them), with
    the run command's parameters (`inputs`) filled in."""
    inputs = inputs or runparams.GuestInputs()
    opaque = kind == "shell" and bool(_OPAQUE.search(script))
    defined = runparams.shell_defined(script) if kind == "shell" else set()
    scope = runparams.powershell_scope(script, inputs) if kind == "powershell" else None
    found: list[Download] = []
    for number, line in enumerate(script.splitlines(), 1):
        for command in _SPLIT.split(line):
            if scope is None:
                expanded = runparams.expand_shell(command, inputs, defined)
            else:
                expanded = runparams.expand_powershell(command, scope)
            words = _tokens(expanded.text.strip(), posix=kind == "shell")
            if not words:
                continue
            name = words[0].rsplit("/", 1)[-1].lower().removesuffix(".exe")
            item = _download(words, name)
            unbound = () if opaque else tuple(expanded.unbound)
            if item is None and name in _TOOLS and (unbound or expanded.emptied):
                tool = "Invoke-WebRequest" if scope else "wget" if name == "wget" else "curl"
                item = Download(tool, "", "")
            if item is not None:
                found.append(dataclasses.replace(item, line=number, unbound=unbound))
    for match in _WEBCLIENT.finditer(script):
        found.append(Download("WebClient", match.group(1), match.group(2)))
    return found


def _failure(item: Download, status: int, message: str) -> tuple[int, str]:
    """Exit code and stderr of a failed download, as each tool reports it."""
    host = urlsplit(item.url).hostname or item.url
    if item.tool == "curl":
        if status == 0:
            return 6, f"curl: (6) Could not resolve host: {host}\n"
        return 22, f"curl: (22) The requested URL returned error: {status}\n"
    if item.tool == "wget":
        if status == 0:
            return 4, f"wget: unable to resolve host address '{host}'\n"
        return 8, f"ERROR {status}: {message}.\n"
    if item.tool == "azcopy":
        return 1, f"failed to perform copy command due to error: {status} {message}\n"
    reason = {403: "Forbidden", 404: "Not Found"}.get(status, message)
    return 1, f"{item.tool} : The remote server returned an error: ({status}) {reason}.\n"


def _missing(item: Download) -> tuple[int, str]:
    """Exit code and stderr of a download whose URL expanded to nothing."""
    if item.tool == "curl":
        return 2, (
            "curl: no URL specified!\n"
            "curl: try 'curl --help' or 'curl --manual' for more information\n"
        )
    if item.tool == "wget":
        return 1, "wget: missing URL\nUsage: wget [OPTION]... [URL]...\n"
    return 1, (
        f"{item.tool} : Cannot validate argument on parameter 'Uri'. The argument is null or "
        "empty. Provide an argument that is not null or empty, and then try the command "
        "again.\n"
    )


def _fetch(world: World, item: Download, run: ScriptRun, context: tuple[str, bool]) -> bool:
    """Read one download into the manifest; False when it made the script fail.
    `context`: the program name bash reports errors with, and whether `set -u` is on."""
    program, strict = context
    if item.unbound and strict:
        run.exit_code = 1
        run.stderr = f"{program}: line {item.line}: {item.unbound[0]}: unbound variable\n"
        return False
    if not item.url:
        run.exit_code, run.stderr = _missing(item)
        return False
    public_url = item.url.split("?", 1)[0]  # a SAS is a secret: never recorded
    entry: dict[str, Any] = {"kind": "file", "file": item.destination, "url": public_url}
    if blobs.parse(world, item.url) is None:
        entry.update(sha256=None, fetched=False)  # not a sandbox blob: cannot be read
        run.entries.append(entry)
        return True
    try:
        data = blobs.fetch(world, item.url)
    except blobs.BlobFetchError as exc:
        if item.tool == "curl" and not item.fail_on_http_error and exc.status:
            entry.update(sha256=sha256(exc.message), fetched=False, http_status=exc.status)
            run.entries.append(entry)
            return True
        run.exit_code, run.stderr = _failure(item, exc.status, exc.message)
        return False
    entry.update(sha256=sha256(data), size=len(data), fetched=True)
    run.entries.append(entry)
    return True


def evaluate(
    world: World,
    kind: str,
    script: str,
    *,
    source: str,
    parameters: list[dict[str, Any]] | None = None,
    protected: list[dict[str, Any]] | None = None,
    action: bool = False,
    program: str = "bash",
    setup_state: dict[str, Any] | None = None,
) -> ScriptRun:
    """Run `script` (kind "shell" or "powershell") the sandbox way, with the run command's
    public and `protected` parameters handed over as the handler does (`action`: the action
    run command's), in a guest whose Windows setup state is `setup_state`; `program` is
    the name bash reports errors with. See the module doc."""
    run = ScriptRun()
    public = runparams.parse({"parameters": parameters}, "parameters", "")
    secret = runparams.parse({"protectedParameters": protected}, "protectedParameters", "")
    inputs = runparams.guest_inputs(kind, public, secret, action=action)
    failure = settings.script_failure(world, script)
    if failure is not None:
        run.exit_code, run.stdout, run.stderr = failure.exit_code, failure.stdout, failure.stderr
    else:
        context = (program, kind == "shell" and runparams.nounset(script))
        for item in downloads(script, kind, inputs):
            if not _fetch(world, item, run, context):
                break
    if run.ok and kind == "shell":
        _guest_effects(run, script)
    elif run.ok:
        run.stdout += windows.read(world, setup_state, script)
        run.powers_off = bool(SHUTDOWN[kind].search(SYSPREP_SHUTDOWN.sub("", script)))
        if DEPROVISION[kind].search(script):
            run.setup_state = windows.after_sysprep(world)
            if settings.sysprep_failure(world) is None:
                shutdown = bool(SYSPREP_SHUTDOWN.search(script))
                run.later.append({"sysprep": windows.sysprep_seconds(world), "shutdown": shutdown})
    entry: dict[str, Any] = {
        "kind": kind,
        "script": redact(script),
        "sha256": sha256(script),
        "source": source,
        "exit_code": run.exit_code,
        "at": iso(world.clock.now()),
    }
    if public:  # values as sent, but no SAS query (as everywhere on the disk's record)
        entry["parameters"] = [{"name": p["name"], "value": redact(p["value"])} for p in public]
    if secret:  # a protected value never lands on the disk's record: its name only
        entry["protected_parameters"] = [p["name"] for p in secret]
    if run.deprovisioned or any(item.get("deprovision") or "sysprep" in item for item in run.later):
        entry["deprovision"] = True
    run.entries.insert(0, entry)
    return run


def _guest_effects(run: ScriptRun, script: str) -> None:
    """What a Linux script does to the guest: deprovision and power off, now or later."""
    foreground, later = detached.split(script)
    for unit in later:
        deprovision = bool(DEPROVISION["shell"].search(unit.command))
        shutdown = bool(SHUTDOWN["shell"].search(unit.command))
        if not (deprovision or shutdown):
            continue
        if unit.delay < REPORTS_WITHIN_S:  # gone before the result is reported
            foreground += "\n" + unit.command
            continue
        run.later.append({"delay": unit.delay, "deprovision": deprovision, "shutdown": shutdown})
    run.deprovisioned = run.agent_stops = bool(DEPROVISION["shell"].search(foreground))
    run.powers_off = bool(SHUTDOWN["shell"].search(foreground))


def duration(world: World, script: str) -> float:
    """Simulated seconds the script runs (a failure rule may say)."""
    failure = settings.script_failure(world, script)
    if failure is not None and failure.seconds is not None:
        return failure.seconds
    return world.config.duration("vm.run_command", 30.0)
