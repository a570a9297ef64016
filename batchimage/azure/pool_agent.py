"""Which Batch node agent SKU a custom image needs, from the account's supported images.

    base = ImageBase.of(resolve_image_outputs)       # os_type + Marketplace publisher/offer/sku
    agent = resolve_node_agent(images, base, pool.node_agent_sku)   # "batch.node.ubuntu 24.04"

A gallery image built from a Marketplace image runs the agent Batch lists for that image
(publisher/offer/sku). An image from a VHD says only its OS type: the agent is then the
only one for that OS (Windows), or the spec must name it. A pinned `node_agent_sku` that
does not match the image's OS is refused before any pool is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchimage.azure.node_agents import SupportedImage, agents_for, match_marketplace
from batchimage.core.errors import PermanentAzureError

AUTO = "auto"


@dataclass(frozen=True)
class ImageBase:
    """What decides the node agent: the image's OS type and Marketplace origin (if any)."""

    os_type: str
    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None

    @classmethod
    def of(cls, outputs: Any) -> ImageBase:
        """From `resolve_image` outputs (or anything with those attributes)."""
        return cls(
            os_type=str(outputs.os_type).lower(),
            publisher=getattr(outputs, "publisher", None),
            offer=getattr(outputs, "offer", None),
            sku=getattr(outputs, "sku", None),
        )

    @property
    def urn(self) -> str | None:
        """`publisher:offer:sku` of a Marketplace base, else None."""
        if self.publisher and self.offer and self.sku:
            return f"{self.publisher}:{self.offer}:{self.sku}"
        return None


class NodeAgentError(PermanentAzureError):
    """No node agent SKU fits the image, or the pinned one does not match its OS."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code)


def resolve_node_agent(images: list[SupportedImage], base: ImageBase, pinned: str = AUTO) -> str:
    """The node agent SKU id for a pool on an image from `base`; raises NodeAgentError."""
    pinned = pinned or AUTO
    os_agents = agents_for(images, base.os_type)
    known = {i.node_agent_sku_id.lower(): i for i in images}
    if pinned != AUTO:
        found = known.get(pinned.lower())
        if found is None:
            raise NodeAgentError(
                f"node agent SKU '{pinned}' is not offered by this Batch account; "
                f"{base.os_type} agents: {', '.join(os_agents) or 'none'}",
                "NodeAgentSkuNotSupported",
            )
        if found.os_type != base.os_type:
            raise NodeAgentError(
                f"node agent SKU '{pinned}' is a {found.os_type} agent but the image is "
                f"{base.os_type}; set node_agent_sku: auto or one of: {', '.join(os_agents)}",
                "NodeAgentSkuMismatch",
            )
    urn = base.urn
    if urn is not None:
        assert base.publisher and base.offer and base.sku
        match = match_marketplace(images, base.publisher, base.offer, base.sku)
        if match is not None:
            if pinned != AUTO and pinned.lower() != match.node_agent_sku_id.lower():
                raise NodeAgentError(
                    f"the image is built from {urn}, which runs node agent "
                    f"'{match.node_agent_sku_id}', not '{pinned}'; set node_agent_sku: auto",
                    "NodeAgentSkuMismatch",
                )
            return match.node_agent_sku_id
        if pinned == AUTO:
            offered = [
                f"{i.publisher}:{i.offer}:{i.sku}" for i in images if i.os_type == base.os_type
            ]
            raise NodeAgentError(
                f"Batch lists no node agent for {urn}; build from a supported base image "
                f"({', '.join(offered) or 'none listed'}) or set node_agent_sku to one of: "
                f"{', '.join(os_agents) or 'none'}",
                "NodeAgentSkuNotFound",
            )
        return found_id(known, pinned)
    if pinned != AUTO:
        return found_id(known, pinned)
    if len(os_agents) == 1:
        return os_agents[0]
    raise NodeAgentError(
        f"an image from a VHD does not say which {base.os_type} distribution it runs; set "
        f"node_agent_sku to one of: {', '.join(os_agents) or 'none offered'}",
        "NodeAgentSkuNotFound",
    )


def found_id(known: dict[str, SupportedImage], pinned: str) -> str:
    """The account's spelling of a pinned agent SKU id."""
    return known[pinned.lower()].node_agent_sku_id
