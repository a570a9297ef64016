"""Why a pool's VMs or nodes fail on its image, from facts batchimage reads itself (Batch
publishes no code for most of these causes, so no diagnosis keys on one).

    image = BuiltImage(version_id, base, generalized_with="waagent -deprovision+user -force")
    unusable_causes(clients, pools, pool, image)     # node agent, osState, how it was generalized
    allocation_causes(clients, pools, pool, image)   # Hyper-V generation, image in the region

Unusable nodes without node errors are nodes Batch cannot communicate with ("Check for
pool and node errors"): an image that is not properly prepared (not deprovisioned, VM
extensions, a node agent SKU that does not align with it) or a network that blocks Batch.
A resize error AllocationFailed relays the provider's error: for a gallery image pool,
most often a VM size that cannot boot the image's Hyper-V generation, or an image that
is not (or no longer) replicated to the account's region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchimage.azure.arm import get_or_none, text
from batchimage.azure.batch_quota import read_sizes
from batchimage.azure.ids import parse_id
from batchimage.azure.pool_agent import ImageBase, NodeAgentError, resolve_node_agent
from batchimage.core.errors import AzureError

if TYPE_CHECKING:
    from batchimage.azure.batch_pools import BatchPools
    from batchimage.azure.clients import AzureClients

NETWORK_CAUSE = (
    "or the pool's network keeps Batch from its nodes (NSG rules on the ports Batch needs, "
    "no outbound access to Azure Storage, a DNS server that cannot resolve Azure Storage)"
)


@dataclass(frozen=True)
class BuiltImage:
    """The image a pool runs, as batchimage made it: the gallery image version, its base,
    and how the build VM's guest was generalized (None: a VHD registered as it is)."""

    version_id: str
    base: ImageBase
    generalized_with: str | None
    custom_command: bool = False  # the spec's own generalize.command, not batchimage's

    @property
    def definition_id(self) -> str:
        return self.version_id.rsplit("/versions/", 1)[0]


def _read(clients: AzureClients, resource_id: str, depth: int, **kwargs: Any) -> Any | None:
    """A gallery image definition (`depth` 2: gallery, definition) or version (3) by id;
    None when it is gone."""
    parts = parse_id(resource_id)
    names = parts.get("names", "").split("/")
    if len(names) != depth:
        return None
    compute = clients.compute
    read = compute.gallery_images.get if depth == 2 else compute.gallery_image_versions.get
    what = "image definition" if depth == 2 else "image version"
    return get_or_none(f"read {what} {names[-1]}", read, parts.get("group", ""), *names, **kwargs)


def _definition(clients: AzureClients, image: BuiltImage) -> Any | None:
    """The gallery image definition of the pool's image (None when it is gone)."""
    return _read(clients, image.definition_id, 2)


def _version(clients: AzureClients, image: BuiltImage) -> Any | None:
    """The gallery image version the pool runs, with its replication status."""
    return _read(clients, image.version_id, 3, expand="ReplicationStatus")


def _agent_cause(pools: BatchPools, pool: Any, image: BuiltImage) -> str | None:
    """The pool's node agent SKU against the one Batch lists for the image's base."""
    agent = text(getattr(pool.virtual_machine_configuration, "node_agent_sku_id", ""))
    try:
        wanted = resolve_node_agent(pools.supported_images(), image.base)
    except NodeAgentError:
        return (
            f"batchimage cannot tell which node agent the image needs ({image.base.os_type}, "
            f"no Marketplace origin): check that node agent SKU '{agent}' is for the "
            "image's distribution (pools[].node_agent_sku)"
        )
    except AzureError as err:
        return f"could not read the account's supported images to check the node agent: {err}"
    if wanted.lower() != agent.lower():
        return (
            f"the pool's node agent SKU '{agent}' is not the one Batch lists for the image "
            f"({image.base.urn or image.base.os_type}: '{wanted}'); the node agent must "
            "align with the image for the node to start: set node_agent_sku: auto"
        )
    return None


def _generalize_cause(image: BuiltImage) -> str:
    """How the image's guest was generalized, and what that means for its nodes."""
    if image.generalized_with is None:
        return (
            "the image is a VHD registered as it is: it must have been generalized "
            "(waagent -deprovision+user, or sysprep /generalize) before it was uploaded, "
            "with no VM extensions installed"
        )
    if image.custom_command:
        return (
            f"the build VM was generalized with the spec's own command "
            f"({image.generalized_with!r}) instead of batchimage's deprovision: if it did "
            "not deprovision the guest, no VM can be provisioned from the image; remove "
            "image.generalize.command (or make it deprovision), then run apply again (a new "
            "image version)"
        )
    return (
        f"the image was deprovisioned ({image.generalized_with}) and its VM extensions "
        "removed before capture"
    )


def unusable_causes(
    clients: AzureClients, pools: BatchPools, pool: Any, image: BuiltImage
) -> list[str]:
    """What batchimage finds about unusable nodes that report no errors: causes first."""
    found: list[str] = []
    agent = _agent_cause(pools, pool, image)
    if agent:
        found.append(agent)
    try:
        definition = _definition(clients, image)
    except AzureError:
        definition = None
    state = text(getattr(definition, "os_state", "")) if definition is not None else ""
    if state and state.lower() != "generalized":
        found.append(
            f"the image definition's osState is {state}: Batch takes only generalized images"
        )
    generalized = _generalize_cause(image)
    if image.generalized_with is None or image.custom_command:
        found.append(generalized)
    found.append(NETWORK_CAUSE if found else NETWORK_CAUSE.removeprefix("or "))
    if image.generalized_with is not None and not image.custom_command:
        found.append(f"(checked: {generalized})")
    return found


def allocation_causes(
    clients: AzureClients, pools: BatchPools, pool: Any, image: BuiltImage
) -> list[str]:
    """What batchimage finds about VMs Azure would not create for the pool: the VM size
    against the image's Hyper-V generation, and the image in the account's region."""
    region = pools.account.location
    size = str(pool.vm_size)
    found: list[str] = []
    try:
        version = _version(clients, image)
        definition = _definition(clients, image)
    except AzureError as err:
        return [f"could not read the pool's image to check it: {err}"]
    if version is None or definition is None:
        return [
            f"the pool's image version {image.version_id} no longer exists: run apply again "
            "to capture a new version (and roll the pool onto it)"
        ]
    regions = _replicated(version)
    if regions is not None and region not in regions:
        found.append(
            f"the image version is not replicated to {region}, the Batch account's region "
            f"(replicas: {', '.join(sorted(regions)) or 'none'}): add the region to "
            "image.capture.gallery.replicas and run apply again"
        )
    generation = text(getattr(definition, "hyper_v_generation", "")).upper()
    try:
        offered = read_sizes(clients, region).get(size.lower())
    except AzureError:
        offered = None
    boots = offered.generations if offered is not None else ()
    if generation and boots and generation not in boots:
        found.append(
            f"{size} boots Hyper-V generation {', '.join(boots)} only, and the image is "
            f"{generation}: pick a vm_size that supports {generation} (or build a "
            f"{', '.join(boots)} image)"
        )
    return found


def _replicated(version: Any) -> set[str] | None:
    """Regions where the version's replication completed (None: status not reported)."""
    status = getattr(version, "replication_status", None)
    summary = getattr(status, "summary", None)
    if not summary:
        return None
    return {
        text(s.region).replace(" ", "").lower()
        for s in summary
        if text(getattr(s, "state", "")).lower() == "completed"
    }
