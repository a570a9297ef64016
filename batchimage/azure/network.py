"""The build network's Azure operations: read an NSG, VNet, subnet, NIC or public IP (None
when absent), and write one (a PUT, waited for) with the body Azure takes.

    nsg = write_nsg(calls, "rg", "demo-nsg", location="eastus", tags=tags)
    write_vnet(calls, "rg", "demo-vnet", location=..., tags=..., space="10.0.0.0/24",
               subnet="build", nsg_id=nsg.id)
    nic = read_nic(calls, "rg", "demo-nic")      # NetworkInterface, or None

Every failure leaves as ours (`batchimage.azure.errors`), naming the operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from batchimage.azure.arm import begin_and_wait, get_or_none, put_and_watch

# Seconds between reads of an NSG or VNet being written (Azure: a few seconds to make one,
# yet 10 s between polls of its operation).
WATCH_S = 2.0

if TYPE_CHECKING:
    from azure.mgmt.network.models import (
        NetworkInterface,
        NetworkSecurityGroup,
        PublicIPAddress,
        Subnet,
        VirtualNetwork,
    )

    from batchimage.azure.calls import Calls


def read_nsg(calls: Calls, group: str, name: str) -> NetworkSecurityGroup | None:
    """Network security group `name`, or None."""
    ops = calls.clients.network.network_security_groups
    return get_or_none(f"read NSG {name}", ops.get, group, name)


def read_vnet(calls: Calls, group: str, name: str) -> VirtualNetwork | None:
    """Virtual network `name` (with its subnets), or None."""
    ops = calls.clients.network.virtual_networks
    return get_or_none(f"read VNet {name}", ops.get, group, name)


def read_subnet(calls: Calls, group: str, vnet: str, name: str) -> Subnet | None:
    """Subnet `name` of VNet `vnet`, or None."""
    ops = calls.clients.network.subnets
    return get_or_none(f"read subnet {name}", ops.get, group, vnet, name)


def read_nic(calls: Calls, group: str, name: str) -> NetworkInterface | None:
    """Network interface `name`, or None."""
    ops = calls.clients.network.network_interfaces
    return get_or_none(f"read NIC {name}", ops.get, group, name)


def read_public_ip(calls: Calls, group: str, name: str) -> PublicIPAddress | None:
    """Public IP address `name`, or None."""
    ops = calls.clients.network.public_ip_addresses
    return get_or_none(f"read public IP {name}", ops.get, group, name)


def write_nsg(
    calls: Calls, group: str, name: str, *, location: str, tags: Mapping[str, str]
) -> NetworkSecurityGroup:
    """NSG `name` with no rules of its own (Azure's defaults: no inbound from the internet)."""
    body = {"location": location, "tags": dict(tags), "properties": {"securityRules": []}}
    ops = calls.clients.network.network_security_groups
    return _put_watched(calls, f"NSG {name}", ops, group, name, body)


def write_vnet(
    calls: Calls,
    group: str,
    name: str,
    *,
    location: str,
    tags: Mapping[str, str],
    space: str,
    subnet: str,
    nsg_id: str,
) -> VirtualNetwork:
    """VNet `name` over address space `space`, with one subnet `subnet` spanning it behind
    NSG `nsg_id`, with default outbound access (package installs; no inbound path)."""
    body = {
        "location": location,
        "tags": dict(tags),
        "properties": {
            "addressSpace": {"addressPrefixes": [space]},
            "subnets": [
                {
                    "name": subnet,
                    "properties": {
                        "addressPrefix": space,
                        "networkSecurityGroup": {"id": nsg_id},
                        "defaultOutboundAccess": True,
                    },
                }
            ],
        },
    }
    ops = calls.clients.network.virtual_networks
    return _put_watched(calls, f"VNet {name}", ops, group, name, body)


def write_public_ip(
    calls: Calls, group: str, name: str, *, location: str, tags: Mapping[str, str]
) -> PublicIPAddress:
    """A static Standard public IP `name`."""
    body = {
        "location": location,
        "tags": dict(tags),
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }
    ops = calls.clients.network.public_ip_addresses
    return _put(calls, f"public IP {name}", ops.begin_create_or_update, group, name, body)


def write_nic(
    calls: Calls,
    group: str,
    name: str,
    *,
    location: str,
    tags: Mapping[str, str],
    subnet_id: str,
    public_ip_id: str | None = None,
) -> NetworkInterface:
    """NIC `name` in subnet `subnet_id` with a dynamic private IP (and the public IP
    `public_ip_id` when given)."""
    ip_config: dict[str, Any] = {
        "subnet": {"id": subnet_id},
        "privateIPAllocationMethod": "Dynamic",
    }
    if public_ip_id:
        ip_config["publicIPAddress"] = {"id": public_ip_id}
    body = {
        "location": location,
        "tags": dict(tags),
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}]},
    }
    ops = calls.clients.network.network_interfaces
    return _put(calls, f"NIC {name}", ops.begin_create_or_update, group, name, body)


def _put_watched(calls: Calls, what: str, ops: Any, group: str, name: str, body: Any) -> Any:
    """PUT `body` as `what` with `ops` (an NSG's or VNet's operations), and wait until it
    reads Succeeded or its operation ends (`put_and_watch`)."""
    return put_and_watch(
        calls,
        f"create {what}",
        what,
        ops.begin_create_or_update,
        lambda: get_or_none(f"read {what}", ops.get, group, name),
        group,
        name,
        body,
        every_s=WATCH_S,
    )


def _put(calls: Calls, what: str, start: Any, group: str, name: str, body: Any) -> Any:
    """PUT `body` as `what` and wait for it."""
    return begin_and_wait(calls, f"create {what}", what, start, group, name, body)
