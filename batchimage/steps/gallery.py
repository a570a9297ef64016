"""Azure Compute Gallery helpers: the image definition the spec asks for, its compatibility
with an existing one, version numbering, and replica counts.

    want = wanted_definition(spec, plan={"name":..., "product":..., "publisher":...})
    problems = definition_problems(existing_sdk_model, want)    # [] when compatible
    build_vm_security("TrustedLaunchSupported") -> "Standard"   # the VM the definition takes
    next_version(["1.0.0", "1.0.3", "0.9.9"]) -> "1.0.4"
    replica_plan(spec) -> [("eastus", 2), ("westeurope", 1)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from batchimage.azure.arm import text

NODES_PER_REPLICA = 300
STANDARD = "Standard"
# Generic Gen2 definitions (no VM guest state in their sources): a Standard build VM's
# image goes into them as well as into a definition without a security type.
SUPPORTED = ("TrustedLaunchSupported", "TrustedLaunchAndConfidentialVmSupported")
SUPPORTED_ALL = (*SUPPORTED, "ConfidentialVMSupported")


@dataclass(frozen=True)
class WantedDefinition:
    """The image definition properties the pipeline needs (REST values)."""

    os_type: str
    os_state: str
    hyper_v_generation: str
    security_type: str
    plan: dict[str, str] | None
    publisher: str
    offer: str
    sku: str
    architecture: str = "x64"

    def body(self, location: str, tags: dict[str, str], description: str | None) -> dict[str, Any]:
        """The PUT body of a gallery image definition."""
        props: dict[str, Any] = {
            "osType": self.os_type,
            "osState": self.os_state,
            "hyperVGeneration": self.hyper_v_generation,
            "architecture": self.architecture,
            "identifier": {"publisher": self.publisher, "offer": self.offer, "sku": self.sku},
        }
        if self.security_type != STANDARD:  # "Standard" is no value to send: no feature
            props["features"] = [{"name": "SecurityType", "value": self.security_type}]
        if self.plan:
            props["purchasePlan"] = dict(self.plan)
        if description:
            props["description"] = description
        return {"location": location, "tags": tags, "properties": props}


def builds_vm(spec: Any) -> bool:
    """Whether the image is made on a build VM (else it is registered from a VHD as is)."""
    return bool(spec.image.builds_vm)


def wanted_definition(spec: Any, plan: dict[str, str] | None) -> WantedDefinition:
    """The definition the spec asks for, given the base image's purchase plan."""
    definition = spec.image.capture.gallery.definition
    generalized = spec.image.generalize.enabled or not builds_vm(spec)
    return WantedDefinition(
        os_type="Windows" if spec.os_type == "windows" else "Linux",
        os_state="Generalized" if generalized else "Specialized",
        hyper_v_generation=definition.hyper_v_generation,
        security_type=definition.security_type or STANDARD,
        plan=plan,
        publisher=definition.publisher,
        offer=definition.offer,
        sku=definition.sku,
    )


def security_type_of(raw: Any) -> str:
    """An image definition's (SDK model) SecurityType feature; Standard when it has none."""
    for feature in getattr(raw, "features", None) or []:
        if text(feature.name).lower() == "securitytype":
            return text(feature.value)
    return STANDARD


def takes_security(have: str, want: str) -> bool:
    """Whether a definition of security type `have` takes an image the spec builds for
    `want`: the same type, or a Standard image in a generic Gen2 (`*Supported`) one."""
    have_l, want_l = have.lower(), want.lower()
    supported = {s.lower() for s in SUPPORTED_ALL}
    return have_l == want_l or (want_l == STANDARD.lower() and have_l in supported)


def definition_problems(raw: Any, want: WantedDefinition) -> list[str]:
    """Why an existing definition cannot take this image (empty: compatible)."""
    problems = []
    pairs = [
        ("OS type", text(raw.os_type or ""), want.os_type),
        ("OS state", text(raw.os_state or ""), want.os_state),
        ("Hyper-V generation", text(raw.hyper_v_generation or "V1"), want.hyper_v_generation),
        ("architecture", text(raw.architecture or "x64"), want.architecture),
    ]
    for what, have, need in pairs:
        if have.lower() != need.lower():
            problems.append(f"its {what} is {have}, the image's is {need}")
    security = security_type_of(raw)
    if not takes_security(security, want.security_type):
        problems.append(f"its security type is {security}, the image's is {want.security_type}")
    plan = raw.purchase_plan
    have_plan = (
        {"name": plan.name, "product": plan.product, "publisher": plan.publisher}
        if plan is not None and plan.name
        else None
    )
    if _plan_key(have_plan) != _plan_key(want.plan):
        problems.append(
            f"its purchase plan is {_plan_text(have_plan)}, the base image's is "
            f"{_plan_text(want.plan)}"
        )
    return problems


def _plan_key(plan: dict[str, str] | None) -> tuple[str, ...] | None:
    if not plan:
        return None
    return tuple(plan.get(k, "").lower() for k in ("name", "product", "publisher"))


def _plan_text(plan: dict[str, str] | None) -> str:
    if not plan:
        return "none"
    return f"{plan.get('publisher')}/{plan.get('product')}/{plan.get('name')}"


def trusted_launch_only(security_type: str) -> bool:
    """Whether versions of a definition of `security_type` can only back Trusted Launch VMs,
    scale sets and Batch pools (a TrustedLaunch definition)."""
    return security_type.lower() == "trustedlaunch"


def build_vm_security(security_type: str) -> str:
    """The build VM's security type for a definition of `security_type`: TrustedLaunch for a
    TrustedLaunch definition (made from Trusted Launch VM captures), Standard for every other
    one (a `*Supported` definition takes no source with a VM guest state)."""
    return "TrustedLaunch" if trusted_launch_only(security_type) else STANDARD


def version_key(name: str) -> tuple[int, int, int]:
    """Sort key of a MAJOR.MINOR.PATCH version name."""
    parts = [int(p) if p.isdigit() else 0 for p in name.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def next_version(existing: list[str]) -> str:
    """The next patch after the highest existing version; 1.0.0 when there is none."""
    if not existing:
        return "1.0.0"
    major, minor, patch = max(version_key(v) for v in existing)
    return f"{major}.{minor}.{patch + 1}"


def replica_plan(spec: Any) -> list[tuple[str, int]]:
    """(region, count) per replica region: the spec's count, raised to at least one replica
    per 300 fixed pool nodes of the pools in that region."""
    nodes: dict[str, int] = {}
    for pool in spec.pools:
        region = pool.batch_account.location or spec.location
        nodes[region] = nodes.get(region, 0) + (pool.dedicated_nodes or 0) + (pool.spot_nodes or 0)
    out = []
    for replica in spec.image.capture.gallery.replicas:
        need = math.ceil(nodes.get(replica.region, 0) / NODES_PER_REPLICA)
        out.append((replica.region, max(replica.count, need, 1)))
    return out
