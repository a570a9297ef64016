"""ARM resource ids: build one from its parts, or split one into them.

arm_id(sub, "rg", "Microsoft.Compute/virtualMachines", "vm1") -> "/subscriptions/.../vm1"
parse_id(resource_id) -> {"subscription", "group", "provider", "type", "name", "names"}
"""

from __future__ import annotations


def parse_id(resource_id: str) -> dict[str, str]:
    """Split an ARM id into subscription, group, provider, type, name (and the parent path)."""
    parts = resource_id.strip("/").split("/")
    out: dict[str, str] = {}
    lowered = [p.lower() for p in parts]
    if "subscriptions" in lowered:
        out["subscription"] = parts[lowered.index("subscriptions") + 1]
    if "resourcegroups" in lowered:
        out["group"] = parts[lowered.index("resourcegroups") + 1]
    if "providers" in lowered:
        at = lowered.index("providers")
        rest = parts[at + 1 :]
        out["provider"] = rest[0]
        types = rest[1::2]
        names = rest[2::2]
        out["type"] = "/".join([rest[0], *types])
        out["name"] = names[-1] if names else ""
        out["names"] = "/".join(names)
    elif "group" in out:
        out["type"] = "Microsoft.Resources/resourceGroups"
        out["name"] = out["group"]
    return out
