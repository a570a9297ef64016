"""The `compute` section of the sandbox config (file, or `PATCH /_sandbox/config`):

compute:
  quota:                      # vCPU limits per region (every region alike ...)
    cores: 1000               # "Total Regional vCPUs" (the default)
    lowPriorityCores: 1000    # "Total Regional Low-priority vCPUs" (Spot; the default)
    family: 1000              # default limit of every VM size family
    standardDSv5Family: 10    # a family's own limit
    virtualMachines: 25000
    regions:                  # ... except where a region has its own limits
      westus: {cores: 8, standardDSv5Family: 4}
  vm_extensions:              # extensions every new VM gets (as agents install them)
    - {name: AzureMonitorLinuxAgent, publisher: Microsoft.Azure.Monitor,
       type: AzureMonitorLinuxAgent, typeHandlerVersion: "1.0", os_type: Linux}
  script_failures:            # a script matching `pattern` (regex) "fails"
    - {pattern: "apt-get install -y broken", exit_code: 100,
       stdout: "", stderr: "E: Unable to locate package broken", seconds: 30}
  sysprep_failure:            # `sysprep /generalize` fails: no shutdown, state reads failed
    image_state: IMAGE_STATE_UNDEPLOYABLE   # ImageState afterwards (the default)
    generalization_state: 4   # SysprepStatus GeneralizationState (7 would be success)
    seconds: 0                # sysprep "runs" this long before the state reads failed
    setuperr: ["Error SYSPRP ..."]           # setuperr.log lines (default: an AppX case)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from batchimage.sandbox.context import World

# Chosen (Azure's defaults vary by subscription offer and are not published as one number):
# room for a shared sandbox whose user-subscription Batch nodes count here too.
DEFAULT_CORES = 1000
DEFAULT_FAMILY = 1000
DEFAULT_VMS = 25000


def section(world: World) -> dict[str, Any]:
    compute: dict[str, Any] = world.config.compute
    return compute


def quota_limit(world: World, name: str, location: str = "") -> int:
    """The limit of quota `name` ("cores", "lowPriorityCores", "virtualMachines" or a family
    name) in `location` (a region's own limit, else every region's)."""
    quota = dict(section(world).get("quota") or {})
    regional = dict((quota.get("regions") or {}).get(location.replace(" ", "").lower()) or {})
    defaults = {"cores": DEFAULT_CORES, "lowPriorityCores": DEFAULT_CORES}
    defaults["virtualMachines"] = DEFAULT_VMS
    keys = (name,) if name in defaults else (name, "family")  # a family, else the families'
    for limits in (regional, quota):
        for key in keys:
            if key in limits:
                return int(limits[key])
    return defaults.get(name, DEFAULT_FAMILY)


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


APPX_SETUPERR = (
    "Error                 SYSPRP Package Microsoft.BingWeather_4.53.51922.0_x64__8wekyb3d8bbwe "
    "was installed for a user, but not provisioned for all users. This package will not "
    "function properly in the sysprep image.",
    "Error                 SYSPRP Failed to remove apps for the current user: 0x80073cf2.",
    "Error                 SYSPRP Exit code of RemoveAllApps thread was 0x3cf2.",
    "Error      [0x0f0082] SYSPRP ActionPlatform::LaunchModule: Failure occurred while "
    "executing 'SysprepGeneralizeValidate' from C:\\Windows\\System32\\AppxSysprep.dll; "
    "dwRet = 0x3cf2",
    "Error                 SYSPRP SysprepSession::Validate: Error in validating actions from "
    "C:\\Windows\\System32\\Sysprep\\ActionFiles\\Generalize.xml; dwRet = 0x3cf2",
    "Error                 SYSPRP RunPlatformActions:Failed while validating Sysprep session "
    "actions; dwRet = 0x3cf2",
    "Error      [0x0f0070] SYSPRP RunExternalDlls:An error occurred while running registry "
    "sysprep DLLs, halting sysprep execution. dwRet = 0x3cf2",
    "Error      [0x0f00d8] SYSPRP WinMain:Hit failure while pre-validate sysprep generalize "
    "internal providers; hr = 0x80073cf2",
)


@dataclass(frozen=True)
class SysprepFailure:
    """How `sysprep /generalize` fails: the setup state it leaves and its error log."""

    image_state: str
    generalization_state: int
    setuperr: tuple[str, ...]
    seconds: float


def sysprep_failure(world: World) -> SysprepFailure | None:
    """The `sysprep_failure` rule of the config, or None (sysprep succeeds)."""
    rule = section(world).get("sysprep_failure")
    if not rule:
        return None
    lines = rule.get("setuperr")
    return SysprepFailure(
        image_state=str(rule.get("image_state") or "IMAGE_STATE_UNDEPLOYABLE"),
        generalization_state=int(rule.get("generalization_state", 4)),
        setuperr=tuple(str(x) for x in lines) if lines else APPX_SETUPERR,
        seconds=float(rule.get("seconds") or 0),
    )
