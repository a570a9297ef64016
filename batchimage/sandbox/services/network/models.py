"""Microsoft.Network state and rules: virtual networks with subnets, network security
groups, public IPs, network interfaces, and who uses whom (computed from the NICs, so
back-references never go stale)."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import ApiError, bad_request
from batchimage.sandbox.context import Call, World

NS = "Microsoft.Network"
VNET = f"{NS}/virtualNetworks"
NSG = f"{NS}/networkSecurityGroups"
PIP = f"{NS}/publicIPAddresses"
NIC = f"{NS}/networkInterfaces"

DEFAULT_RULES = [
    ("AllowVnetInBound", "Inbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", "Inbound", "Allow", 65001, "AzureLoadBalancer", "*"),
    ("DenyAllInBound", "Inbound", "Deny", 65500, "*", "*"),
    ("AllowVnetOutBound", "Outbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", "Outbound", "Allow", 65001, "*", "Internet"),
    ("DenyAllOutBound", "Outbound", "Deny", 65500, "*", "*"),
]


def etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _props(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise bad_request(
            "InvalidRequestFormat", "Cannot parse the request: properties must be an object."
        )
    return dict(props)


def _network(prefix: str, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(prefix, strict=True)
    except ValueError as exc:
        raise bad_request(
            "InvalidAddressPrefixFormat",
            f"Address prefix {prefix} of {what} is not in a valid format.",
        ) from exc


def nics(world: World) -> list[dict[str, Any]]:
    return [r for r in arm.resources(world).values() if r.get("type") == NIC]


def nic_ip_configs(world: World) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(nic, ipConfiguration) for every NIC in the world."""
    return [(n, c) for n in nics(world) for c in n["properties"].get("ipConfigurations", [])]


def _ref(obj: dict[str, Any] | None) -> str:
    return str((obj or {}).get("id", "")).lower()


def subnet_users(world: World, subnet_id: str) -> list[str]:
    """Ids of the NIC ip configurations placed in `subnet_id`."""
    return [
        c["id"]
        for _, c in nic_ip_configs(world)
        if _ref(c["properties"].get("subnet")) == subnet_id.lower()
    ]


# -- virtual networks and subnets -------------------------------------------------------


def _subnet(
    vnet_id: str, item: dict[str, Any], space: list[Any], old: dict[str, Any] | None
) -> dict[str, Any]:
    name = item.get("name")
    if not name:
        raise bad_request("InvalidRequestFormat", "Cannot parse the request: a subnet has no name.")
    arm.GENERIC_NAME(name)
    props = _props(item)
    prefix = props.get("addressPrefix") or (props.get("addressPrefixes") or [None])[0]
    if not prefix:
        raise bad_request("NetcfgInvalidSubnet", f"Subnet '{name}' has no address prefix.")
    net = _network(prefix, f"subnet '{name}'")
    if space and not any(net.version == s.version and net.subnet_of(s) for s in space):
        raise bad_request(
            "NetcfgSubnetRangeOutsideVnet",
            f"Subnet '{name}' is not valid because its IP address range is outside the IP "
            "address range of virtual network.",
        )
    props["addressPrefix"] = str(net)
    props["provisioningState"] = "Succeeded"
    props.setdefault("privateEndpointNetworkPolicies", "Disabled")
    props.setdefault("privateLinkServiceNetworkPolicies", "Enabled")
    out = {
        "id": f"{vnet_id}/subnets/{name}",
        "name": name,
        "etag": etag(),
        "type": f"{VNET}/subnets",
        "properties": props,
    }
    if old is not None:
        out["id"] = old["id"]
    return out


def check_subnets(subnets: list[dict[str, Any]]) -> None:
    """400 NetcfgSubnetRangesOverlap when two subnets share addresses."""
    nets = [(s["name"], ipaddress.ip_network(s["properties"]["addressPrefix"])) for s in subnets]
    for i, (name_a, a) in enumerate(nets):
        for name_b, b in nets[i + 1 :]:
            if a.version == b.version and a.overlaps(b):
                raise bad_request(
                    "NetcfgSubnetRangesOverlap",
                    f"Subnet '{name_b}' is not valid because its IP address range overlaps with "
                    f"that of an existing subnet '{name_a}' in virtual network.",
                )


def build_vnet(call: Call, existing: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    props = _props(body)
    prefixes = (props.get("addressSpace") or {}).get("addressPrefixes") or []
    space = [_network(p, "the virtual network") for p in prefixes]
    vnet_id = existing["id"] if existing else _item_id(call, "virtualNetworks")
    old_subnets = {
        s["name"].lower(): s for s in (existing or {}).get("properties", {}).get("subnets", [])
    }
    subnets = [
        _subnet(vnet_id, item, space, old_subnets.get(str(item.get("name", "")).lower()))
        for item in props.get("subnets") or []
    ]
    check_subnets(subnets)
    kept = {s["name"].lower() for s in subnets}
    for name, old in old_subnets.items():
        if name not in kept and subnet_users(call.world, old["id"]):
            raise in_use_subnet(call.world, old)
    props["addressSpace"] = {"addressPrefixes": [str(s) for s in space]}
    props["subnets"] = subnets
    props.setdefault("virtualNetworkPeerings", [])
    props.setdefault("enableDdosProtection", False)
    props["resourceGuid"] = (existing or {}).get("properties", {}).get("resourceGuid") or str(
        uuid.uuid4()
    )
    return {"etag": etag(), "properties": props}


def _item_id(call: Call, type_name: str) -> str:
    p = call.params
    return arm.resource_id(p["subscription"], p["group"], NS, type_name, p["name"])


def in_use_subnet(world: World, subnet: dict[str, Any]) -> ApiError:
    users = subnet_users(world, subnet["id"])
    return bad_request(
        "InUseSubnetCannotBeDeleted",
        f"Subnet {subnet['name']} is in use by {users[0] if users else 'another resource'} and "
        "cannot be deleted. In order to delete the subnet, delete all the resources within "
        "the subnet.",
    )


def vnet_before_delete(call: Call, record: dict[str, Any]) -> None:
    for subnet in record["properties"].get("subnets", []):
        if subnet_users(call.world, subnet["id"]):
            raise in_use_subnet(call.world, subnet)


def render_vnet(world: World, out: dict[str, Any]) -> dict[str, Any]:
    for subnet in out["properties"].get("subnets", []):
        render_subnet(world, subnet)
    return out


def render_subnet(world: World, subnet: dict[str, Any]) -> dict[str, Any]:
    users = subnet_users(world, subnet["id"])
    if users:
        subnet["properties"]["ipConfigurations"] = [{"id": u} for u in users]
    else:
        subnet["properties"].pop("ipConfigurations", None)
    return subnet


def new_subnet(call: Call, vnet: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Validate and place subnet `call.params['subnet']` in `vnet` (returns the subnet)."""
    item = {**body, "name": call.params["subnet"]}
    space = [ipaddress.ip_network(p) for p in vnet["properties"]["addressSpace"]["addressPrefixes"]]
    subnets = vnet["properties"].setdefault("subnets", [])
    old = find_subnet(vnet, call.params["subnet"])
    subnet = _subnet(vnet["id"], item, space, old)
    others = [s for s in subnets if s is not old]
    check_subnets([*others, subnet])
    if old is not None:
        subnets[subnets.index(old)] = subnet
    else:
        subnets.append(subnet)
    return subnet


def find_subnet(vnet: dict[str, Any], name: str) -> dict[str, Any] | None:
    for subnet in vnet["properties"].get("subnets", []):
        if subnet["name"].lower() == name.lower():
            result: dict[str, Any] = subnet
            return result
    return None


def provision_subnet(world: World, item: dict[str, Any]) -> str:
    """Make sure subnet `item["name"]` (prefix `address_prefix`, default 10.0.0.0/24) exists
    in virtual network `item["vnet"]` (created with `vnet_prefix`, default the /16 around it)."""
    prefix = _network(item.get("address_prefix", "10.0.0.0/24"), f"subnet '{item['name']}'")
    vnet_id = arm.resource_id(
        item["subscription"], item["group"], NS, "virtualNetworks", item["vnet"]
    )
    vnet = arm.get(world, vnet_id)
    if vnet is None:
        space = item.get("vnet_prefix") or str(
            prefix.supernet(new_prefix=min(16, prefix.prefixlen))
        )
        props = {
            "addressSpace": {"addressPrefixes": [space]},
            "subnets": [],
            "virtualNetworkPeerings": [],
            "enableDdosProtection": False,
            "resourceGuid": str(uuid.uuid4()),
        }
        vnet = arm.put_ready(
            world,
            item["group"],
            NS,
            "virtualNetworks",
            item["vnet"],
            {"etag": etag(), "properties": props},
            subscription=item["subscription"],
            location=item["location"],
        )
    subnet = find_subnet(vnet, item["name"])
    if subnet is None:
        space = [
            ipaddress.ip_network(p) for p in vnet["properties"]["addressSpace"]["addressPrefixes"]
        ]
        subnet = _subnet(
            vnet["id"],
            {"name": item["name"], "properties": {"addressPrefix": str(prefix)}},
            space,
            None,
        )
        check_subnets([*vnet["properties"]["subnets"], subnet])
        vnet["properties"]["subnets"].append(subnet)
        world.store.touch()
    return str(subnet["id"])


# -- network security groups ------------------------------------------------------------


def _rule(nsg_id: str, rule: dict[str, Any], collection: str) -> dict[str, Any]:
    name = rule.get("name")
    if not name:
        raise bad_request(
            "InvalidRequestFormat", "Cannot parse the request: a security rule has no name."
        )
    props = _props(rule)
    for key in ("protocol", "access", "direction"):
        if not props.get(key):
            raise bad_request(
                "SecurityRuleParameterMissing",
                f"Security rule {name} is missing the required parameter {key}.",
            )
    props["provisioningState"] = "Succeeded"
    return {
        "id": f"{nsg_id}/{collection}/{name}",
        "name": name,
        "etag": etag(),
        "type": f"{NSG}/{collection}",
        "properties": props,
    }


def build_nsg(call: Call, existing: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    props = _props(body)
    nsg_id = existing["id"] if existing else _item_id(call, "networkSecurityGroups")
    props["securityRules"] = [
        _rule(nsg_id, r, "securityRules") for r in props.get("securityRules") or []
    ]
    props["defaultSecurityRules"] = [
        _rule(
            nsg_id,
            {
                "name": name,
                "properties": {
                    "description": name,
                    "protocol": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "sourceAddressPrefix": src,
                    "destinationAddressPrefix": dst,
                    "access": access,
                    "priority": priority,
                    "direction": direction,
                },
            },
            "defaultSecurityRules",
        )
        for name, direction, access, priority, src, dst in DEFAULT_RULES
    ]
    props["resourceGuid"] = (existing or {}).get("properties", {}).get("resourceGuid") or str(
        uuid.uuid4()
    )
    return {"etag": etag(), "properties": props}


def nsg_users(world: World, nsg_id: str) -> tuple[list[str], list[str]]:
    """(NIC ids, subnet ids) that use NSG `nsg_id`."""
    key = nsg_id.lower()
    nic_ids = [
        n["id"] for n in nics(world) if _ref(n["properties"].get("networkSecurityGroup")) == key
    ]
    subnet_ids = [
        s["id"]
        for r in arm.resources(world).values()
        if r.get("type") == VNET
        for s in r["properties"].get("subnets", [])
        if _ref(s["properties"].get("networkSecurityGroup")) == key
    ]
    return nic_ids, subnet_ids


def render_nsg(world: World, out: dict[str, Any]) -> dict[str, Any]:
    nic_ids, subnet_ids = nsg_users(world, out["id"])
    if nic_ids:
        out["properties"]["networkInterfaces"] = [{"id": i} for i in nic_ids]
    if subnet_ids:
        out["properties"]["subnets"] = [{"id": i} for i in subnet_ids]
    return out


def nsg_before_delete(call: Call, record: dict[str, Any]) -> None:
    nic_ids, subnet_ids = nsg_users(call.world, record["id"])
    if nic_ids or subnet_ids:
        raise bad_request(
            "InUseNetworkSecurityGroupCannotBeDeleted",
            f"Network security group {record['id']} cannot be deleted because it is in use by "
            f"the following resources: {', '.join(nic_ids + subnet_ids)}. In order to delete the "
            "Network security group, remove the association with the resource(s).",
        )


# -- public IP addresses ----------------------------------------------------------------


def build_public_ip(
    call: Call, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    props = _props(body)
    sku = dict(body.get("sku") or (existing or {}).get("sku") or {"name": "Standard"})
    sku.setdefault("tier", "Regional")
    default_method = "Static" if sku["name"] == "Standard" else "Dynamic"
    props.setdefault("publicIPAllocationMethod", default_method)
    if sku["name"] == "Standard" and props["publicIPAllocationMethod"] != "Static":
        p = call.params
        pip_id = arm.resource_id(
            p["subscription"], p["group"], "Microsoft.Network", "publicIPAddresses", p["name"]
        )
        raise bad_request(
            "StandardSkuPublicIPAddressesMustBeStatic",
            f"Standard sku publicIp {pip_id} must have AllocationMethod set to Static.",
        )
    props.setdefault("publicIPAddressVersion", "IPv4")
    props.setdefault("idleTimeoutInMinutes", 4)
    props["ipTags"] = props.get("ipTags") or []
    old = (existing or {}).get("properties", {})
    if "ipAddress" in old:
        props["ipAddress"] = old["ipAddress"]
    elif props["publicIPAllocationMethod"] == "Static":
        n = int(uuid.uuid4().int % 65000) + 256
        props["ipAddress"] = f"20.{(n >> 8) % 256}.{n % 256}.{(n * 7) % 250 + 4}"
    props["resourceGuid"] = old.get("resourceGuid") or str(uuid.uuid4())
    return {"etag": etag(), "sku": sku, "properties": props}


def public_ip_user(world: World, pip_id: str) -> str | None:
    for _, config in nic_ip_configs(world):
        if _ref(config["properties"].get("publicIPAddress")) == pip_id.lower():
            return str(config["id"])
    return None


def render_public_ip(world: World, out: dict[str, Any]) -> dict[str, Any]:
    user = public_ip_user(world, out["id"])
    if user:
        out["properties"]["ipConfiguration"] = {"id": user}
    return out


def public_ip_before_delete(call: Call, record: dict[str, Any]) -> None:
    user = public_ip_user(call.world, record["id"])
    if user:
        raise bad_request(
            "PublicIPAddressCannotBeDeleted",
            f"Public IP address {record['id']} can not be deleted since it is still allocated to "
            f"resource {user}. In order to delete the public IP, disassociate/detach the Public IP "
            "address from the resource.",
        )


# -- network interfaces -----------------------------------------------------------------


def _referenced(call: Call, ref_id: str, owner: str) -> dict[str, Any]:
    """The resource (or subnet) `ref_id`; 400 InvalidResourceReference when missing."""
    lowered = ref_id.lower()
    if "/subnets/" in lowered:
        vnet_id, _, name = ref_id.rpartition("/subnets/")
        vnet = arm.get(call.world, vnet_id)
        found = find_subnet(vnet, name) if vnet else None
    else:
        found = arm.get(call.world, ref_id)
    if found is None:
        raise bad_request(
            "InvalidResourceReference",
            f"Resource {ref_id} referenced by resource {owner} was not found. Please make sure "
            "that the referenced resource exists, and that both resources are in the same region.",
        )
    return found


def _next_ip(call: Call, subnet: dict[str, Any], taken: set[str]) -> str:
    net = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
    used = taken | {
        c["properties"].get("privateIPAddress", "")
        for _, c in nic_ip_configs(call.world)
        if _ref(c["properties"].get("subnet")) == subnet["id"].lower()
    }
    for host in list(net.hosts())[3:]:  # Azure reserves the first addresses of a subnet
        if str(host) not in used:
            return str(host)
    raise bad_request("SubnetIsFull", f"Subnet {subnet['name']} has no free IP address.")


def build_nic(call: Call, existing: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    props = _props(body)
    nic_id = existing["id"] if existing else _item_id(call, "networkInterfaces")
    configs = props.get("ipConfigurations") or []
    if not configs:
        raise bad_request(
            "InvalidRequestFormat",
            f"Network interface {nic_id} must have at least one IP configuration.",
        )
    old = {
        c["name"].lower(): c
        for c in (existing or {}).get("properties", {}).get("ipConfigurations", [])
    }
    taken: set[str] = set()
    out_configs: list[dict[str, Any]] = []
    for i, item in enumerate(configs):
        name = str(item.get("name") or f"ipconfig{i + 1}")
        cprops = _props(item)
        subnet_ref = cprops.get("subnet") or (
            out_configs[0]["properties"]["subnet"] if out_configs else None
        )
        if not subnet_ref or not subnet_ref.get("id"):
            raise bad_request(
                "InvalidRequestFormat",
                f"IP configuration {nic_id}/ipConfigurations/{name} must reference a subnet.",
            )
        subnet = _referenced(call, subnet_ref["id"], nic_id)
        cprops["subnet"] = {"id": subnet["id"]}
        if cprops.get("publicIPAddress"):
            pip = _referenced(call, cprops["publicIPAddress"]["id"], nic_id)
            user = public_ip_user(call.world, pip["id"])
            if user and not user.lower().startswith(nic_id.lower() + "/"):
                raise bad_request(
                    "PublicIPAddressInUse",
                    f"Resource {pip['id']} is already in use by {user}.",
                )
            cprops["publicIPAddress"] = {"id": pip["id"]}
        previous = old.get(name.lower(), {}).get("properties", {})
        if cprops.get("privateIPAllocationMethod") == "Static" and cprops.get("privateIPAddress"):
            address = cprops["privateIPAddress"]
        else:
            address = previous.get("privateIPAddress") or _next_ip(call, subnet, taken)
            cprops["privateIPAllocationMethod"] = "Dynamic"
        taken.add(address)
        cprops["privateIPAddress"] = address
        cprops.setdefault("privateIPAddressVersion", "IPv4")
        cprops["primary"] = bool(cprops.get("primary", i == 0))
        cprops["provisioningState"] = "Succeeded"
        out_configs.append(
            {
                "id": f"{nic_id}/ipConfigurations/{name}",
                "name": name,
                "etag": etag(),
                "type": f"{NIC}/ipConfigurations",
                "properties": cprops,
            }
        )
    props["ipConfigurations"] = out_configs
    if props.get("networkSecurityGroup"):
        nsg = _referenced(call, props["networkSecurityGroup"]["id"], nic_id)
        props["networkSecurityGroup"] = {"id": nsg["id"]}
    dns = props.get("dnsSettings") or {}
    props["dnsSettings"] = {"dnsServers": dns.get("dnsServers", []), "appliedDnsServers": []}
    props.setdefault("enableAcceleratedNetworking", False)
    props.setdefault("enableIPForwarding", False)
    props.setdefault("disableTcpStateTracking", False)
    props.setdefault("vnetEncryptionSupported", False)
    props.setdefault("nicType", "Standard")
    kept = (existing or {}).get("properties", {})
    for key in ("virtualMachine", "macAddress"):
        if key in kept:
            props[key] = kept[key]
    props["resourceGuid"] = kept.get("resourceGuid") or str(uuid.uuid4())
    return {"etag": etag(), "properties": props}


def nic_before_delete(call: Call, record: dict[str, Any]) -> None:
    vm = record["properties"].get("virtualMachine")
    if vm:
        raise bad_request(
            "NicInUse",
            f"Network Interface {record['id']} is used by existing resource {vm['id']}. In order "
            "to delete the network interface, it must be dissociated from the resource. To learn "
            "more, see aka.ms/deletenic.",
        )
