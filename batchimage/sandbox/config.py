"""Sandbox settings: the cloud it models, time scale, simulated operation durations,
faults, seed, Batch rules (file + env).

Precedence: defaults < config file (`BATCHIMAGE_SANDBOX_CONFIG` or `<folder>/config.json`,
JSON or YAML) < environment (`BATCHIMAGE_SANDBOX_TIME_SCALE`, `BATCHIMAGE_SANDBOX_SEED`,
`BATCHIMAGE_SANDBOX_CLOUD`). Durations are simulated seconds; the wall time an operation
takes is duration x time_scale.

`cloud`: `public` (default) models public Azure, where unmanaged disks are retired;
`azure_stack_hub` models a cloud that still serves them (Azure Stack Hub, a custom cloud
profile), for the classic unmanaged-disk flow. Read at start for the connection file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchimage.sandbox.errors import SandboxError

# The default scale turns the quickstart pipeline (~25 simulated minutes) into ~20 s.
DEFAULT_TIME_SCALE = 0.015

# Simulated seconds per operation, close to what Azure takes.
DEFAULT_DURATIONS: dict[str, float] = {
    "resource_group.delete": 45.0,
    "network.create": 5.0,
    "network.update": 5.0,
    "network.delete": 10.0,
    "storage.create": 20.0,
    "storage.delete": 0.0,
    "batch_account.create": 30.0,
    "batch_account.delete": 30.0,
    "vm.create": 90.0,
    "vm.update": 30.0,
    "vm.delete": 60.0,
    "vm.start": 45.0,
    "vm.power_off": 30.0,
    "vm.deallocate": 60.0,
    "vm.capture": 60.0,
    "vm.run_command": 30.0,
    "vm.sysprep": 60.0,
    "vm.restart": 60.0,
    "vm_extension.create": 60.0,
    "vm_extension.update": 30.0,
    "vm_extension.delete": 30.0,
    "run_command.create": 30.0,
    "run_command.update": 30.0,
    "run_command.delete": 10.0,
    "disk.grant_access": 10.0,
    "disk.revoke_access": 5.0,
    "disk.delete": 10.0,
    "image.create": 60.0,
    "image.delete": 30.0,
    "gallery.create": 10.0,
    "gallery.delete": 10.0,
    "gallery_image.create": 10.0,
    "gallery_image.delete": 10.0,
    "gallery_image_version.create": 600.0,
    "gallery_image_version.update": 300.0,
    "gallery_image_version.delete": 120.0,
    "pool.allocate": 300.0,
    "node.start": 180.0,
    "pool.delete": 120.0,
    "pool.shrink": 60.0,
    "pool.stop_resize": 30.0,
    "node.start_task": 30.0,
    "task.run": 10.0,
    "job.delete": 10.0,
}

# Simulated seconds between polls clients are told to use (the connection file's
# polling interval) where Azure's answer asks for none.
DEFAULT_POLL_INTERVAL = 10.0

# The Retry-After (simulated seconds; None: no header) an operation's answers carry, by
# operation (the keys of the durations): the first for the answer that starts it, then one
# per answer to a poll while it runs, the last repeated. As recorded in Azure's answers
# (docs/azure-behaviours.md, "Long-running operations: polling"); an operation not listed
# asks for none.
DEFAULT_RETRY_AFTER: dict[str, list[float | None]] = {
    "network.create": [3, 10],
    "network.update": [3, 10],
    "network.delete": [10],
    "vm.create": [10, 50, None],
    "vm.delete": [10, 30, None],
    "vm.deallocate": [10, 36, None],
    "resource_group.delete": [15],
    "batch_account.create": [15],
    "batch_account.delete": [15],
    "storage.create": [17],
}

# The clouds the sandbox can model (see the module docstring).
CLOUDS = ("public", "azure_stack_hub")


@dataclass
class SandboxConfig:
    """Everything tunable about the sandbox's behaviour."""

    cloud: str = "public"
    time_scale: float = DEFAULT_TIME_SCALE
    durations: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DURATIONS))
    poll_interval: float = DEFAULT_POLL_INTERVAL
    retry_after: dict[str, list[float | None]] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_RETRY_AFTER.items()}
    )
    faults: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    # Microsoft.Compute settings (quota, extensions added at VM creation, script
    # failure rules); see batchimage.sandbox.services.compute.settings.
    compute: dict[str, Any] = field(default_factory=dict)
    # Batch data-plane rules (see batchimage.sandbox.services.batch_data.rules)
    batch: dict[str, Any] = field(default_factory=dict)

    def duration(self, operation: str, default: float = 10.0) -> float:
        """Simulated seconds `operation` takes (`default` for unknown operations)."""
        return float(self.durations.get(operation, default))

    def retry_after_of(self, operation: str | None) -> list[float | None]:
        """The Retry-After answers of `operation` ask for (see DEFAULT_RETRY_AFTER)."""
        return list(self.retry_after.get(operation or "", [None]))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy (for the admin endpoint and the child process)."""
        return {
            "cloud": self.cloud,
            "time_scale": self.time_scale,
            "durations": dict(self.durations),
            "poll_interval": self.poll_interval,
            "retry_after": {k: list(v) for k, v in self.retry_after.items()},
            "faults": list(self.faults),
            "seed": self.seed,
            "batch": dict(self.batch),
            "compute": dict(self.compute),
        }


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SandboxError(f"cannot read sandbox config {path}: {exc}") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text or "{}")
    except ValueError as exc:
        raise SandboxError(f"sandbox config {path} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise SandboxError(f"sandbox config {path} must hold a mapping")
    return data


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise SandboxError(f"{name} must be a number, got {value!r}") from exc


def _cloud(name: str, value: str) -> str:
    if value not in CLOUDS:
        raise SandboxError(f"{name} must be one of {', '.join(CLOUDS)}, got {value!r}")
    return value


def _asks(value: Any) -> list[float | None]:
    """A Retry-After sequence from a config: seconds or null, one or more."""
    values = value if isinstance(value, list) else [value]
    return [None if v is None else float(v) for v in values] or [None]


def load_config(folder: Path | None = None, env: dict[str, str] | None = None) -> SandboxConfig:
    """Build the config from defaults, the config file and the environment."""
    env = dict(os.environ if env is None else env)
    config = SandboxConfig()
    path: Path | None = None
    if env.get("BATCHIMAGE_SANDBOX_CONFIG"):
        path = Path(env["BATCHIMAGE_SANDBOX_CONFIG"])
    elif folder is not None and (folder / "config.json").exists():
        path = folder / "config.json"
    if path is not None:
        apply_mapping(config, _read_file(path), str(path))
    if env.get("BATCHIMAGE_SANDBOX_TIME_SCALE"):
        scale = env["BATCHIMAGE_SANDBOX_TIME_SCALE"]
        config.time_scale = _number("BATCHIMAGE_SANDBOX_TIME_SCALE", scale)
    if env.get("BATCHIMAGE_SANDBOX_SEED"):
        config.seed = int(_number("BATCHIMAGE_SANDBOX_SEED", env["BATCHIMAGE_SANDBOX_SEED"]))
    if env.get("BATCHIMAGE_SANDBOX_CLOUD"):
        config.cloud = _cloud("BATCHIMAGE_SANDBOX_CLOUD", env["BATCHIMAGE_SANDBOX_CLOUD"])
    if config.time_scale < 0:
        raise SandboxError("time_scale must be 0 or more")
    return config


def apply_mapping(config: SandboxConfig, data: dict[str, Any], where: str) -> None:
    """Overlay a config mapping (from a file or the admin endpoint) onto `config`."""
    known = {
        "cloud",
        "time_scale",
        "durations",
        "poll_interval",
        "retry_after",
        "faults",
        "seed",
        "batch",
        "compute",
    }
    unknown = set(data) - known
    if unknown:
        raise SandboxError(
            f"{where}: unknown sandbox setting(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    for key, value in data.items():
        try:
            _set(config, key, value, where)
        except (TypeError, ValueError) as exc:  # a value of the wrong kind
            raise SandboxError(
                f"{where}: {key}: {exc} (docs/sandbox.md gives each setting's form)"
            ) from exc


def _set(config: SandboxConfig, key: str, value: Any, where: str) -> None:
    """Setting `key` of a config mapping onto `config` (TypeError or ValueError when
    `value` is of the wrong kind)."""
    if key == "cloud":
        config.cloud = _cloud(f"{where}: cloud", str(value))
    elif key == "time_scale":
        config.time_scale = float(value)
    elif key == "poll_interval":
        config.poll_interval = float(value)
    elif key == "retry_after":
        config.retry_after.update({str(k): _asks(v) for k, v in dict(value).items()})
    elif key == "durations":
        config.durations.update({str(k): float(v) for k, v in dict(value).items()})
    elif key == "faults":
        config.faults = [dict(f) for f in value]
    elif key == "seed":
        config.seed = int(value)
    elif key == "compute":
        config.compute.update(dict(value))
    elif key == "batch":  # merged per key, so one rule set can change without the others
        config.batch.update(dict(value))
