"""Microsoft.Compute routes: every operation the sandbox serves, in matching order."""

from __future__ import annotations

from batchimage.sandbox.arm import GENERIC_NAME, ResourceType
from batchimage.sandbox.routing import Route
from batchimage.sandbox.services.compute.children import ChildType
from batchimage.sandbox.services.compute.models import (
    disks,
    extensions,
    galleries,
    images,
    power,
    runcommands,
    vms,
)
from batchimage.sandbox.services.compute.responses import admin, marketplace
from batchimage.sandbox.services.compute.responses import galleries as gallery_responses
from batchimage.sandbox.services.compute.responses import images as image_responses
from batchimage.sandbox.services.compute.responses import runcommands as run_responses
from batchimage.sandbox.services.compute.responses import vms as vm_responses

VIRTUAL_MACHINES = ResourceType(
    vms.NS,
    "virtualMachines",
    "VirtualMachines",
    vms.build_vm,
    "vm",
    check_name=GENERIC_NAME,
    render=vms.render_vm,
    patch=vms.patch_vm,
    after_provisioned=vms.after_provisioned,
    after_delete=vms.after_delete,
)
DISKS = ResourceType(
    vms.NS,
    "disks",
    "Disks",
    disks.build_disk,
    "disk",
    put_style="async",
    delete_style="both",
    render=disks.render_disk,
    before_delete=disks.before_delete,
    after_delete=disks.after_delete,
)

IMAGES = ResourceType(
    vms.NS,
    "images",
    "Images",
    images.build_image,
    "image",
    after_delete=images.image_after_delete,
)
GALLERIES = ResourceType(
    vms.NS,
    "galleries",
    "Galleries",
    galleries.build_gallery,
    "gallery",
    check_name=galleries.check_gallery_name,
    before_delete=galleries.gallery_before_delete,
)
GALLERY_IMAGES = ChildType(
    vms.NS,
    "galleries/images",
    "GalleryImages",
    galleries.build_definition,
    "gallery_image",
    before_delete=galleries.definition_before_delete,
    path="galleries/{gallery}/images",
)
GALLERY_IMAGE_VERSIONS = ChildType(
    vms.NS,
    "galleries/images/versions",
    "GalleryImageVersions",
    galleries.build_version,
    "gallery_image_version",
    check_name=galleries.check_version_name,
    before_delete=galleries.version_before_delete,
    after_delete=galleries.version_after_delete,
    after_provisioned=galleries.version_provisioned,
    patch=galleries.patch_version,
    path="galleries/{gallery}/images/{image}/versions",
)
EXTENSIONS = ChildType(
    vms.NS,
    "virtualMachines/extensions",
    "VirtualMachineExtensions",
    extensions.build_extension,
    "vm_extension",
    put_style="async",
    delete_style="both",
    before_delete=extensions.before_delete,
    path="virtualMachines/{vm}/extensions",
    location_from_parent=True,
)
RUN_COMMANDS = ChildType(
    vms.NS,
    "virtualMachines/runCommands",
    "VirtualMachineRunCommands",
    runcommands.build_run_command,
    "run_command",
    put_style="async",
    delete_style="both",
    render=runcommands.render_run_command,
    before_provisioned=runcommands.execute,
    path="virtualMachines/{vm}/runCommands",
    location_from_parent=True,
)

VM = VIRTUAL_MACHINES.item_path


def _vm_routes() -> list[Route]:
    routes = [
        Route("GET", VM, vm_responses.get_vm, "VirtualMachines_Get"),
        Route(
            "GET",
            VM + "/instanceView",
            vm_responses.get_instance_view,
            "VirtualMachines_InstanceView",
        ),
        Route("POST", VM + "/generalize", vm_responses.generalize, "VirtualMachines_Generalize"),
        Route("POST", VM + "/runCommand", run_responses.run_command, "VirtualMachines_RunCommand"),
        Route("POST", VM + "/capture", image_responses.capture, "VirtualMachines_Capture"),
        Route(
            "POST",
            DISKS.item_path + "/beginGetAccess",
            image_responses.grant_access,
            "Disks_GrantAccess",
        ),
        Route(
            "POST",
            DISKS.item_path + "/endGetAccess",
            image_responses.revoke_access,
            "Disks_RevokeAccess",
        ),
        Route(
            "GET",
            GALLERY_IMAGE_VERSIONS.item_path,
            gallery_responses.get_version,
            "GalleryImageVersions_Get",
        ),
        Route(
            "GET",
            RUN_COMMANDS.item_path,
            run_responses.get_run_command,
            "VirtualMachineRunCommands_GetByVirtualMachine",
        ),
    ]
    for operation in power.POWER_OPS:
        name = "VirtualMachines_" + operation[0].upper() + operation[1:]
        routes.append(
            Route("POST", f"{VM}/{operation}", vm_responses.power_action(operation), name)
        )
    return routes


def _catalog_routes() -> list[Route]:
    m = marketplace
    subscription = "/subscriptions/{subscription}/providers/Microsoft.Compute"
    return [
        Route("GET", m.PUBLISHERS, m.list_publishers, "VirtualMachineImages_ListPublishers"),
        Route("GET", m.OFFERS, m.list_offers, "VirtualMachineImages_ListOffers"),
        Route("GET", m.SKUS, m.list_skus, "VirtualMachineImages_ListSkus"),
        Route("GET", m.VERSIONS, m.list_versions, "VirtualMachineImages_List"),
        Route("GET", m.VERSIONS + "/{version}", m.get_image, "VirtualMachineImages_Get"),
        Route("GET", m.LOCATION + "/usages", m.list_usages, "Usage_List"),
        Route("GET", subscription + "/skus", m.list_resource_skus, "ResourceSkus_List"),
    ]


def _admin_routes() -> list[Route]:
    versions = "/_sandbox/marketplace/versions"
    item = versions + "/{publisher}/{offer}/{sku}/{version}"
    return [
        Route("GET", versions, admin.list_published, "Admin_PublishedImages", plane="admin"),
        Route("POST", versions, admin.publish, "Admin_PublishImage", plane="admin"),
        Route("DELETE", item, admin.withdraw, "Admin_WithdrawImage", plane="admin"),
        Route(
            "POST",
            "/_sandbox/marketplace/deprecations",
            admin.deprecate,
            "Admin_DeprecateImage",
            plane="admin",
        ),
    ]


ROUTES: list[Route] = [
    *_admin_routes(),
    *_catalog_routes(),
    *_vm_routes(),
    *EXTENSIONS.routes(),
    *RUN_COMMANDS.routes(),
    *VIRTUAL_MACHINES.routes(),
    *DISKS.routes(),
    *IMAGES.routes(),
    *GALLERY_IMAGE_VERSIONS.routes(),
    *GALLERY_IMAGES.routes(),
    *GALLERIES.routes(),
]
