"""Windows setup state in a sandbox guest: what sysprep leaves in the registry and in
`C:\\Windows\\System32\\Sysprep\\Panther\\setuperr.log`, and the answer a PowerShell
script reading them gets.

Documented signals (Windows Setup States): `HKLM\\SOFTWARE\\Microsoft\\Windows\\
CurrentVersion\\Setup\\State` value `ImageState` is `IMAGE_STATE_COMPLETE` on an installed
image, `IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE` once the generalize pass finished, and
`IMAGE_STATE_UNDEPLOYABLE` while a setup phase runs or after it failed;
`HKLM\\SYSTEM\\Setup\\Status\\SysprepStatus` value `GeneralizationState` is 7 after a
successful generalize. The guest state lives on the OS disk content under `guest`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute import settings

INSTALLED = {"image_state": "IMAGE_STATE_COMPLETE", "generalization_state": 7, "setuperr": []}
RESEALED = {"image_state": "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", "generalization_state": 7}

READS = (
    ("generalization_state", re.compile(r"SysprepStatus", re.IGNORECASE)),
    ("image_state", re.compile(r"Setup\\State", re.IGNORECASE)),
    ("running", re.compile(r"Get-Process\b[^\n]*\bsysprep", re.IGNORECASE)),
    ("setuperr", re.compile(r"Panther\\setuperr\.log", re.IGNORECASE)),
)


def _stamp(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def sysprep_seconds(world: World) -> float:
    """Simulated seconds a successful sysprep runs before it seals the disk (`vm.sysprep`)."""
    return world.config.duration("vm.sysprep", 60.0)


def after_sysprep(world: World) -> dict[str, Any]:
    """The guest state a `sysprep /generalize` leaves (failed per the config rule, or sealed)
    once it ran; until then it reads as running."""
    rule = settings.sysprep_failure(world)
    if rule is None:
        return {**RESEALED, "sysprep_until": world.clock.due(sysprep_seconds(world))}
    until = world.clock.due(rule.seconds)
    stamp = _stamp(until)
    return {
        "image_state": rule.image_state,
        "generalization_state": rule.generalization_state,
        "setuperr": [f"{stamp}, {line}" for line in rule.setuperr],
        "sysprep_until": until,
    }


def read(world: World, state: dict[str, Any] | None, script: str) -> str:
    """What a PowerShell script reading the setup state prints: one `Name: value` line per
    value it reads (in this order), then the last 20 lines of setuperr.log."""
    current = {**INSTALLED, **(state or {})}
    running = world.clock.now() < float(current.get("sysprep_until") or 0)
    lines: list[str] = []
    for name, pattern in READS:
        if not pattern.search(script):
            continue
        if name == "generalization_state":
            lines.append(f"GeneralizationState: {current['generalization_state']}")
        elif name == "image_state":
            image_state = "IMAGE_STATE_UNDEPLOYABLE" if running else current["image_state"]
            lines.append(f"ImageState: {image_state}")
        elif name == "running":
            lines.append(f"SysprepRunning: {running}")
        else:
            log = [] if running else list(current.get("setuperr") or [])
            lines.extend(log[-20:])
    return "\n".join(lines) + ("\n" if lines else "")
