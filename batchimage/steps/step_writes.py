"""What the current step writes carries: tags that let a later check adopt it, refs to what
this run created, and secrets registered so no log or state shows them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import SecretStr

from batchimage.core.ownership import Marks
from batchimage.core.redact import register_secret
from batchimage.core.refs import ResourceRef
from batchimage.steps.run_identity import RunIdentity
from batchimage.steps.step_view import StepView


@dataclass(kw_only=True)
class StepWrites(RunIdentity, StepView):
    """Marks of the run (`run_id`, `pipeline`) and of the step (its key, its fingerprint)."""

    def created(self, resource_id: str, kind: str) -> ResourceRef:
        """A ResourceRef for something this run created (to report in outputs)."""
        return ResourceRef(id=resource_id, kind=kind, created_by_run=self.run_id)

    def secret(self, ref: Any) -> SecretStr:
        """Resolve a spec `SecretRef` (a Key Vault one with the run's sign-in) and register
        its value so no log or state shows it."""
        run = cast(Any, self)  # a RunContext: its Azure clients (core/lazy_clients.py)
        value: SecretStr = ref.resolve(key_vault=lambda uri: run.clients.read_secret(uri))
        register_secret(value.get_secret_value())
        return value

    def tags(self, existing: Mapping[str, str] | None = None) -> dict[str, str]:
        """Tags for what this step writes, so a later check can adopt it.

        Creating (`existing` None): marks this run as the creator. Updating a resource
        whose current tags are `existing`: keeps them, and keeps the creator mark only if
        it had one, so converging someone else's resource never makes it "ours" to delete.
        """
        tags = dict(existing or {})
        if existing is None:
            tags[Marks.Tag.RUN] = self.run_id
        tags[Marks.Tag.PIPELINE] = self.pipeline
        tags[Marks.Tag.STEP] = self.step.key if self.step else ""
        tags[Marks.Tag.FINGERPRINT] = self.fingerprint
        return tags
