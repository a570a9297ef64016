"""The typed Step interface, typed step outputs, and the RunContext every step receives.

A step is one idempotent piece of the pipeline (one file per step: steps/verb_noun.py):

    class CreateGroup(Step[GroupOutputs]):
        kind = "create_group"                  # registry name, recorded in state
        depends_on = (Preflight,)              # outputs read by check/apply (run first)
        given: GroupInputs                     # what it reads of the spec (typed, frozen)
        def __init__(self, name, location, tags):
            self.given = GroupInputs(name=name, location=location, tags=tags)
        # inputs(), what decides the result (hashed): given's fields but exclude=True ones
        def check(self, ctx): ...              # read-only: GroupOutputs if it exists, else None
        def apply(self, ctx): ...              # make it so (PUT by deterministic name, tagged)
        @classmethod
        def destroy(cls, ctx, outputs): ...    # delete outputs.created(), from state alone
        def describe(self): return "resource group bi-demo"   # a noun phrase, or "verb ..."

Contracts the engine relies on:
- `check` and `apply` read only the step's typed inputs (`given`: one frozen `StepInputs`
  model, built once from the spec by `steps/pipeline.py` or the step's `__init__`) and
  the outputs of the steps it depends on; never the spec (the run context does not carry
  it; the commands have it from their `Session`).
  `inputs()`, what the fingerprint hashes, derives from `given`: by default its fields
  but those marked `Field(exclude=True)` (facts check/apply need that do not decide the
  result, e.g. a timeout).
- `check` never writes. It returns None when the result does not exist (or is
  incomplete); otherwise the outputs, which describe the result and not the moment (no
  timestamps or drifting states), so an unchanged world gives equal outputs.
- `apply` is safe to repeat: a resource is found by its deterministic name and
  converged, never duplicated. Tag what you create with `ctx.tags()`; `check` reads the
  tags back into `ResourceRef.created_by_run` (and `Outputs.observed_fingerprint`), so a
  crash between "PUT sent" and "state saved" is adopted by the next run.
- `destroy` works from the recorded outputs only (the spec may have changed since), and
  deletes only `outputs.created()`; a resource already gone is success.
- Outputs never hold a secret (no SecretStr fields; no keys, tokens or SAS URLs).
- Progress words: `wording(action)` gives the `Verb` (`steps/verbs.py`) for what apply
  does ("creating" / "created", counted as created in the summary). It is the action's
  verb unless the step has its own: `verb`, or by default the first word of its kind
  (steps are verb_noun: run_customize runs, generalize_vm generalizes, retire_pool
  retires).
- A step reads other steps' outputs only through `ctx.output(...)`, and only of steps it
  lists in `depends_on` (available to check and apply), `reads` (read-only steps, the same
  but outside its fingerprint: facts it compares with what it finds, e.g. the exact base
  image an artifact was made from) or `apply_needs` (steps that produce what apply
  consumes, e.g. the build VM for capture: they run only when this step has to apply, so
  a captured image is not rebuilt after its VM was cleaned up).
- `absent` (optional) answers early, from the step's own inputs, "the result certainly
  does not exist" (e.g. a GET under a gallery that is not there yet is a 404), so the
  steps `apply_needs` names start while `depends_on` ones are still being made.
- `eager` (optional, a class attribute) on a step others list in `apply_needs`: apply
  starts it as soon as a step that needs it is wanted, not once that step's check found
  it must apply, so it runs while that step's dependencies are made (a file staged while
  the build VM is created); it still runs only when such a step is wanted.
- `leftovers` (optional) finds what the step may have made by its tags and marks alone,
  so destroy deletes it even when the state does not list it.
- `apply_observes` (optional, a class attribute): apply returns the outputs `check` would
  give, built by the same code from what its operation's last read gave back (an LRO's
  final GET), or None; the engine then takes them without checking again. Otherwise
  apply returns None or what it created, and the engine checks after it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, SecretBytes, SecretStr

from batchimage.core.hashing import fingerprint_of, short_hash
from batchimage.core.lazy_clients import LazyClients
from batchimage.core.refs import ResourceRef
from batchimage.core.waiter import Waiter
from batchimage.steps.step_index import StepIndex as StepIndex  # the engine's and plan's too
from batchimage.steps.step_writes import StepWrites
from batchimage.steps.upstream import Upstream
from batchimage.steps.verbs import ACTION_VERBS, KIND_VERBS, Verb

ChangeKind = Literal["update", "replace"]


class Outputs(BaseModel):
    """Base of every step's outputs: typed, frozen, JSON-serialisable, never secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resources: tuple[ResourceRef, ...] = ()
    observed_fingerprint: str | None = None

    def created(self) -> list[ResourceRef]:
        """The resources this pipeline created (the only ones destroy and cleanup delete)."""
        return [ref for ref in self.resources if ref.created_by_run]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            if _mentions_secret(info.annotation):
                raise TypeError(f"{cls.__name__}.{name}: outputs must not hold secrets")


