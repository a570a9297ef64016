"""Logic of the image pipeline without Azure: which steps each example spec gets and how
they depend on each other, deterministic names and fingerprints, gallery version
numbering and replica counts, definition compatibility, node agent end of support."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from batchimage.azure.ids import parse_id
from batchimage.azure.marketplace import MarketplaceImage
from batchimage.azure.node_agents import SupportedImage
from batchimage.spec import load_spec, load_spec_text
from batchimage.steps.base import Step, StepIndex
from batchimage.steps.gallery import (
    WantedDefinition,
    build_vm_security,
    definition_problems,
    next_version,
    replica_plan,
)
from batchimage.steps.names import BuildNames, build_fingerprint, image_fingerprint
from batchimage.steps.pipeline import build_steps, pipeline
from batchimage.steps.preflight.base_image import check_base_image
from batchimage.steps.preflight.node_agent import _check_account
from tests.pipeline.harness import SPECS

EXAMPLES = sorted(p.name for p in SPECS.glob("*.yaml"))


def closure(index: StepIndex, step: Step[Any]) -> set[str]:
    """Keys of every step `step` depends on (depends_on and apply_needs), transitively."""
    seen: set[str] = set()
    stack = [step]
    while stack:
        for dep in index.direct_deps(stack.pop()):
            if dep.key not in seen:
                seen.add(dep.key)
                stack.append(dep)
    return seen


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_step_waits_for_preflight(example: str) -> None:
    steps = build_steps(load_spec(SPECS / example))
    index = StepIndex(steps)
    assert steps[0].key == "preflight"
    for step in steps[1:]:
        assert "preflight" in closure(index, step), f"{step.key} can run before preflight"


def test_steps_of_each_example() -> None:
    keys = {  # the image steps (pool steps: tests/pools/test_pool_stage.py)
        name: [s.key for s in build_steps(load_spec(SPECS / name)) if not s.key.startswith("pool.")]
        for name in EXAMPLES
    }
    build = ["group.sandbox-rg", "build.network", "build.nic", "build.vm"]
    assert keys["quickstart.yaml"] == [
        "preflight", "resolve_image", *build, "customize.0", "customize.1.stage",
        "customize.1", "generalize", "capture.gallery", "capture.definition", "capture.version",
        "cleanup",
    ]  # fmt: skip
    assert keys["classic-unmanaged.yaml"][-6:] == [
        "capture.classic", "capture.gallery", "capture.definition", "capture.version",
        "capture.vhd_export", "cleanup",
    ]  # fmt: skip
    assert keys["vhd-upload.yaml"] == [
        "preflight", "resolve_image", "upload_vhd", "group.sandbox-rg",
        "capture.gallery", "capture.definition", "capture.version",
    ]  # fmt: skip
    assert keys["windows-server.yaml"].count("customize.2") == 1


def test_build_steps_are_needs_of_capture_only() -> None:
    """After cleanup, a re-apply must not rebuild: build steps run only for capture."""
    spec = load_spec(SPECS / "quickstart.yaml")
    steps = pipeline(spec)
    version = next(s for s in steps.capture if s.key == "capture.version")
    assert [s.key for s in version.apply_needs] == ["generalize"]
    assert all(
        d.key != "generalize"
        for d in StepIndex(steps.steps()).direct_deps(version, with_needs=False)
    )
    cleanup = steps.cleanup[0]
    assert cleanup.given.build_steps == [  # type: ignore[attr-defined]
        "group.sandbox-rg", "build.network", "build.nic", "build.vm", "customize.0", "customize.1",
    ]  # fmt: skip


def test_a_file_is_staged_by_a_step_of_its_own_beside_the_build() -> None:
    """customize.1's file: staged by a step that needs only preflight, which customize.1's
    apply needs (eager: started once customize.1 is wanted); cleanup's hash unchanged."""
    steps = pipeline(load_spec(SPECS / "quickstart.yaml"))
    index = StepIndex(steps.steps())
    custom = next(s for s in steps.customize if s.key == "customize.1")
    [stage] = custom.apply_needs
    assert isinstance(stage, Step) and stage.key == "customize.1.stage" and stage.eager
    assert [d.key for d in index.direct_deps(stage)] == ["preflight"]
    assert "customize.1.stage" in steps.cleanup[0].cleans


