"""What a guest script "does" in the sandbox: nothing runs, but the script is recorded
on the OS disk's manifest; downloads (curl, wget, Invoke-WebRequest, WebClient,
azcopy) of sandbox blob URLs are really read from Azurite through their SAS and
recorded with their SHA-256, failing like the tool would on a missing or expired blob;
`waagent -deprovision` / `sysprep /generalize` mark the disk deprovisioned (and
`/shutdown`, `shutdown -h`, `Stop-Computer` stop the VM) - unless the config's
`sysprep_failure` rule makes sysprep fail (no shutdown, the setup state reads failed);
PowerShell reading the setup state gets it (see `guest`); a failure rule from the
config makes a matching script fail with its exit code and output.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from batchimage.sandbox.context import World
from batchimage.sandbox.lro import iso
from batchimage.sandbox.services.compute import blobs, guest, settings

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
    deprovisioned: bool = False
    shutdown: bool = False
    setup_state: dict[str, Any] | None = None  # Windows setup state sysprep left

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class Download:
    tool: str
    url: str
    destination: str
    fail_on_http_error: bool = True


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
            url = nxt
        elif lowered in ("-outfile", "-destination"):
            dest = nxt
    url = url or _url(words)
    return Download("Invoke-WebRequest", url, dest or _basename(url)) if url else None


_WEBCLIENT = re.compile(r"DownloadFile\(\s*['\"]([^'\"]+)['\"]\s*,\s*['\"]([^'\"]+)['\"]", re.I)


def downloads(script: str, kind: str = "shell") -> list[Download]:
    """The downloads a script makes, in order (as far as the sandbox recognises them)."""
    found: list[Download] = []
    for command in _SPLIT.split(script):
        words = _tokens(command.strip(), posix=kind == "shell")
        if not words:
            continue
        name = words[0].rsplit("/", 1)[-1].lower().removesuffix(".exe")
        item: Download | None = None
        if name == "curl" and not any(w.lower() in ("-uri", "-outfile") for w in words):
            item = _curl(words)
        elif name == "wget" and not any(w.lower() in ("-uri", "-outfile") for w in words):
            item = _wget(words)
        elif name in ("invoke-webrequest", "iwr", "curl", "wget", "start-bitstransfer"):
            item = _powershell(words)
        elif name == "azcopy" and len(words) >= 4 and words[1] in ("copy", "cp"):
            item = Download("azcopy", words[2], words[3])
        if item is not None:
            found.append(item)
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


def _fetch(world: World, item: Download, run: ScriptRun) -> bool:
    """Read one download into the manifest; False when it made the script fail."""
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
    setup_state: dict[str, Any] | None = None,
) -> ScriptRun:
    """Run `script` (kind "shell" or "powershell") the sandbox way, in a guest whose
    Windows setup state is `setup_state`; see the module doc."""
    run = ScriptRun()
    failure = settings.script_failure(world, script)
    if failure is not None:
        run.exit_code, run.stdout, run.stderr = failure.exit_code, failure.stdout, failure.stderr
    else:
        for item in downloads(script, kind):
            if not _fetch(world, item, run):
                break
    if run.ok:
        run.deprovisioned = bool(DEPROVISION[kind].search(script))
        run.shutdown = bool(SHUTDOWN[kind].search(script))
        if kind == "powershell":
            run.stdout += guest.read(world, setup_state, script)
            if run.deprovisioned:
                run.setup_state = guest.after_sysprep(world)
                if settings.sysprep_failure(world) is not None:
                    run.deprovisioned = run.shutdown = False
    entry: dict[str, Any] = {
        "kind": kind,
        "script": redact(script),
        "sha256": sha256(script),
        "source": source,
        "exit_code": run.exit_code,
        "at": iso(world.clock.now()),
    }
    if parameters:
        entry["parameters"] = [{"name": p.get("name"), "value": p.get("value")} for p in parameters]
    if run.deprovisioned:
        entry["deprovision"] = True
    run.entries.insert(0, entry)
    return run


def duration(world: World, script: str) -> float:
    """Simulated seconds the script runs (a failure rule may say)."""
    failure = settings.script_failure(world, script)
    if failure is not None and failure.seconds is not None:
        return failure.seconds
    return world.config.duration("vm.run_command", 30.0)
