"""Azure role-based access control, the published rules, shared by the tool (preflight)
and the sandbox (enforcement): the built-in role definitions (`data/azure_roles.json`,
copied from learn.microsoft.com) and how permissions grant an action.

A permission block grants an action when one of its `actions` patterns matches it and no
`notActions` pattern does (data actions likewise, with `dataActions` / `notDataActions`);
a principal may do what any role assigned to it at or above the scope grants. Patterns
match case-insensitively and `*` stands for any run of characters ("Microsoft.Batch/*",
"*/read") - learn.microsoft.com, "Understand Azure role definitions".

    granted(["*"], ["Microsoft.Authorization/*/Write"], "Microsoft.Compute/disks/write")
    block_grants(block, "Microsoft.Batch/batchAccounts/jobs/write", data=True)
    find_role("Azure Batch Data Contributor")
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

ROLES_FILE = Path(__file__).resolve().parent / "data" / "azure_roles.json"
KEYS = ("actions", "notActions", "dataActions", "notDataActions")


@cache
def built_in_roles() -> tuple[dict[str, Any], ...]:
    """The built-in role definitions batchimage knows (`name` is the role's GUID)."""
    data: dict[str, Any] = json.loads(ROLES_FILE.read_text())
    return tuple(data["roles"])


def find_role(name_or_id: str) -> dict[str, Any] | None:
    """A built-in role by name, GUID or role definition id (case-insensitive)."""
    key = name_or_id.rsplit("/", 1)[-1].lower()
    for role in built_in_roles():
        if key in (role["name"].lower(), role["roleName"].lower()):
            return role
    return None


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.IGNORECASE)


def matches(pattern: str, action: str) -> bool:
    """Whether an actions pattern ("Microsoft.Batch/*", "*/read") covers `action`."""
    return _pattern(pattern).fullmatch(action) is not None


def granted(allow: Iterable[str], deny: Iterable[str], action: str) -> bool:
    """Whether `allow` minus `deny` covers `action`."""
    return any(matches(p, action) for p in allow) and not any(matches(p, action) for p in deny)


def block_grants(block: dict[str, Any], action: str, *, data: bool) -> bool:
    """Whether one permission block (REST keys) grants `action` (a data action when `data`)."""
    allow, deny = ("dataActions", "notDataActions") if data else ("actions", "notActions")
    return granted(block.get(allow) or [], block.get(deny) or [], action)
