"""The steps as a graph: a `Node` per step with its dependencies (`depends_on`) and what its
apply needs (`apply_needs`), in dependency order; which steps run only for others; a step's
effective fingerprint; and the outputs the state recorded."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from batchimage.core.hashing import fingerprint_of
from batchimage.engine.result import Change
from batchimage.plan import outputs_hash
from batchimage.state import State, StepStatus
from batchimage.steps.base import Outputs, Step, StepIndex


class Phase(Enum):
    IDLE = "idle"  # not (yet) demanded
    WAIT_DEPS = "wait_deps"
    PRECHECKING = "prechecking"  # apply only: asking `absent` while dependencies run
    CHECKING = "checking"
    WAIT_NEEDS = "wait_needs"
    APPLYING = "applying"
    DONE = "done"
    CHANGING = "changing"  # plan only: will change
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass
class Node:
    step: Step[Any]
    deps: list[Node] = field(default_factory=list)  # depends_on
    needs: list[Node] = field(default_factory=list)  # apply_needs
    phase: Phase = Phase.IDLE
    fingerprint: str = ""
    hashes: dict[str, str] = field(default_factory=dict)
    change: Change | None = None
    started: float = 0.0
    deadline: float = 0.0
    attempts: int = 0
    applied: Outputs | None = None
    outcome: str = ""  # what its run came to (RunResult.outcomes)
    prechecked: bool = False  # `absent` was asked this walk
    early: bool = False  # decided by `absent`: no check before its apply
    wanted_by: str = ""  # the step whose apply needs it (an `apply_needs` chain), if any


def build_nodes(index: StepIndex) -> list[Node]:
    """A node per step of `index`, each after the nodes it depends on or needs; a
    ValueError when two steps share a key or steps depend on each other."""
    seen: dict[str, Node] = {}
    for step in index.steps:
        if step.key in seen:
            raise ValueError(f"two steps share the key {step.key!r}")
        seen[step.key] = Node(step)
    for node in seen.values():
        node.deps = [seen[d.key] for d in index.direct_deps(node.step, with_needs=False)]
        needs = index.direct_deps(node.step, with_needs=True)
        node.needs = [seen[d.key] for d in needs if seen[d.key] not in node.deps]
    order: list[Node] = []
    marks: dict[str, int] = {}

    def visit(node: Node, path: list[str]) -> None:
        state = marks.get(node.step.key, 0)
        if state == 2:
            return
        if state == 1:
            raise ValueError("steps depend on each other: " + " -> ".join(path))
        marks[node.step.key] = 1
        for dep in node.deps + node.needs:
            visit(dep, [*path, dep.step.key])
        marks[node.step.key] = 2
        order.append(node)

    for node in seen.values():
        visit(node, [node.step.key])
    return order


def recorded_outputs(nodes: list[Node], state: State) -> dict[str, Outputs]:
    """The typed outputs `state` recorded of each done step (those that still read)."""
    recorded: dict[str, Outputs] = {}
    for node in nodes:
        rec = state.steps.get(node.step.key)
        if rec is not None and rec.outputs is not None and rec.status == StepStatus.DONE:
            with contextlib.suppress(ValueError):
                typed = node.step.outputs_type.model_validate(rec.outputs)
                recorded[node.step.key] = typed
    return recorded


def conditional(nodes: list[Node]) -> set[str]:
    """Keys of steps that run only when a step that needs them applies."""
    needed: set[str] = set()
    stack = [n for node in nodes for n in node.needs]
    while stack:
        node = stack.pop()
        if node.step.key not in needed:
            needed.add(node.step.key)
            stack.extend(node.deps)
    by_key = {n.step.key: n for n in nodes}
    unconditional = {n.step.key for n in nodes if n.step.key not in needed}
    stack = [by_key[k] for k in unconditional]
    while stack:
        node = stack.pop()
        for dep in node.deps:
            if dep.step.key not in unconditional:
                unconditional.add(dep.step.key)
                stack.append(dep)
    return {n.step.key for n in nodes} - unconditional


def fingerprint(
    node: Node, index: StepIndex, results: dict[str, Outputs]
) -> tuple[str, dict[str, str]]:
    """The effective fingerprint: own input hashes + hashes of dependency outputs (as
    `results` has them)."""
    hashes = dict(node.step.input_hashes())
    facts = {s.key for ref in node.step.reads for s in index.resolve(ref)}
    for dep in node.deps:
        if dep.step.key in facts:  # read, compared with what it finds: not an input
            continue
        out = results.get(dep.step.key)
        hashes[f"@{dep.step.key}"] = outputs_hash(out) if out is not None else "unknown"
    return fingerprint_of(hashes), hashes
