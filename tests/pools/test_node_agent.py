"""Node agent SKU resolution against the sandbox Batch account's supported images (real
BatchClient): Ubuntu, AlmaLinux and Windows bases, VHD images, and the refusals (a pinned
SKU that does not match the image's OS, an unsupported base, an ambiguous VHD)."""

from __future__ import annotations

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.azure.node_agents import SupportedImage, supported_images
from batchimage.azure.pool_agent import ImageBase, NodeAgentError, resolve_node_agent
from batchimage.sandbox.connection import Connection

UBUNTU = ImageBase("linux", "Canonical", "ubuntu-24_04-lts", "server")
ALMA = ImageBase("linux", "almalinux", "almalinux-x86_64", "9-gen2")
WINDOWS = ImageBase("windows", "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-g2")


@pytest.fixture(scope="module")
def images(clients: AzureClients, sandbox: Connection) -> list[SupportedImage]:
    return supported_images(clients, sandbox.batch_endpoint(sandbox.batch_account))


@pytest.mark.parametrize(
    ("base", "agent"),
    [
        (UBUNTU, "batch.node.ubuntu 24.04"),
        (ALMA, "batch.node.el 9"),
        (WINDOWS, "batch.node.windows amd64"),
        (ImageBase("windows"), "batch.node.windows amd64"),  # a VHD: the only Windows agent
    ],
)
def test_agent_from_the_base_image(
    images: list[SupportedImage], base: ImageBase, agent: str
) -> None:
    assert resolve_node_agent(images, base) == agent
    assert resolve_node_agent(images, base, agent.upper()) == agent  # pinned, any case


def test_pinned_agent_of_another_distribution_is_refused(images: list[SupportedImage]) -> None:
    with pytest.raises(NodeAgentError) as refused:
        resolve_node_agent(images, UBUNTU, "batch.node.el 9")
    assert refused.value.code == "NodeAgentSkuMismatch"
    assert "Canonical:ubuntu-24_04-lts:server" in refused.value.message
    assert "'batch.node.ubuntu 24.04', not 'batch.node.el 9'" in refused.value.message
    assert "node_agent_sku: auto" in refused.value.message


def test_pinned_agent_of_another_os_is_refused(images: list[SupportedImage]) -> None:
    with pytest.raises(NodeAgentError) as other_os:
        resolve_node_agent(images, ImageBase("linux"), "batch.node.windows amd64")
    assert "is a windows agent but the image is linux" in other_os.value.message
    with pytest.raises(NodeAgentError) as refused:
        resolve_node_agent(images, WINDOWS, "batch.node.ubuntu 24.04")
    assert refused.value.code == "NodeAgentSkuMismatch"


def test_unknown_agent_and_unsupported_base(images: list[SupportedImage]) -> None:
    with pytest.raises(NodeAgentError) as unknown:
        resolve_node_agent(images, UBUNTU, "batch.node.plan9")
    message = unknown.value.message
    assert "not offered" in message
    assert "batch.node.ubuntu 24.04" in message  # the Linux agents are listed
    odd = ImageBase("linux", "contoso", "custom-linux", "1")
    with pytest.raises(NodeAgentError) as refused:
        resolve_node_agent(images, odd)
    assert refused.value.code == "NodeAgentSkuNotFound"
    assert "almalinux:almalinux-x86_64:9-gen2" in refused.value.message
    # With a pinned agent of the right OS the user takes responsibility for the match.
    assert resolve_node_agent(images, odd, "batch.node.el 9") == "batch.node.el 9"


def test_linux_vhd_needs_a_pinned_agent(images: list[SupportedImage]) -> None:
    with pytest.raises(NodeAgentError) as refused:
        resolve_node_agent(images, ImageBase("linux"))
    assert "set node_agent_sku to one of" in refused.value.message
    assert "batch.node.el 9" in refused.value.message
    assert resolve_node_agent(images, ImageBase("linux"), "batch.node.el 9") == "batch.node.el 9"
