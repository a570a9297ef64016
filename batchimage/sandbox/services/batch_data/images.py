"""Images for Batch pools: the checks Azure makes when a pool names an Azure Compute
Gallery image (at create), what a node finds when it boots from it (unusable causes),
and the in-use check that keeps a live pool's gallery image version from being deleted.

Image facts come from the Compute service (`services.compute.facts.image_facts`).
"""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.services.batch_data import catalog
from batchimage.sandbox.services.batch_data.accounts import Account
from batchimage.sandbox.services.batch_data.errors import invalid_property
from batchimage.sandbox.services.compute import facts as compute_facts
from batchimage.sandbox.services.compute import security as compute_security

PROPERTY = "virtualMachineConfiguration.imageReference.virtualMachineImageId"
_GALLERY = "/providers/microsoft.compute/galleries/"


def check_gallery_image(call: Call, account: Account, image_id: str) -> str:
    """Refuse a pool's gallery image as Azure does at create; returns the version id it uses.

    Refused (400 InvalidPropertyValue): not an Azure Compute Gallery image; no such image
    (or definition without versions); version not provisioned; no replica in the Batch
    account's region; another subscription without Microsoft.Batch registered.
    """
    if _GALLERY not in image_id.lower():
        raise invalid_property(
            call,
            PROPERTY,
            image_id,
            "The image must be an Azure Compute Gallery image version or image definition "
            "(/subscriptions/.../providers/Microsoft.Compute/galleries/<gallery>/images/"
            "<definition>[/versions/<version>]).",
        )
    found = compute_facts.image_facts(call.world, image_id)
    if found is None:
        raise invalid_property(
            call,
            PROPERTY,
            image_id,
            "The specified image does not exist, or the image definition has no version.",
        )
    if found.subscription_id.lower() != account.subscription_id.lower() and not _batch_registered(
        call.world, found.subscription_id
    ):
        raise invalid_property(
            call,
            PROPERTY,
            image_id,
            f"The image is in subscription {found.subscription_id}, where the Microsoft.Batch "
            "resource provider is not registered. Register Microsoft.Batch in that "
            "subscription to use its images from this Batch account.",
        )
    if found.provisioning_state != "Succeeded":
        raise invalid_property(
            call,
            PROPERTY,
            image_id,
            f"The image version is in provisioning state {found.provisioning_state}; wait "
            "until it is Succeeded.",
        )
    region = arm.norm_location(account.location)
    if region not in {arm.norm_location(r) for r in found.replicated_regions}:
        raise invalid_property(
            call,
            PROPERTY,
            image_id,
            f"The image version has no replica in region {region}, the Batch account's "
            f"region (replicated to: {', '.join(found.replicated_regions) or 'none'}). Add "
            "the region to the version's target regions.",
        )
    return found.version_id


def _batch_registered(world: World, subscription: str) -> bool:
    providers = world.store.table("providers").get(subscription.lower()) or {}
    return providers.get("microsoft.batch") == "Registered"


def node_problems(world: World, version_id: str, agent_id: str) -> list[dict[str, Any]]:
    """Node errors (`code`, `message`, `errorDetails`) a node booting from the gallery image
    version `version_id` with node agent `agent_id` would report; empty when it boots."""
    found = compute_facts.image_facts(world, version_id)
    if found is None:
        return [_error("ImageNotFound", "The node's image no longer exists.", version_id)]
    problems = []
    expected = catalog.agent_for(found.source)
    image_os = found.os_type.lower()
    if (expected and expected.lower() != agent_id.lower()) or (
        not expected and catalog.agent_os(agent_id) != image_os
    ):
        want = expected or f"a {image_os} node agent"
        problems.append(
            _error(
                "NodeAgentSkuMismatch",
                f"The node agent SKU '{agent_id}' does not match the image's operating system "
                f"({found.os_type}"
                + (
                    f", from {found.source['publisher']}:{found.source['offer']}:"
                    f"{found.source['sku']}"
                    if found.source
                    else ""
                )
                + f"); the node agent could not start. Use {want}.",
                version_id,
            )
        )
    if found.os_state != "Generalized" or not found.deprovisioned:
        problems.append(
            _error(
                "ImageNotGeneralized",
                "The VM could not be provisioned from the image: the image is not generalized "
                "(the OS disk was not deprovisioned / sysprepped before capture, or the image "
                f"definition's osState is {found.os_state}).",
                version_id,
            )
        )
    if found.extensions:
        problems.append(
            _error(
                "ImageHasVMExtensions",
                "The image contains VM extensions ("
                + ", ".join(found.extensions)
                + "); Batch cannot provision nodes from images with extensions installed. "
                "Remove the extensions before capturing the image.",
                version_id,
            )
        )
    return problems


def security_refusal(world: World, record: dict[str, Any]) -> dict[str, Any] | None:
    """The Compute error a pool's VMs get when its gallery image is a TrustedLaunch one and
    the pool does not ask for Trusted Launch (`securityProfile.securityType`), or None.

    How Batch reports it is not published: the sandbox relays the Compute provider's
    refusal of such a VM (a 400 BadRequest) in an AllocationFailed resize error."""
    version_id = record.get("_image_version")
    found = compute_facts.image_facts(world, str(version_id)) if version_id else None
    if found is None:
        return None
    vmc = record.get("virtualMachineConfiguration") or {}
    asked = str((vmc.get("securityProfile") or {}).get("securityType") or "")
    requested = "TrustedLaunch" if asked.lower() == "trustedlaunch" else "Standard"
    refused = compute_security.check_vm_image(requested, found.security_type, capable=True)
    if refused is None:
        return None
    return {"error": {"code": refused.code, "message": refused.message}}


def _error(code: str, message: str, version_id: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "errorDetails": [{"name": "ImageId", "value": version_id}],
    }


def version_in_use(world: World, version_id: str) -> str | None:
    """Why gallery image version `version_id` cannot be deleted (a live pool uses it)."""
    from batchimage.sandbox.services.batch_data import pools

    wanted = version_id.lower()
    for record in pools.table(world).values():
        used = {str(record.get("_image_version") or "").lower()}
        used |= {str(n.get("_image_version") or "").lower() for n in record["_nodes"].values()}
        if wanted in used:
            return (
                f"The gallery image version is in use by Batch pool '{record['id']}' of Batch "
                f"account '{record['_account']}'. Delete the pool (or move it to another "
                "image) first."
            )
    return None
