"""The step engine: observe, act only if needed, observe again, record.

Per step (`Engine.apply`):

    check ──found, fingerprint matches──────────────────────────────▶ no-op (zero writes)
      └─missing / changed / resuming ─▶ apply needs ─▶ apply ─▶ check ─▶ record done
                                       (retry: transient only)  (nothing found: step fails)

- The effective fingerprint of a step = its own inputs + the outputs of the steps it
  `depends_on`; a changed input re-runs the step, and its dependants only if its
  outputs changed. The hash per input is recorded so `plan` can name what changed.
- `apply_needs` steps run only when the step that needs them has to apply; `reads` steps
  run first like `depends_on` ones, but their outputs are not part of the fingerprint
  (facts the step compares with what it finds, e.g. the exact base image).
- Independent steps run concurrently on at most `max_workers` threads; the main thread
  alone touches the journal (state), saving after every step transition.
- A transient Azure error is retried (`batchimage.core.retry`: Retry-After honoured, else
  exponential backoff with jitter), up to `max_attempts` and the per-step deadline;
  anything else fails the step at once. The engine knows no cloud: the `Failures` it is
  given (`batchimage.core.failures`; the commands give `batchimage.azure.errors.AZURE`) map a
  foreign exception to ours and say what to do about a failure.
- SIGINT/SIGTERM (`handle_signals`): no new work starts, in-flight calls get `grace_s` to
  settle (waits stop at once), state is saved, `Interrupted` (exit 130) is raised; a step
  cut short stays `in_flight` and the next apply re-runs it (apply is idempotent).

`Engine.plan` runs the same walk read-only and returns a `Change` per step;
`Engine.destroy` deletes what the state says this pipeline created, and what the steps'
`leftovers` find in Azure by the pipeline's tags that the state does not list, newest first.

The modules, one concern each: `coordinator` (the `Engine`: holds a run's pieces, hands
each command on, journals and announces each run), `graph` (nodes, order, fingerprints),
`walk` (one pass of plan or apply), `retry` (a step's calls retried), `signals` (the stop
flag, SIGINT/SIGTERM), `journal` (the writes to a step's record), `destroy`, `result`
(`Change`, `RunResult`, run ids) and `wording` (every sentence the engine says).
"""

from batchimage.core.retry import RetryPolicy
from batchimage.engine.coordinator import Engine
from batchimage.engine.result import CHANGES, OUTCOMES, Change, RunResult, new_run_id
from batchimage.engine.signals import StopFlag, handle_signals
from batchimage.state import Journal

__all__ = [
    "CHANGES",
    "OUTCOMES",
    "Change",
    "Engine",
    "Journal",
    "RetryPolicy",
    "RunResult",
    "StopFlag",
    "handle_signals",
    "new_run_id",
]
