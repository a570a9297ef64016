"""The exception tree of batchimage, and the exit code each kind of failure maps to.

    BatchImageError                 base; `exit_code` is what the CLI exits with
    ├── SpecError                   invalid spec file(s): a list of located problems (exit 2)
    ├── UsageError                  a command used wrongly (exit 2)
    ├── StateError                  state file unreadable, corrupt or too new (exit 1)
    │   └── StateLockedError        another run holds the state lock (exit 3)
    │       └── LockLostError       this run lost its lock to another run or a forced break
    ├── SandboxError                the local Azure could not start or answer (exit 1)
    ├── AzureError                  Azure said no; carries code, status, request id (exit 1)
    │   ├── TransientAzureError     worth retrying: throttling, 5xx, timeouts, conflicts that clear
    │   └── PermanentAzureError     not worth retrying: bad request, auth, quota, not found
    ├── PreflightError              one or more preflight checks failed (exit 1)
    ├── StepFailedError             a pipeline step failed; names step and cause (exit 1)
    ├── CallsStopped                an Azure call refused by this run: it is stopping
    └── Interrupted                 Ctrl-C / SIGTERM; progress saved (exit 130)

Foreign exceptions (azure.core, OSError, yaml) are mapped to these at the boundary that
meets them (`raise Ours(...) from exc`); nothing else escapes to the user as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130


class BatchImageError(Exception):
    """Base of every expected failure; the CLI prints `str(err)` and exits `exit_code`."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class SpecProblem:
    """One located problem in a spec file."""

    path: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class SpecError(BatchImageError):
    """One or more spec files are invalid; `problems` lists every one found."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(BatchImageError):
    """A command was called with arguments that cannot work together."""

    exit_code = EXIT_INVALID


class StateError(BatchImageError):
    """The state could not be read or written; the message says how to recover."""


class StateLockedError(StateError):
    """Another run holds the lock on this pipeline's state."""

    exit_code = EXIT_LOCKED


class LockLostError(StateLockedError):
    """This run lost its state lock (a blob lease broken or taken) and stopped at once."""


class SandboxError(BatchImageError):
    """The local Azure (sandbox) could not be started or reached."""


class AzureError(BatchImageError):
    """Azure refused or failed an operation; carries what a support ticket needs."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        operation: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        correlation_id: str | None = None,
        ended: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.status = status
        self.operation = operation
        self.request_id = request_id
        self.retry_after = retry_after
        self.correlation_id = correlation_id
        self.ended = ended  # a long-running operation's final status (Failed, Canceled)
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.code}: {self.message}" if self.code else self.message
        extras = []
        if self.status is not None:
            extras.append(f"HTTP {self.status}")
        if self.operation and self.ended:
            extras.append(f"operation {self.operation} ended {self.ended}")
        elif self.operation:
            extras.append(f"operation {self.operation}")
        if self.request_id:
            extras.append(f"request id {self.request_id}")
        if self.correlation_id and self.correlation_id != self.request_id:
            extras.append(f"correlation id {self.correlation_id}")
        return f"{head} ({', '.join(extras)})" if extras else head


class TransientAzureError(AzureError):
    """A failure that clears by itself; the engine retries the step."""


class PermanentAzureError(AzureError):
    """A failure that will not clear by retrying; the run stops at once."""


class PreflightError(BatchImageError):
    """Preflight found problems that would fail the run later; nothing was created."""


class StepFailedError(BatchImageError):
    """A pipeline step failed; names the step, the resource and what to do next (`azure`:
    the Azure error behind a cause told in words, for its code and request id)."""

    def __init__(
        self,
        step: str,
        cause: BaseException | str,
        *,
        resource: str | None = None,
        hint: str | None = None,
        azure: AzureError | None = None,
    ) -> None:
        self.step = step
        self.cause = cause
        self.resource = resource
        self.hint = hint
        self.azure = azure if azure is not None or not isinstance(cause, AzureError) else cause
        self.code = self.azure.code if self.azure is not None else None
        self.request_id = self.azure.request_id if self.azure is not None else None
        parts = [f"step {step} failed"]
        if resource:
            parts.append(f"on {resource}")
        text = " ".join(parts) + f": {cause}"
        if hint:
            text += f"\n  next: {hint}"
        super().__init__(text)


def run_again(command: str) -> str:
    """How a hint ends: "run apply again; finished steps are not repeated", "run plan again"."""
    if command == "apply":
        return "run apply again; finished steps are not repeated"
    return f"run {command} again"


class CallsStopped(BatchImageError):
    """An Azure call this run no longer makes: it lost its lock and is stopping."""


class Interrupted(BatchImageError):
    """The run was interrupted by a signal; state was saved and the next apply resumes."""

    exit_code = EXIT_INTERRUPTED
