"""Why a credential got no token, in one line: what it tried and, when one of them failed
for real, what that one said.

`DefaultAzureCredential` is a chain: each credential that is not set up here says so and
the next is tried; the first that fails for another reason stops the chain. Its error
message lists every attempt, one per line after "Attempted credentials:" (azure-identity's
`ChainedTokenCredential`, `_get_error_message`), several lines each: too much for a
person. So: all of them tried and none set up -> "no sign-in found (tried environment
variables, ..., Azure CLI, ...)"; the chain stopped early -> "Azure CLI could not get a
token: <its first line>".
"""

from __future__ import annotations

import re
from typing import Any

from batchimage.core.redact import redact

NAMES = {
    "EnvironmentCredential": "environment variables",
    "WorkloadIdentityCredential": "workload identity",
    "GitHubActionsCredential": "GitHub Actions OpenID Connect",
    "AzurePipelinesCredential": "Azure Pipelines service connection",
    "ManagedIdentityCredential": "managed identity",
    "SharedTokenCacheCredential": "shared token cache",
    "VisualStudioCodeCredential": "VS Code",
    "AzureCliCredential": "Azure CLI",
    "AzurePowerShellCredential": "Azure PowerShell",
    "AzureDeveloperCliCredential": "Azure Developer CLI",
    "InteractiveBrowserCredential": "browser sign-in",
    "ClientSecretCredential": "the service principal",
    "InteractiveBrowserBrokerCredential": "sign-in broker",
    "BrokerCredential": "sign-in broker",
}
ATTEMPTS = re.compile(r"Attempted credentials:\s*\n(?P<list>.*?)(?:\nTo mitigate|\Z)", re.S)
ENTRY = re.compile(r"^\t(?P<name>\w+)(?::[ \t]*(?P<said>.*))?$")
MAX_SAID = 300  # characters of one credential's own words


def attempts(message: str) -> list[tuple[str, str]]:
    """(credential name, the first line it said) per attempt listed in a chain's message."""
    found = ATTEMPTS.search(message)
    if found is None:
        return []
    listed: list[tuple[str, str]] = []
    for line in found["list"].splitlines():
        entry = ENTRY.match(line)
        if entry is not None:
            listed.append((entry["name"], (entry["said"] or "").strip()))
    return listed


def clipped(text: str, limit: int = MAX_SAID) -> str:
    """`text` on one line, redacted, cut at a word (with "…") when longer than `limit`."""
    flat = " ".join(redact(text).split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(".,;:") + "…"


def why_no_token(error: BaseException, credential: Any = None) -> str:
    """One line on why `credential` (a chain, or any credential) raised `error`."""
    message = str(getattr(error, "message", None) or error)
    tried = attempts(message)
    if not tried:
        lines = [line for line in message.splitlines() if line.strip()]
        return clipped(lines[0]) if lines else type(error).__name__
    names = [NAMES.get(name, name) for name, _ in tried]
    chain = getattr(credential, "credentials", None)
    if chain is not None and len(tried) < len(chain):  # stopped early: the last one failed
        before = f" (tried before it: {', '.join(names[:-1])})" if len(names) > 1 else ""
        return f"{names[-1]} could not get a token: {clipped(tried[-1][1])}{before}"
    return f"no sign-in found (tried {', '.join(names)})"
