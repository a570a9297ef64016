"""Microsoft.Network routes: the four tracked types plus subnets."""

from __future__ import annotations

from batchimage.sandbox.arm import ResourceType
from batchimage.sandbox.routing import Route
from batchimage.sandbox.services.network import models
from batchimage.sandbox.services.network import responses as r

VIRTUAL_NETWORKS = ResourceType(
    models.NS,
    "virtualNetworks",
    "VirtualNetworks",
    models.build_vnet,
    "network",
    create_state="Updating",
    before_delete=models.vnet_before_delete,
    render=models.render_vnet,
)
NETWORK_SECURITY_GROUPS = ResourceType(
    models.NS,
    "networkSecurityGroups",
    "NetworkSecurityGroups",
    models.build_nsg,
    "network",
    create_state="Updating",
    before_delete=models.nsg_before_delete,
    render=models.render_nsg,
)
PUBLIC_IP_ADDRESSES = ResourceType(
    models.NS,
    "publicIPAddresses",
    "PublicIPAddresses",
    models.build_public_ip,
    "network",
    create_state="Updating",
    before_delete=models.public_ip_before_delete,
    render=models.render_public_ip,
)
NETWORK_INTERFACES = ResourceType(
    models.NS,
    "networkInterfaces",
    "NetworkInterfaces",
    models.build_nic,
    "network",
    create_state="Updating",
    created_at_once=True,
    before_delete=models.nic_before_delete,
)

SUBNET = VIRTUAL_NETWORKS.item_path + "/subnets/{subnet}"
ROUTES = [
    Route("GET", SUBNET, r.get_subnet, "Subnets_Get"),
    Route("PUT", SUBNET, r.put_subnet, "Subnets_CreateOrUpdate"),
    Route("DELETE", SUBNET, r.delete_subnet, "Subnets_Delete"),
    Route("GET", VIRTUAL_NETWORKS.item_path + "/subnets", r.list_subnets, "Subnets_List"),
    *VIRTUAL_NETWORKS.routes(),
    *NETWORK_SECURITY_GROUPS.routes(),
    *PUBLIC_IP_ADDRESSES.routes(),
    *NETWORK_INTERFACES.routes(),
]