def _mentions_secret(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(_mentions_secret(arg) for arg in getattr(annotation, "__args__", ()) or ())


class StepInputs(BaseModel):
    """Base of a step's typed inputs: frozen, built once from the spec; `hashed()` is what
    the fingerprint hashes by default (fields with `exclude=True` are read, not hashed)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    def hashed(self) -> dict[str, Any]:
        """The fields that decide the step's result, by name, as they are (not dumped)."""
        return {
            name: getattr(self, name)
            for name, info in type(self).model_fields.items()
            if not info.exclude
        }


class NoOutputs(Outputs):
    """Outputs of a step that produces nothing for later steps."""


OutT = TypeVar("OutT", bound=Outputs)


STEP_KINDS: dict[str, type[Step[Any]]] = {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Step(ABC, Generic[OutT]):
    """One idempotent step of a pipeline; see the module docstring for the contract."""

    kind: ClassVar[str] = ""
    outputs_type: ClassVar[type[Outputs]] = NoOutputs
    change: ClassVar[ChangeKind] = "update"
    read_only: ClassVar[bool] = False
    verb: ClassVar[Verb | None] = None
    key: str = ""
    depends_on: Sequence[type[Step[Any]] | Step[Any]] = ()
    apply_needs: Sequence[type[Step[Any]] | Step[Any]] = ()
    # read-only steps whose outputs check and apply read, run first like `depends_on`, but
    # not part of this step's fingerprint: facts it compares with what it finds
    reads: Sequence[type[Step[Any]] | Step[Any]] = ()
    cleans: Sequence[str] = ()  # keys of steps whose results this one deletes (cleanup)
    # an `apply_needs` step that apply starts as soon as a step needing it is wanted, not
    # once that step's check found it must apply: work that needs nothing the needing
    # step's dependencies make (a file staged while the VM it goes to is built)
    eager: ClassVar[bool] = False
    # apply returns the outputs check would give, from its operation's last read: no
    # check after it (see the module docstring)
    apply_observes: ClassVar[bool] = False
    shown: ClassVar[tuple[str, ...]] = ()  # outputs `batchimage output` shows unasked

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            args = getattr(base, "__args__", ())
            if args and isinstance(args[0], type) and issubclass(args[0], Outputs):
                cls.outputs_type = args[0]
        if not cls.__dict__.get("kind"):
            cls.kind = _snake(cls.__name__)
        if "key" not in cls.__dict__:
            cls.key = cls.kind
        if "verb" not in cls.__dict__ and cls.verb is None:
            cls.verb = KIND_VERBS.get(cls.kind.split("_", 1)[0])
        if not getattr(cls, "__abstractmethods__", None):
            known = STEP_KINDS.get(cls.kind)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"step kind {cls.kind!r} is used by {known.__qualname__} already")
            STEP_KINDS[cls.kind] = cls

    given: StepInputs = StepInputs()  # everything check/apply read of the spec

    def inputs(self) -> Mapping[str, Any]:
        """The inputs that decide this step's result (JSON-able; pydantic models allowed):
        by default `given.hashed()`."""
        return self.given.hashed()

    def input_hashes(self) -> dict[str, str]:
        """One short hash per input name (recorded, so plan can say which input changed)."""
        return {name: short_hash(value) for name, value in sorted(self.inputs().items())}

    def fingerprint(self) -> str:
        """Hash of this step's own inputs (the engine adds its dependencies' outputs)."""
        return fingerprint_of(self.input_hashes())

    @abstractmethod
    def check(self, ctx: RunContext) -> OutT | None:
        """Observe, read-only: this step's outputs if its result exists, else None."""

    @abstractmethod
    def apply(self, ctx: RunContext) -> OutT | None:
        """Make the result exist as the inputs say (idempotent; the engine checks after,
        unless `apply_observes` and apply returned the outputs)."""

    def absent(self, ctx: RunContext) -> bool:
        """Read-only, asked early by apply: True only when the result certainly does not exist.

        The engine may ask before the steps this one depends on are done, so it must not
        read their outputs (its own inputs and a name-based read only). True stands for a
        check that finds nothing: what `apply_needs` names starts at once, while the
        dependencies are made. False (the default) means "not known": the check decides."""
        return False

    def leftovers(self, ctx: RunContext) -> list[ResourceRef]:
        """Read-only, asked by destroy: what this pipeline may have made for this step and
        that exists now, found by its tags and marks whatever the state says (a state lost
        or replaced, a step cut short); destroy deletes it with this step's `destroy`, which
        then may get outputs holding nothing but `resources`. Refs carry the run that made
        them. Default: nothing."""
        return []

    @classmethod
    def destroy(cls, ctx: RunContext, outputs: OutT) -> list[tuple[ResourceRef, str]] | None:
        """Delete `outputs.created()`; a step that creates resources must override this.
        Returns what it kept on purpose, each with why (e.g. a gallery others still use)."""
        if outputs.created():
            raise NotImplementedError(f"step kind {cls.kind} created resources but cannot destroy")
        return None

    @classmethod
    def exists(cls, ctx: RunContext, ref: ResourceRef) -> bool:
        """Whether `ref`, a resource this step created, is still there (read-only; True
        when the step cannot tell)."""
        return True

    def describe(self) -> str:
        """One line for people: what this step makes."""
        return self.key

    # -- plan's words (see batchimage.plan.decide) ---------------------------------------

    def input_words(self, name: str) -> str | None:
        """How a person names input `name` ("the script"), or a dependency's outputs
        (`@<key>`: "the base image"); None: by its name ("outputs of <key>")."""
        return None

    def explain_change(self, changed: list[str], upstream: list[str]) -> str | None:
        """Why this step changes, given its own `changed` input names and what changed
        upstream in a person's words ("the script of customize.0"); None: the inputs named."""
        return None

    def why_missing(self) -> str | None:
        """Why the last check found nothing where the state records a result, when the step
        knows (e.g. "it holds the image built from another base"); None: not known."""
        return None

    def read_moved(self, recorded: Mapping[str, Any] | None, found: Outputs) -> str | None:
        """A read-only step whose inputs did not change: why what it read (`found`) is not
        what it `recorded` (e.g. a base image moved on purpose); None: up to date."""
        return None

    def planned_after(
        self, changing: Mapping[str, str], recorded: Mapping[str, Any] | None
    ) -> tuple[str, str] | None:
        """Plan, when the steps `changing` ({key: action}) this one depends on change first:
        (action, reason) this step will take, from its `recorded` outputs; None: "may change"."""
        return None

    def wording(self, action: str) -> Verb:
        """The words for applying `action`: the step's own verb, else the action's."""
        verb = self.verb or ACTION_VERBS.get(action) or Verb(action, action, action, "changed")
        if self.read_only and verb.counts_as != "read":
            verb = replace(verb, counts_as="read")
        return verb

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"


def runs_again(vm_key: str, changing: Mapping[str, str], doing: str) -> tuple[str, str] | None:
    """`planned_after` of a step that acts on the build VM (`vm_key`): it runs on a new VM
    when that one is created, or again after the changing steps before it."""
    if changing.get(vm_key) == "create":
        return "update", f"{doing} the new build VM"
    if changing:
        return "update", f"runs again after {', '.join(changing)}"
    return None


@dataclass(kw_only=True)
class RunContext(Upstream, StepWrites, LazyClients, Waiter):
    """What a step gets: the composition of the run's parts, each owning its fields.

    - the run's identity: `pipeline`, `run_id`, `state`, `refresh_base`,
      `delete_timeout_s` (`steps/run_identity.py`); never the spec (steps read their own
      typed inputs);
    - the step this view serves and its fingerprint, `for_step` (`steps/step_view.py`);
    - other steps' outputs: `index`, `results`, `recorded_outputs`; `output`, `outputs`,
      `recorded`, only of the steps it depends on (`steps/upstream.py`);
    - what the step writes: `tags`, `created`, `secret` (`steps/step_writes.py`);
    - the Azure clients, built on first use by `clients_factory` so a plan from state alone
      needs no credentials (`core/lazy_clients.py`);
    - waiting and progress: `events`, `stop`, `clock`; `say`, `sleep`, `wait`, `poll`
      (`core/waiter.py`), its events naming the view's step (`StepView.step_key` comes
      first in this class's bases).

    The engine hands each step call its own view (`for_step`); every view shares the run's
    results, clients and stop flag. It is the `Calls` the Azure edge takes.
    """
