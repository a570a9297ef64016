"""A step's progress words: the verb of what its apply does (create / creating / created)
and how the run's summary counts it; the engine says them, the display shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Verb:
    """How progress words one kind of apply: create / creating / created, counted as created."""

    base: str
    doing: str
    done: str
    counts_as: Literal["created", "changed", "deleted", "read"]

    def phrase(self, what: str, *, done: bool = False) -> str:
        """ "creating gallery g" for `what` = "gallery g"; "deleting build resources" when
        `what` starts with the verb already ("delete build resources")."""
        word = self.done if done else self.doing
        first, _, rest = what.partition(" ")
        if first == self.base:
            return f"{word} {rest}".strip()
        return f"{word} {what}".strip()


CREATE = Verb("create", "creating", "created", "created")
UPDATE = Verb("update", "updating", "updated", "changed")
REPLACE = Verb("replace", "replacing", "replaced", "changed")
DELETE = Verb("delete", "deleting", "deleted", "deleted")
READ = Verb("read", "reading", "read", "read")
RUN = Verb("run", "running", "ran", "changed")

ACTION_VERBS: dict[str, Verb] = {
    "create": CREATE,
    "update": UPDATE,
    "replace": REPLACE,
    "delete": DELETE,
    "read": READ,
}

# The verb of a step whose kind starts with it (verb_noun) and whose apply is not a
# create/update of one resource.
KIND_VERBS: dict[str, Verb] = {
    "run": RUN,
    "generalize": Verb("generalize", "generalizing", "generalized", "changed"),
    "retire": Verb("retire", "retiring", "retired", "deleted"),
    "resolve": Verb("resolve", "resolving", "resolved", "read"),
    "capture": Verb("capture", "capturing", "captured", "created"),
    "export": Verb("export", "exporting", "exported", "created"),
    "upload": Verb("upload", "uploading", "uploaded", "created"),
}
