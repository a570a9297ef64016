"""Every step's fingerprint inputs stay what they were: for the example specs and variants
covering VHD bases, Windows, the managed image and VHD exports, retention, release and
several pools, each step's inputs (what its fingerprint hashes: the short hash of each
one's canonical JSON) are, as canonical JSON, the golden file `step_inputs.golden.json`,
recorded once from the code before steps had typed inputs (the checkout's folder written
`<repo>`: a VHD base's path is an input). A changed input would make every user's
pipeline look changed: never regenerate the file to make this test pass (a new step adds
its own entries, and nothing else of the file changes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchimage.core.hashing import canonical_json, short_hash
from batchimage.spec import load_spec_text
from batchimage.steps.pipeline import build_steps

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"
GOLDEN = Path(__file__).with_name("step_inputs.golden.json")

Edit = Callable[[dict[str, Any]], None]


def _all_captures(data: dict[str, Any]) -> None:
    """Quickstart with every capture, retention, release, its own groups and settings."""
    image = data["image"]
    image["base"]["marketplace"]["version"] = "24.04.202404230"
    image["build"] = {
        "vm_size": "Standard_D4s_v5",
        "os_disk": {"size_gb": 64, "sku": "Premium_LRS"},
        "network": {"address_space": "10.77.0.0/24"},
        "spot": True,
    }
    image["customize"][0]["env"] = {"CHANNEL": "beta"}
    image["customize"][0]["timeout_s"] = 900
    image["generalize"] = {"enabled": True, "command": "waagent -deprovision -force"}
    gallery = image["capture"]["gallery"]
    gallery.update(
        resource_group="gallery-rg",
        exclude_from_latest="until_rolled_out",
        keep=3,
        keep_days=30,
        end_of_life_days=90,
        storage_account_type="Standard_ZRS",
        replicas=[{"region": "eastus", "count": 2}, {"region": "westus2", "count": 1}],
    )
    gallery["definition"]["description"] = "all captures"
    image["capture"]["vhd_export"] = {
        "storage_account": "sandboxstore",
        "container": "exports",
        "name": "exact.vhd",
        "resource_group": "store-rg",
    }
    image["capture"]["managed_image"] = {"name": "qs-managed", "resource_group": "images-rg"}
    data["cleanup"] = "always"
    data["timeouts"] = {"delete_s": 900, "capture_s": 1200, "pool_s": 2400}
    data["retry"] = {"max_attempts": 3}
    data["tags"] = {"project": "golden", "owner": "steps"}


def _windows_managed(data: dict[str, Any]) -> None:
    """Windows with a managed image in the build group, a password and no cleanup."""
    image = data["image"]
    image["build"]["admin_password"] = {"env": "GOLDEN_ADMIN_PASSWORD"}
    image["build"]["public_ip"] = True
    image["capture"]["managed_image"] = {"name": "win-managed"}
    image["capture"]["gallery"]["exclude_from_latest"] = True
    data["cleanup"] = "never"
    data["pools"][0]["rollout"] = "blue_green"
    data["pools"][0]["smoke_test"] = {"command_line": "cmd /c ver", "timeout_s": 120}


def _vhd_url_built(data: dict[str, Any]) -> None:
    """A VHD already in storage, customized on a build VM with an unmanaged OS disk."""
    image = data["image"]
    image["base"] = {
        "vhd_url": {"url": "https://sandboxstore.blob.core.windows.net/vhds/base.vhd"},
        "os_type": "linux",
    }
    image["build"] = {
        "os_disk": {"type": "unmanaged", "storage_account": "sandboxstore", "container": "vhds"}
    }
    image["customize"] = [
        {"name": "one", "shell": "echo one"},
        {"restart": True},
        {"name": "two", "shell": "echo two", "secret_env": {"TOKEN": {"env": "GOLDEN_TOKEN"}}},
    ]
    image["generalize"] = {"enabled": True}
    image["capture"]["vhd_export"] = {"storage_account": "sandboxstore", "prefix": "built"}
    image["capture"]["gallery"]["keep"] = 2


def _vhd_file_retained(data: dict[str, Any]) -> None:
    """The uploaded VHD with retention by age, release, and two pools."""
    data["image"]["base"]["vhd_file"]["blob"] = "golden/base.vhd"
    gallery = data["image"]["capture"]["gallery"]
    gallery.update(keep_days=14, exclude_from_latest="until_rolled_out")
    second = dict(data["pools"][0], id="uploaded-pool-2", rollout="recreate")
    second["smoke_test"] = {"command_line": "/bin/true"}
    data["pools"].append(second)


def _pools_detailed(data: dict[str, Any]) -> None:
    """Two pools with networks, mounts, tags, metadata and their own settings."""
    first = data["pools"][0]
    first["network"] = {
        "subnet_id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
        "net-rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/batch",
        "public_ip": "none",
    }
    first["tags"] = {"pool": "interactive"}
    first["metadata"] = {"purpose": "golden"}
    first["resize_timeout_s"] = 1800
    first["mounts"] = [
        {
            "azure_blob": {
                "account_name": "sandboxstore",
                "container_name": "data",
                "identity_reference": "/subscriptions/00000000-0000-0000-0000-000000000000/"
                "resourceGroups/id-rg/providers/Microsoft.ManagedIdentity/"
                "userAssignedIdentities/pool-id",
                "relative_mount_path": "data",
            },
        }
    ]
    data["pools"][1]["batch_account"] = {
        "name": "otherbatch",
        "location": "eastus",
        "resource_group": "batch-rg",
    }
    data["pools"][1]["node_agent_sku"] = "batch.node.el 9"


VARIANTS: dict[str, tuple[str, Edit | None]] = {
    **{p.stem: (p.name, None) for p in sorted(SPECS.glob("*.yaml"))},
    "all-captures": ("quickstart.yaml", _all_captures),
    "windows-managed": ("windows-server.yaml", _windows_managed),
    "vhd-url-built": ("classic-unmanaged.yaml", _vhd_url_built),
    "vhd-file-retained": ("vhd-upload.yaml", _vhd_file_retained),
    "pools-detailed": ("two-pools.yaml", _pools_detailed),
}


def load_variant(name: str) -> Any:
    """The spec of variant `name`, read as if it were the example's file."""
    example, edit = VARIANTS[name]
    data = yaml.safe_load((SPECS / example).read_text())
    if edit is not None:
        edit(data)
    return load_spec_text(yaml.safe_dump(data), str(SPECS / example))


