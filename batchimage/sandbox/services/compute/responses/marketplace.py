"""Marketplace images (publishers, offers, SKUs, versions, one version's properties),
usages (vCPU quota per region) and resource SKUs, from the sandbox's catalogues (a SKU's
versions: the catalogue's and those published since, `published.py`)."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import not_found
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.compute.models import catalog, deprecation, published, quota

LOCATION = "/subscriptions/{subscription}/providers/Microsoft.Compute/locations/{location}"
PUBLISHERS = LOCATION + "/publishers"
OFFERS = PUBLISHERS + "/{publisher}/artifacttypes/vmimage/offers"
SKUS = OFFERS + "/{offer}/skus"
VERSIONS = SKUS + "/{sku}/versions"


def _not_found() -> Exception:
    return not_found("NotFound", "Artifact: VMImage was not found.")


def _location(call: Call) -> str:
    arm.check_subscription(call)
    location = arm.norm_location(call.params["location"])
    if not catalog.offered_in(location):
        raise _not_found()
    return location


def _base(call: Call, location: str) -> str:
    sub = call.params["subscription"]
    return f"/Subscriptions/{sub}/Providers/Microsoft.Compute/Locations/{location}"


def _items(names: list[str], location: str, prefix: str) -> list[dict[str, Any]]:
    return [{"name": n, "location": location, "id": f"{prefix}/{n}"} for n in names]


def list_publishers(call: Call) -> Reply:
    location = _location(call)
    return Reply(200, _items(catalog.publishers(), location, _base(call, location) + "/Publishers"))


def list_offers(call: Call) -> Reply:
    location = _location(call)
    publisher = call.params["publisher"]
    found = catalog.offers(publisher)
    if not found:
        raise _not_found()
    prefix = f"{_base(call, location)}/Publishers/{publisher}/ArtifactTypes/VMImage/Offers"
    return Reply(200, _items(found, location, prefix))


def list_skus(call: Call) -> Reply:
    location = _location(call)
    p = call.params
    found = catalog.skus(p["publisher"], p["offer"])
    if not found:
        raise _not_found()
    prefix = (
        f"{_base(call, location)}/Publishers/{p['publisher']}/ArtifactTypes/VMImage/Offers/"
        f"{p['offer']}/Skus"
    )
    return Reply(200, _items(found, location, prefix))


def _versions_prefix(call: Call, location: str) -> str:
    p = call.params
    return (
        f"{_base(call, location)}/Publishers/{p['publisher']}/ArtifactTypes/VMImage/Offers/"
        f"{p['offer']}/Skus/{p['sku']}/Versions"
    )


def list_versions(call: Call) -> Reply:
    location = _location(call)
    p = call.params
    found = published.versions(call.world, p["publisher"], p["offer"], p["sku"])
    if not found:
        raise _not_found()
    if (call.arg("$orderby") or "").lower().startswith("name desc"):
        found = list(reversed(found))
    top = call.arg("$top")
    if top:
        found = found[: int(top)]
    items = _items(found, location, _versions_prefix(call, location))
    if (call.arg("$expand") or "").lower() == "properties":
        items = [{**i, "properties": _properties(call, i["name"])} for i in items]
    return Reply(200, items)


def _properties(call: Call, version: str) -> dict[str, Any]:
    p = call.params
    image = published.find(call.world, p["publisher"], p["offer"], p["sku"], version)
    if image is None:
        raise _not_found()
    data = image.data
    props: dict[str, Any] = {
        "osDiskImage": {
            "operatingSystem": data["os_type"],
            "sizeInGb": data["disk_size_gb"],
        },
        "dataDiskImages": [],
        "automaticOSUpgradeProperties": {"automaticOSUpgradeSupported": False},
        "hyperVGeneration": data["hyper_v_generation"],
        "disallowed": {"vmDiskType": catalog.disallowed_disk_type(data)},
        "features": list(data.get("features", [])),
        "architecture": data["architecture"],
        "imageDeprecationStatus": deprecation.status(
            call.world, image.publisher, image.offer, image.sku, image.version
        ),
    }
    if image.plan:
        props["plan"] = dict(image.plan)
    return props


def get_image(call: Call) -> Reply:
    location = _location(call)
    version = call.params["version"]
    props = _properties(call, version)
    if props["imageDeprecationStatus"]["imageState"] == "Deprecated":
        p = call.params
        raise deprecation.read_refused(p["publisher"], p["offer"], p["sku"], version)
    return Reply(
        200,
        {
            "name": version,
            "location": location,
            "id": f"{_versions_prefix(call, location)}/{version}",
            "properties": props,
        },
    )


def list_usages(call: Call) -> Reply:
    arm.check_subscription(call)
    location = arm.norm_location(call.params["location"])
    return Reply(200, {"value": quota.usages(call.world, call.params["subscription"], location)})


def _sku(size: catalog.VmSize, locations: list[str]) -> dict[str, Any]:
    memory = f"{size.memory_gb:g}"
    return {
        "resourceType": "virtualMachines",
        "name": size.name,
        "tier": "Standard",
        "size": size.name.removeprefix("Standard_"),
        "family": size.family,
        "locations": locations,
        "locationInfo": [
            {"location": loc, "zones": ["1", "2", "3"], "zoneDetails": []} for loc in locations
        ],
        "capabilities": [
            {"name": "vCPUs", "value": str(size.vcpus)},
            {"name": "vCPUsAvailable", "value": str(size.vcpus)},
            {"name": "MemoryGB", "value": memory},
            {"name": "HyperVGenerations", "value": size.hyper_v_generations},
            {"name": "PremiumIO", "value": str(size.premium_io)},
            {"name": "CpuArchitectureType", "value": "x64"},
            {"name": "MaxResourceVolumeMB", "value": str(size.vcpus * 16384)},
        ],
        "restrictions": [],
    }


def list_resource_skus(call: Call) -> Reply:
    """`/providers/Microsoft.Compute/skus`, optionally `$filter=location eq '<region>'`."""
    arm.check_subscription(call)
    wanted = catalog.regions()
    query = (call.arg("$filter") or "").replace('"', "'")
    if "location eq" in query:
        region = arm.norm_location(query.split("location eq", 1)[1].strip().strip("'"))
        wanted = [region] if region in wanted else []
    value = [_sku(s, wanted) for s in catalog.sizes()] if wanted else []
    return Reply(200, {"value": value})
