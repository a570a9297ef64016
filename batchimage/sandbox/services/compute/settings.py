"""The `compute` section of the sandbox config (file, or `PATCH /_sandbox/config`):

compute:
  quota:                      # vCPU limits per region (every region alike)
    cores: 100                # "Total Regional vCPUs"
    family: 100               # default limit of every VM size family
    standardDSv5Family: 10    # a family's own limit
    virtualMachines: 25000
  vm_extensions:              # extensions every new VM gets (as agents install them)
    - {name: AzureMonitorLinuxAgent, publisher: Microsoft.Azure.Monitor,
       type: AzureMonitorLinuxAgent, typeHandlerVersion: "1.0", os_type: Linux}
  script_failures:            # a script matching `pattern` (regex) "fails"
    - {pattern: "apt-get install -y broken", exit_code: 100,
       stdout: "", stderr: "E: Unable to locate package broken", seconds: 30}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from batchimage.sandbox.context import World

DEFAULT_CORES = 100
DEFAULT_FAMILY = 100
DEFAULT_VMS = 25000


def section(world: World) -> dict[str, Any]:
    compute: dict[str, Any] = world.config.compute
    return compute


def quota_limit(world: World, name: str) -> int:
    """The limit of quota `name` ("cores", "virtualMachines" or a family name)."""
    quota = dict(section(world).get("quota") or {})
    if name in quota:
        return int(quota[name])
    if name == "cores":
        return DEFAULT_CORES
    if name == "virtualMachines":
        return DEFAULT_VMS
    return int(quota.get("family", DEFAULT_FAMILY))


def vm_extensions(world: World, os_type: str) -> list[dict[str, Any]]:
    """Extensions to attach to every new VM of `os_type`."""
    found = []
    for item in section(world).get("vm_extensions") or []:
        wanted = str(item.get("os_type") or os_type)
        if wanted.lower() == os_type.lower():
            found.append(dict(item))
    return found


@dataclass(frozen=True)
class ScriptFailure:
    """How a matching script ends: exit code, output, and how long it runs."""

    exit_code: int
    stdout: str
    stderr: str
    seconds: float | None


def script_failure(world: World, script: str) -> ScriptFailure | None:
    """The first failure rule whose `pattern` matches `script`, or None."""
    for rule in section(world).get("script_failures") or []:
        if re.search(str(rule.get("pattern", "")), script, re.MULTILINE):
            seconds = rule.get("seconds")
            return ScriptFailure(
                exit_code=int(rule.get("exit_code", 1)),
                stdout=str(rule.get("stdout", "")),
                stderr=str(rule.get("stderr", "")),
                seconds=float(seconds) if seconds is not None else None,
            )
    return None
