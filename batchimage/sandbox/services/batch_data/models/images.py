"""Images for Batch pools: the checks Azure makes when a pool names an Azure Compute
Gallery image (at create), what stops new VMs of a pool (the Compute error Batch relays
in a resize error), whether a node booting from the image comes up, and the in-use check
that keeps a live pool's gallery image version from being deleted.

Image facts come from the Compute service (`services.compute.facts.image_facts`). Batch
publishes no node error codes for a badly prepared image: "Check for pool and node
errors" lists an invalid custom image (e.g. not properly prepared) among the causes of an
`unusable` node, and an unusable node without `errors` as one Batch cannot communicate
with - which is how such a node is reported here.
"""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.services.batch_data.errors import invalid_property
from batchimage.sandbox.services.batch_data.models import catalog
from batchimage.sandbox.services.batch_data.models.accounts import Account
from batchimage.sandbox.services.compute.models import facts as compute_facts
from batchimage.sandbox.services.compute.models import vms as compute_vms

PROPERTY = "virtualMachineConfiguration.imageReference.virtualMachineImageId"
_GALLERY = "/providers/microsoft.compute/galleries/"


def check_gallery_image(call: Call, account: Account, image_id: str) -> str:
    """Refuse a pool's gallery image as Azure does at create; returns the version id it uses.

    Refused (400 InvalidPropertyValue): not an Azure Compute Gallery image; no such image
    (or definition without versions); another subscription without Microsoft.Batch
    registered; a specialized image (Batch takes only generalized ones); version not
    provisioned; no replica in the Batch account's region.
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
    if found.os_state != "Generalized":
        raise invalid_property(
            call,
            PROPERTY,
            image_id,
            f"The image definition's osState is {found.os_state}; Batch supports only "
            "generalized Azure Compute Gallery images.",
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


def allocation_error(world: World, account: Account, record: dict[str, Any]) -> ApiError | None:
    """The Compute error that stops new VMs of gallery image pool `record` in the account's
    region (its image gone or not replicated there, a VM size that cannot boot the image's
    Hyper-V generation, a TrustedLaunch image for a pool that does not ask for Trusted Launch
    in `securityProfile`); None when VMs can be made (or the pool is not on a gallery
    image). How Batch reports the Trusted Launch case is not published: like the others it
    is relayed as the provider's error in an AllocationFailed resize error."""
    image_id = record["virtualMachineConfiguration"]["imageReference"].get("virtualMachineImageId")
    if not image_id:
        return None
    location = arm.norm_location(account.location)
    vmc = record["virtualMachineConfiguration"]
    asked = str((vmc.get("securityProfile") or {}).get("securityType") or "")
    security = "TrustedLaunch" if asked.lower() == "trustedlaunch" else "Standard"
    return compute_vms.image_error(
        world, str(image_id), location, str(record["vmSize"]), security=security
    )


def boots(world: World, version_id: str, agent_id: str) -> bool:
    """Whether a node from gallery image version `version_id` with node agent `agent_id`
    comes up: the agent matches the image (the catalogue's SKU for its Marketplace origin,
    else its OS family), the disk was deprovisioned, and no VM extension is baked in."""
    found = compute_facts.image_facts(world, version_id)
    if found is None:
        return False
    expected = catalog.agent_for(found.source)
    if expected is not None:
        agent_fits = expected.lower() == agent_id.lower()
    else:
        agent_fits = catalog.agent_os(agent_id) == found.os_type.lower()
    return agent_fits and found.deprovisioned and not found.extensions


def version_in_use(world: World, version_id: str) -> str | None:
    """Why gallery image version `version_id` cannot be deleted (a live pool uses it)."""
    from batchimage.sandbox.services.batch_data.models import pools

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