def _quickstart(edit: Any = None) -> Any:
    data = yaml.safe_load((SPECS / "quickstart.yaml").read_text())
    if edit:
        edit(data)
    return load_spec_text(yaml.safe_dump(data), str(SPECS / "quickstart.yaml"))


def test_fingerprints() -> None:
    base = _quickstart()
    same = _quickstart()
    assert image_fingerprint(base) == image_fingerprint(same)
    assert BuildNames.of(base) == BuildNames.of(same)

    def script(data: dict[str, Any]) -> None:
        data["image"]["customize"][0]["shell"] += "\necho more\n"

    changed = _quickstart(script)
    assert image_fingerprint(changed) != image_fingerprint(base)
    # a fixed script continues on the same build VM
    assert build_fingerprint(changed) == build_fingerprint(base)
    assert BuildNames.of(changed).vm == BuildNames.of(base).vm

    def size(data: dict[str, Any]) -> None:
        data["image"]["build"]["vm_size"] = "Standard_D4s_v5"

    resized = _quickstart(size)
    assert image_fingerprint(resized) == image_fingerprint(base)  # same image content
    assert BuildNames.of(resized).vm != BuildNames.of(base).vm  # but a new build VM
    names = BuildNames.of(base)
    assert names.vm.startswith("quickstart-") and len(names.computer_name) <= 15


def test_file_content_is_in_the_image_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    ref = tmp_path / "files" / "reference-data.txt"
    ref.write_text("one")
    text = (SPECS / "quickstart.yaml").read_text()
    first = image_fingerprint(load_spec_text(text, str(tmp_path / "q.yaml")))
    ref.write_text("two")
    second = image_fingerprint(load_spec_text(text, str(tmp_path / "q.yaml")))
    assert first != second


def test_next_version() -> None:
    assert next_version([]) == "1.0.0"
    assert next_version(["1.0.0", "1.0.9", "1.0.10", "0.9.99"]) == "1.0.11"
    assert next_version(["2.1.0"]) == "2.1.1"


def test_replicas_scale_with_pool_nodes() -> None:
    def big(data: dict[str, Any]) -> None:
        data["pools"][0]["dedicated_nodes"] = 500
        data["pools"][0]["spot_nodes"] = 250

    assert replica_plan(_quickstart()) == [("eastus", 1)]
    assert replica_plan(_quickstart(big)) == [("eastus", 3)]  # 750 nodes / 300 per replica


def _definition(**changes: Any) -> SimpleNamespace:
    raw: dict[str, Any] = {
        "os_type": "Linux",
        "os_state": "Generalized",
        "hyper_v_generation": "V2",
        "architecture": "x64",
        "features": [],
        "purchase_plan": None,
    }
    raw.update(changes)
    return SimpleNamespace(**raw)


def test_definition_compatibility() -> None:
    want = WantedDefinition("Linux", "Generalized", "V2", "Standard", None, "p", "o", "s")
    assert definition_problems(_definition(), want) == []
    problems = definition_problems(_definition(os_type="Windows", hyper_v_generation="V1"), want)
    assert problems == [
        "its OS type is Windows, the image's is Linux",
        "its Hyper-V generation is V1, the image's is V2",
    ]
    plan = {"name": "9-gen2", "product": "almalinux-x86_64", "publisher": "almalinux"}
    with_plan = WantedDefinition("Linux", "Generalized", "V2", "Standard", plan, "p", "o", "s")
    assert definition_problems(_definition(), with_plan) == [
        "its purchase plan is none, the base image's is almalinux/almalinux-x86_64/9-gen2"
    ]


def test_security_type_of_definitions() -> None:
    """Standard is sent as no feature; a Standard image goes into a generic Gen2 definition;
    the build VM is Trusted Launch for a TrustedLaunch definition only."""
    standard = WantedDefinition("Linux", "Generalized", "V2", "Standard", None, "p", "o", "s")
    assert "features" not in standard.body("eastus", {}, None)["properties"]
    trusted = WantedDefinition("Linux", "Generalized", "V2", "TrustedLaunch", None, "p", "o", "s")
    assert trusted.body("eastus", {}, None)["properties"]["features"] == [
        {"name": "SecurityType", "value": "TrustedLaunch"}
    ]

    def feature(value: str) -> SimpleNamespace:
        return _definition(features=[SimpleNamespace(name="SecurityType", value=value)])

    for generic in ("TrustedLaunchSupported", "TrustedLaunchAndConfidentialVmSupported"):
        assert definition_problems(feature(generic), standard) == []
    assert definition_problems(feature("TrustedLaunch"), standard) == [
        "its security type is TrustedLaunch, the image's is Standard"
    ]
    assert definition_problems(_definition(), trusted) == [
        "its security type is Standard, the image's is TrustedLaunch"
    ]
    assert [
        build_vm_security(s) for s in ("TrustedLaunch", "TrustedLaunchSupported", "Standard")
    ] == [
        "TrustedLaunch",
        "Standard",
        "Standard",
    ]


def test_trusted_launch_needs_a_base_that_boots_it() -> None:
    """Preflight refuses a TrustedLaunch definition on a base no Trusted Launch VM boots."""
    spec = load_spec(SPECS / "quickstart.yaml")
    spec.image.capture.gallery.definition.security_type = "TrustedLaunch"

    def check(security: str) -> Any:
        image = MarketplaceImage(
            "Canonical",
            "ubuntu-24_04-lts",
            "server",
            "1",
            None,
            "V2",
            "linux",
            "x64",
            30,
            security_type=security,
        )
        facts = SimpleNamespace(spec=spec, marketplace=lambda: image, pinned_version=None)
        return check_base_image(facts)[0]  # type: ignore[arg-type]

    assert check("TrustedLaunchSupported").status == "pass"
    refused = check("")
    assert refused.status == "fail"
    assert "cannot boot a Trusted Launch VM (Hyper-V V2, no security type)" in refused.message
    assert "or use TrustedLaunchSupported" in refused.message


def _agent_check(end: datetime | None) -> Any:
    spec = load_spec(SPECS / "quickstart.yaml")
    facts = SimpleNamespace(spec=spec)
    images = [
        SupportedImage(
            "batch.node.ubuntu 24.04", "canonical", "ubuntu-24_04-lts", "server", "linux", end
        )
    ]
    return _check_account(facts, "node agent", images, spec.pools)  # type: ignore[arg-type]


def test_node_agent_end_of_support() -> None:
    now = datetime.now(UTC)
    assert _agent_check(None).status == "pass"
    assert _agent_check(now + timedelta(days=400)).status == "pass"
    soon = _agent_check(now + timedelta(days=30))
    assert soon.status == "warn" and "ends on" in soon.message
    past = _agent_check(now - timedelta(days=1))
    assert past.status == "fail" and "ended on" in past.message


def test_parse_id() -> None:
    rid = (
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/d"
        "/versions/1.0.0"
    )
    p = parse_id(rid)
    assert p["type"] == "Microsoft.Compute/galleries/images/versions"
    assert p["names"] == "gal/d/1.0.0" and p["group"] == "g" and p["name"] == "1.0.0"
    assert (
        parse_id("/subscriptions/s/resourceGroups/g")["type"]
        == "Microsoft.Resources/resourceGroups"
    )
