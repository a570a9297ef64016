"""The guest scripts of step `generalize`: the Linux deprovisioning, started so that the run
command reports before it stops the guest agent; Windows sysprep; and the sysprep check.

Why Linux needs a launcher: `waagent -deprovision` stops the guest agent first and deletes
its state (Azure/WALinuxAgent, azurelinuxagent/pa/deprovision/default.py), and run commands
report only through that agent, so a run command that deprovisions never reports
(Azure/WALinuxAgent#3547, #2006). `linux_launcher` has systemd start it a minute after the
run command returned, in a unit of its own (outside the agent's cgroup, which stopping the
agent kills), then power the VM off - the way Microsoft's DevTest Labs artifact does it with
`at now + 1 minute ... && poweroff` (Azure/azure-devtestlab, Artifacts/linux-deprovision).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

LINUX_DEPROVISION = "waagent -deprovision+user -force"
GENERALIZE_UNIT = "batchimage-generalize"
DEPROVISION_DELAY_S = 60
WINDOWS_SYSPREP = (
    '& "$env:SystemRoot\\System32\\Sysprep\\Sysprep.exe" /generalize /oobe /shutdown /mode:vm'
)
SYSPREP_DIAGNOSE = "\n".join(
    [
        "$status = Get-ItemProperty -EA SilentlyContinue `",
        "  'HKLM:\\SYSTEM\\Setup\\Status\\SysprepStatus'",
        "$state = Get-ItemProperty -EA SilentlyContinue `",
        "  'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State'",
        'Write-Output "GeneralizationState: $($status.GeneralizationState)"',
        'Write-Output "ImageState: $($state.ImageState)"',
        'Write-Output "SysprepRunning: $([bool](Get-Process sysprep -EA SilentlyContinue))"',
        '$log = "$env:SystemRoot\\System32\\Sysprep\\Panther\\setuperr.log"',
        "if (Test-Path $log) { Get-Content $log -Tail 20 }",
    ]
)
SEALED = ("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", "IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT")
_FACT = re.compile(r"^(GeneralizationState|ImageState|SysprepRunning):[ \t]*(.*)$")
SYSPREP_HINT = (
    "read setuperr.log; the classic causes are an AppX package installed for one user but "
    "not provisioned for all (Remove-AppxPackage it for that user), a pending Windows Update "
    "reboot (restart in a customize step before generalizing) and BitLocker on the OS disk "
    "(turn it off); fix it in a customize step and run apply again on a fresh build VM "
    "(batchimage destroy, then apply): sysprep can be run only a limited number of times "
    "(rearm count) on one Windows image"
)


def linux_launcher(command: str) -> str:
    """A script that has systemd run `command`, then `shutdown -h now` (only when it
    succeeded), DEPROVISION_DELAY_S after the script returned; running it again while that
    unit waits schedules nothing new. Needs systemd-run (every Azure-endorsed distribution
    has it)."""
    payload = f"({command}) && shutdown -h now"
    description = "batchimage: deprovision the guest, then turn the VM off"
    unit = GENERALIZE_UNIT
    return "\n".join(
        [
            "set -eu",
            "if ! command -v systemd-run >/dev/null 2>&1; then",
            "  echo 'batchimage: systemd-run is missing; the deprovisioning must run in a "
            "systemd unit, outside the guest agent' >&2",
            "  exit 127",
            "fi",
            f"systemctl is-active --quiet {unit}.timer || systemd-run --unit={unit} "
            f"--description={shlex.quote(description)} --on-active={DEPROVISION_DELAY_S} "
            f"/bin/sh -c {shlex.quote(payload)}",
            f"echo 'batchimage: {unit} starts in {DEPROVISION_DELAY_S} s'",
        ]
    )


@dataclass(frozen=True)
class SysprepState:
    """What the guest says about sysprep: setup state values and setuperr.log's tail."""

    image_state: str
    generalization_state: str
    running: bool
    log: list[str]

    @classmethod
    def parse(cls, output: str) -> SysprepState:
        facts: dict[str, str] = {}
        log = []
        for line in output.splitlines():
            match = _FACT.match(line.strip())
            if match:
                facts[match.group(1)] = match.group(2).strip()
            elif line.strip():
                log.append(line.rstrip())
        return cls(
            image_state=facts.get("ImageState", ""),
            generalization_state=facts.get("GeneralizationState", ""),
            running=facts.get("SysprepRunning", "").lower() == "true",
            log=log,
        )

    @property
    def failed(self) -> bool:
        """Sysprep ended without sealing the image (an empty answer proves nothing)."""
        return bool(self.image_state) and not self.running and self.image_state not in SEALED