def snapshot(name: str) -> dict[str, dict[str, str]]:
    """Each step's key -> its kind and each input's canonical JSON (the repo as `<repo>`)."""
    out: dict[str, dict[str, str]] = {}
    for step in build_steps(load_variant(name)):
        inputs = step.inputs()
        assert step.input_hashes() == {k: short_hash(v) for k, v in sorted(inputs.items())}
        out[step.key] = {"~kind": step.kind}
        for key, value in inputs.items():
            out[step.key][key] = canonical_json(value).replace(str(REPO), "<repo>")
    return out


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_step_inputs_hash_as_before(name: str) -> None:
    golden = json.loads(GOLDEN.read_text())
    assert snapshot(name) == golden[name]


def test_golden_covers_every_variant_and_step_kind() -> None:
    golden = json.loads(GOLDEN.read_text())
    assert sorted(golden) == sorted(VARIANTS)
    kinds = {step["~kind"] for steps in golden.values() for step in steps.values()}
    from batchimage.steps.base import STEP_KINDS

    ours = {kind for kind, cls in STEP_KINDS.items() if cls.__module__.startswith("batchimage.")}
    assert kinds == ours  # (tests register steps of their own)


if __name__ == "__main__":  # recorded once, from the code before typed inputs
    GOLDEN.write_text(
        json.dumps({name: snapshot(name) for name in sorted(VARIANTS)}, indent=1) + "\n"
    )


def test_no_step_reads_the_spec_from_its_context() -> None:
    """check/apply read their typed inputs (`given`) and their dependencies' outputs: the
    run context carries no spec, and no module of the steps reads `ctx.spec`."""
    import ast
    import dataclasses

    from batchimage.steps.base import RunContext

    assert "spec" not in {f.name for f in dataclasses.fields(RunContext)}

    found = []
    for path in sorted((REPO / "batchimage" / "steps").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "spec":
                owner = node.value
                name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                if name == "ctx":
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []
