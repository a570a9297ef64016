"""Check: every secret reference the spec holds can be read now (an environment variable
that is set and not empty, a readable file, a Key Vault secret this identity may read), so a
missing one stops the run before anything is created rather than in the step that needs it.
Values are read and dropped, never shown."""

from __future__ import annotations

from collections.abc import Callable

from batchimage.core.errors import AzureError, TransientAzureError, UsageError
from batchimage.spec.common import SecretRef, secret_refs
from batchimage.steps.preflight.facts import Facts
from batchimage.steps.preflight.report import CheckResult, fail, ok


def unreadable(ref: SecretRef, key_vault: Callable[[str], str]) -> str | None:
    """Why the secret `ref` names cannot be read now (None when it can); `key_vault` reads
    a Key Vault secret's value."""
    try:
        value = ref.resolve(key_vault=key_vault)
    except TransientAzureError:
        raise  # the checks run again (the engine retries)
    except AzureError as err:
        return str(err)
    except UsageError as err:
        if ref.env is not None:
            return f"environment variable {ref.env} is not set; set it before running again"
        reason = str(err).removeprefix(f"secret {ref.describe()}: ")
        return f"file {ref.file} cannot be read ({reason})"
    if not value.get_secret_value():
        return f"{ref.describe()} is empty"
    return None


def check_secrets(facts: Facts) -> list[CheckResult]:
    """One failure per secret that cannot be read; one line naming them all when each can
    (nothing when the spec has none)."""
    refs = secret_refs(facts.spec)

    read = facts.clients.read_secret
    failed = [(where, why) for where, ref in refs if (why := unreadable(ref, read))]
    if failed:
        return [fail("secrets", f"{where}: {why}") for where, why in failed]
    if not refs:
        return []
    named = ", ".join(f"{where} ({ref.describe()})" for where, ref in refs)
    return [ok("secrets", f"readable: {named}")]
