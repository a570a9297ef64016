"""Spec models for the image: its base, the build VM, customize steps, generalize, capture."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from batchimage.spec.common import (
    Checked,
    ContainerName,
    EnvName,
    GalleryName,
    HttpsUrl,
    ImageIdentifier,
    ImageName,
    InputFile,
    Region,
    ResourceGroupName,
    Rule,
    SecretRef,
    SpecModel,
    StorageAccountName,
    SubnetId,
    VmSize,
    exactly_one,
    one_of_schema,
    raise_rules,
)
from batchimage.spec.pool import BatchAccountId

OsType = Literal["linux", "windows"]
# Marketplace identifiers. Partner Center allows lowercase letters, digits, '-' and '_' in a
# publisher ID (learn.microsoft.com/azure/marketplace/add-publishers, "PublisherID"), and the
# same, up to 50 characters, in an offer ID and a plan ID, the image SKU (MicrosoftDocs/
# azure-docs articles/marketplace/azure-vm-offer-setup.md, azure-vm-create-plans.md). Azure
# matches them case-insensitively and older images keep capitals and, in SKUs, dots
# ("Canonical:UbuntuServer:18.04-LTS", "OpenLogic:CentOS:7.5", "SUSE:openSUSE-Leap:42.3":
# articles/virtual-machines/linux/cli-ps-findimage.md). A version is Major.Minor.Build of
# decimal numbers, or 'latest' (ImageReference.version, Azure/azure-rest-api-specs Compute).
MarketplacePublisher = Annotated[
    str,
    Checked(
        r"[A-Za-z0-9_-]+", "use the publisher's ID: letters, digits, '-' and '_', like 'Canonical'"
    ),
]
MarketplaceOffer = Annotated[
    str,
    Checked(
        r"[A-Za-z0-9_-]{1,50}",
        "use the offer's ID: 1-50 letters, digits, '-' and '_', like 'ubuntu-24_04-lts'",
    ),
]
MarketplaceSku = Annotated[
    str,
    Checked(
        r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,49}",
        "use the SKU (plan) ID: 1-50 letters, digits, '-', '_' and '.', not starting with '.', "
        "like 'server' or '18.04-LTS'",
    ),
]
MarketplaceVersion = Annotated[
    str, Checked(r"latest|[0-9]+\.[0-9]+\.[0-9]+", "use 'latest' or an exact version like '1.2.3'")
]
GalleryVersion = Annotated[
    str,
    Checked(r"auto|\d{1,9}\.\d{1,9}\.\d{1,9}", "use 'auto' or MAJOR.MINOR.PATCH, like '1.0.0'"),
]
StorageAccountId = Annotated[
    str,
    Checked(
        r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
        r"Microsoft\.Storage/storageAccounts/[a-z0-9]{3,24}",
        "use a storage account resource id: /subscriptions/<sub>/resourceGroups/<group>/"
        "providers/Microsoft.Storage/storageAccounts/<name>",
    ),
]
AddressSpace = Annotated[
    str, Checked(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", "use a CIDR block like '10.200.0.0/24'")
]
UserName = Annotated[
    str,
    Checked(r"[a-z_][a-z0-9_-]{0,31}", "use up to 32 lowercase letters, digits, '_' and '-'"),
]

WINDOWS_PUBLISHERS = frozenset(
    {
        "microsoftwindowsserver",
        "microsoftwindowsdesktop",
        "microsoftsqlserver",
        "microsoftvisualstudio",
        "microsoftwindowsserverhpcpack",
    }
)


class PurchasePlan(SpecModel):
    """Marketplace purchase plan; found automatically when omitted."""

    name: MarketplaceSku = Field(description="Plan name (usually the SKU).")
    product: MarketplaceOffer = Field(description="Plan product (usually the offer).")
    publisher: MarketplacePublisher = Field(description="Plan publisher.")


class Marketplace(SpecModel):
    """A Marketplace image, e.g. Canonical:ubuntu-24_04-lts:server."""

    publisher: MarketplacePublisher = Field(description="Image publisher, e.g. Canonical.")
    offer: MarketplaceOffer = Field(description="Image offer, e.g. ubuntu-24_04-lts.")
    sku: MarketplaceSku = Field(description="Image SKU, e.g. server.")
    version: MarketplaceVersion = Field(
        "latest",
        description="Exact image version, or 'latest' (resolved once and pinned in state).",
    )
    plan: PurchasePlan | None = Field(
        None, description="Purchase plan, for images that have one; looked up when omitted."
    )
    follow_latest: bool = Field(
        False,
        description="With version 'latest': resolve it afresh on every run instead of using "
        "the version pinned in state, so a newer Marketplace version builds a new image "
        "version and rolls it out to the pools (e.g. a scheduled CI job). Default false: "
        "pinned; plan says when a newer version exists and `apply --refresh-base` moves to it.",
    )

    @model_validator(mode="after")
    def _follow_needs_latest(self) -> Marketplace:
        if self.follow_latest and self.version != "latest":
            raise_rules(
                [
                    (
                        ("follow_latest",),
                        f"follow_latest needs version 'latest' (the version is {self.version}); "
                        "drop one of them",
                    )
                ]
            )
        return self

    def identity(self) -> dict[str, object]:
        """What names the image (publisher, offer, SKU, version as written, plan): the
        spec's part of the image and build fingerprints (how to resolve 'latest' is not)."""
        return self.model_dump(mode="json", exclude={"follow_latest"})

    def inferred_os_type(self) -> OsType:
        """The OS this image runs, judged from its publisher and offer."""
        windows = self.publisher.lower() in WINDOWS_PUBLISHERS or "windows" in self.offer.lower()
        return "windows" if windows else "linux"


class VhdUrl(SpecModel):
    """A VHD already in blob storage (a fixed-size VHD in a page blob)."""

    url: HttpsUrl = Field(
        description="Blob URL of the VHD, without a SAS token (give the token as 'sas')."
    )
    storage_account_id: StorageAccountId | None = Field(
        None,
        description="Resource id of the storage account holding the VHD; found from the URL "
        "when omitted.",
    )
    sas: SecretRef | None = Field(
        None, description="SAS token to read the blob, as a secret reference."
    )

    @model_validator(mode="after")
    def _no_sas_in_url(self) -> VhdUrl:
        if re.search(r"[?&]sig=", self.url):
            raise_rules([(("url",), "the URL holds a SAS token; give it as 'sas: {env: NAME}'")])
        return self


class VhdFile(SpecModel):
    """A local VHD file (from on-premises) to upload as a page blob, then register."""

    path: InputFile = Field(description="The local .vhd file (relative to the spec's folder).")
    storage_account: StorageAccountName = Field(
        description="Storage account to upload to (same subscription and region)."
    )
    container: ContainerName = Field("vhds", description="Blob container to upload to.")
    blob: str | None = Field(
        None, description="Blob name; default <name>-<content hash>.vhd.", min_length=1
    )
    resource_group: ResourceGroupName | None = Field(
        None, description="Resource group of the storage account; default: the spec's."
    )


class BaseImage(SpecModel):
    """What the image starts from: exactly one of marketplace, vhd_url, vhd_file."""

    model_config = one_of_schema("marketplace", "vhd_url", "vhd_file")

    marketplace: Marketplace | None = Field(None, description="Start from a Marketplace image.")
    vhd_url: VhdUrl | None = Field(None, description="Start from a VHD already in storage.")
    vhd_file: VhdFile | None = Field(None, description="Upload a local VHD and start from it.")
    os_type: OsType | None = Field(
        None,
        description="linux or windows; inferred from a Marketplace image or the gallery "
        "definition, required otherwise.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> BaseImage:
        raise_rules(exactly_one(self, ("marketplace", "vhd_url", "vhd_file"), "image.base"))
        return self


class OsDisk(SpecModel):
    """The build VM's OS disk."""

    type: Literal["managed", "unmanaged"] = Field(
        "managed",
        description="managed (default), or unmanaged: a VHD in a storage account (the classic "
        "capture flow; retired in public Azure, kept for clouds that still have it).",
    )
    storage_account: StorageAccountName | None = Field(
        None, description="Storage account for an unmanaged disk's VHD."
    )
    container: ContainerName | None = Field(
        None, description="Container for an unmanaged disk's VHD; default 'vhds'."
    )
    size_gb: int | None = Field(
        None, ge=30, le=4095, description="OS disk size in GiB; default: the image's size."
    )
    sku: Literal["Standard_LRS", "StandardSSD_LRS", "Premium_LRS"] = Field(
        "StandardSSD_LRS", description="Managed disk SKU."
    )

    @model_validator(mode="after")
    def _storage(self) -> OsDisk:
        rules: list[Rule] = []
        if self.type == "unmanaged":
            if self.storage_account is None:
                rules.append((("storage_account",), "an unmanaged OS disk needs a storage account"))
            if self.container is None:
                self.container = "vhds"
        else:
            for name in ("storage_account", "container"):
                if getattr(self, name) is not None:
                    rules.append(
                        ((name,), "only an unmanaged OS disk (type: unmanaged) takes this")
                    )
        raise_rules(rules)
        return self


class BuildNetwork(SpecModel):
    """Network of the build VM: an existing subnet, or a private network created for it."""

    subnet_id: SubnetId | None = Field(
        None, description="Existing subnet for the build VM; default: create a private network."
    )
    address_space: AddressSpace = Field(
        "10.200.0.0/24",
        description="Address space of the created network (ignored with subnet_id).",
    )


class Build(SpecModel):
    """The temporary VM the image is built on."""

    vm_size: VmSize = Field("Standard_D2s_v5", description="Size of the build VM.")
    os_disk: OsDisk = Field(
        default_factory=OsDisk,
        description="OS disk of the build VM: managed (default) or unmanaged, and its size.",
    )
    admin_username: UserName = Field(
        "batchimage", description="Administrator user of the build VM (removed when generalizing)."
    )
    ssh_public_key: InputFile | None = Field(
        None,
        description="Linux: SSH public key file to install; default: a throwaway key pair "
        "generated per run (customization uses Run Command, not SSH).",
    )
    admin_password: SecretRef | None = Field(
        None, description="Windows: administrator password reference; default: generated."
    )
    network: BuildNetwork = Field(
        default_factory=BuildNetwork, description="Network of the build VM."
    )
    public_ip: bool = Field(
        False, description="Give the build VM a public IP (not needed: Run Command is used)."
    )
    spot: bool = Field(False, description="Build on a Spot VM (cheaper, may be evicted).")
    timeout_s: int | None = Field(
        None, ge=60, le=86400, description="Limit to create the build VM; default timeouts.build_s."
    )

    @model_validator(mode="after")
    def _admin(self) -> Build:
        reserved = {"admin", "administrator", "root", "guest", "user", "test", "sys", "support"}
        if self.admin_username in reserved:
            raise_rules([(("admin_username",), f"Azure does not allow '{self.admin_username}'")])
        return self


class FileUpload(SpecModel):
    """Copy a local file onto the build VM."""

    source: InputFile = Field(description="Local file (relative to the spec's folder).")
    destination: str = Field(
        description="Absolute path on the build VM, e.g. /opt/data/ref.bin.", min_length=1
    )


class CustomizeStep(SpecModel):
    """One customize step: exactly one of shell, shell_file, powershell, powershell_file,
    file, restart."""

    model_config = one_of_schema(
        "shell", "shell_file", "powershell", "powershell_file", "file", "restart"
    )

    name: str | None = Field(None, description="A label shown in progress and errors.")
    shell: str | None = Field(None, description="Inline shell script (Linux), run as root.")
    shell_file: InputFile | None = Field(None, description="Shell script file to run (Linux).")
    powershell: str | None = Field(None, description="Inline PowerShell script (Windows).")
    powershell_file: InputFile | None = Field(
        None, description="PowerShell script file to run (Windows)."
    )
    file: FileUpload | None = Field(None, description="Upload a file to the build VM.")
    restart: bool | None = Field(None, description="Restart the build VM (write 'restart: true').")
    env: dict[EnvName, str] = Field(
        default_factory=dict, description="Environment variables for a script step."
    )
    secret_env: dict[EnvName, SecretRef] = Field(
        default_factory=dict,
        description="Secret environment variables for a script step (passed as protected "
        "parameters, never logged).",
    )
    timeout_s: int | None = Field(
        None, ge=10, le=86400, description="Limit for this step; default timeouts.customize_step_s."
    )

    ACTIONS: ClassVar[tuple[str, ...]] = (
        "shell",
        "shell_file",
        "powershell",
        "powershell_file",
        "file",
        "restart",
    )

    @property
    def action(self) -> str:
        """Which action this step performs (the one action key that is set)."""
        return next(name for name in self.ACTIONS if getattr(self, name) is not None)

    @model_validator(mode="after")
    def _one_action(self) -> CustomizeStep:
        rules = exactly_one(self, self.ACTIONS, "a customize step")
        if self.restart is False:
            rules.append((("restart",), "write 'restart: true' to restart, or remove the step"))
        if not rules and self.action in ("file", "restart"):
            rules += [
                ((k,), "only a script step takes this")
                for k in ("env", "secret_env")
                if getattr(self, k)
            ]
        raise_rules(rules)
        return self


class Generalize(SpecModel):
    """Generalize the build VM before capture (deprovision or sysprep, then deallocate)."""

    enabled: bool = Field(True, description="Generalize (Batch pools need a generalized image).")
    command: str | None = Field(
        None,
        description="Override the deprovision command (default Linux: 'waagent -deprovision+user "
        "-force', run by a systemd unit a minute after its run command returned, then "
        "'shutdown -h now' when it succeeded; Windows: sysprep /generalize /oobe /shutdown "
        "/mode:vm).",
    )


class ImageDefinition(SpecModel):
    """The gallery image definition the versions belong to (created when missing)."""

    name: ImageName = Field(description="Image definition name.")
    publisher: ImageIdentifier = Field(description="Publisher identifier, e.g. Contoso.")
    offer: ImageIdentifier = Field(description="Offer identifier, e.g. batch-worker.")
    sku: ImageIdentifier = Field(description="SKU identifier, e.g. ubuntu-24-04.")
    os_type: OsType | None = Field(None, description="linux or windows; default: the base's.")
    hyper_v_generation: Literal["V1", "V2"] = Field(
        "V2", description="Hyper-V generation; must match the base image."
    )
    security_type: (
        Literal[
            "Standard",
            "TrustedLaunch",
            "TrustedLaunchSupported",
            "ConfidentialVM",
            "ConfidentialVMSupported",
            "TrustedLaunchAndConfidentialVmSupported",
        ]
        | None
    ) = Field(
        None,
        description="SecurityType feature of the definition: TrustedLaunch (its versions back "
        "only Trusted Launch VMs and pools; built on a Trusted Launch VM), "
        "TrustedLaunchSupported, TrustedLaunchAndConfidentialVmSupported or "
        "ConfidentialVMSupported (Gen2 images any Gen2, Trusted Launch or confidential VM can "
        "use; built on a Standard VM); default Standard: no feature is sent.",
    )
    description: str | None = Field(None, description="Free text shown in the portal.")


class Replica(SpecModel):
    """A region the image version is replicated to."""

    region: Region = Field(description="Region name, e.g. eastus.")
    count: int = Field(1, ge=1, le=100, description="Replica count in this region.")


class Gallery(SpecModel):
    """Azure Compute Gallery target: every pipeline ends in a gallery image version."""

    resource_group: ResourceGroupName | None = Field(
        None, description="Resource group of the gallery; default: the spec's."
    )
    gallery: GalleryName = Field(description="Gallery name (created when missing).")
    definition: ImageDefinition = Field(description="Image definition.")
    version: GalleryVersion = Field(
        "auto",
        description="'auto' (a new version whenever the image's inputs change) or an exact "
        "version 'MAJOR.MINOR.PATCH'.",
    )
    replicas: list[Replica] = Field(
        default_factory=list,
        description="Regions and replica counts; default: the spec's location and every "
        "pool account's known location, one replica each.",
    )
    storage_account_type: Literal["Standard_LRS", "Standard_ZRS", "Premium_LRS"] = Field(
        "Standard_LRS", description="Storage type of the replicas."
    )
    exclude_from_latest: Literal["until_rolled_out"] | bool = Field(
        False,
        description="Keep this version out of 'latest' for the definition: true (always), "
        "false, or until_rolled_out (created excluded, included once every pool runs it).",
    )
    end_of_life: dt.date | None = Field(
        None, description="End-of-life date of the version (YYYY-MM-DD)."
    )
    end_of_life_days: int | None = Field(
        None,
        ge=1,
        le=36500,
        description="End-of-life date of a new version: this many days after it is made "
        "(informational in Azure: VMs and pools can still use it).",
    )
    keep: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Retention: after a successful rollout, delete this pipeline's image "
        "versions beyond the newest N that no pool of the spec's Batch accounts uses.",
    )
    keep_days: int | None = Field(
        None,
        ge=1,
        le=36500,
        description="Retention: also keep every version published in the last N days "
        "(alone: delete only older versions no pool uses).",
    )
    keep_used_by: list[BatchAccountId] = Field(
        default_factory=list,
        description="Retention: more Batch accounts whose pools' image versions are kept, "
        "besides those of the spec's pools (accounts where other specs or people make "
        "pools on this image).",
    )

    @model_validator(mode="after")
    def _unique_regions(self) -> Gallery:
        seen: set[str] = set()
        rules: list[Rule] = []
        for index, replica in enumerate(self.replicas):
            if replica.region in seen:
                rules.append((("replicas", index, "region"), f"'{replica.region}' is listed twice"))
            seen.add(replica.region)
        if self.end_of_life is not None and self.end_of_life_days is not None:
            rules.append((("end_of_life_days",), "give either 'end_of_life' or 'end_of_life_days'"))
        if self.keep_used_by and not self.retains:
            rules.append(
                (("keep_used_by",), "only retention reads it: give 'keep' or 'keep_days' too")
            )
        raise_rules(rules)
        return self

    @property
    def retains(self) -> bool:
        """Whether old image versions are deleted after a rollout (`keep` or `keep_days`)."""
        return self.keep is not None or self.keep_days is not None


class VhdExport(SpecModel):
    """Also export the image as a VHD page blob (disk SAS grant, server-side copy, revoke)."""

    storage_account: StorageAccountName = Field(description="Storage account to export to.")
    container: ContainerName = Field("vhds", description="Blob container to export to.")
    name: str | None = Field(None, description="Exact blob name.", min_length=1, max_length=1024)
    prefix: str | None = Field(
        None,
        description="Blob name prefix (the name ends in the image version); default: the "
        "pipeline name.",
        min_length=1,
    )
    resource_group: ResourceGroupName | None = Field(
        None, description="Resource group of the storage account; default: the spec's."
    )

    @model_validator(mode="after")
    def _name_or_prefix(self) -> VhdExport:
        if self.name is not None and self.prefix is not None:
            raise_rules([(("prefix",), "give either 'name' or 'prefix', not both")])
        return self


class ManagedImage(SpecModel):
    """Also create a managed image (an artifact only: Batch pools use the gallery)."""

    name: ImageName = Field(description="Managed image name.")
    resource_group: ResourceGroupName | None = Field(
        None, description="Resource group of the image; default: the spec's."
    )


class Capture(SpecModel):
    """Where the built image goes."""

    gallery: Gallery = Field(description="The gallery image version (always made).")
    vhd_export: VhdExport | None = Field(None, description="Also export a VHD.")
    managed_image: ManagedImage | None = Field(None, description="Also make a managed image.")


class Image(SpecModel):
    """The custom image: base, build VM, customization, generalize, capture."""

    base: BaseImage = Field(description="What the image starts from.")
    build: Build = Field(default_factory=Build, description="The temporary build VM.")
    customize: list[CustomizeStep] = Field(
        default_factory=list, description="Steps run on the build VM, in order."
    )
    generalize: Generalize = Field(
        default_factory=Generalize, description="Generalize before capture."
    )
    capture: Capture = Field(description="Where the image goes.")

    @property
    def builds_vm(self) -> bool:
        """Whether the image is made on a build VM (else a VHD is registered as it is)."""
        return self.base.marketplace is not None or bool(self.customize)

    @model_validator(mode="after")
    def _security_rules(self) -> Image:
        """Security types Azure cannot make from this pipeline (sources: docs/azure-behaviours.md,
        Image definitions and Trusted Launch)."""
        definition = self.capture.gallery.definition
        security = definition.security_type or "Standard"
        at: tuple[str | int, ...] = ("capture", "gallery", "definition", "security_type")
        rules: list[Rule] = []
        if security == "ConfidentialVM":
            rules.append(
                (
                    at,
                    "batchimage cannot make ConfidentialVM images (they need a confidential "
                    "build VM with an encrypted VM guest state); use ConfidentialVMSupported",
                )
            )
        if security != "Standard" and definition.hyper_v_generation != "V2":
            rules.append(
                (
                    at,
                    f"{security} is a security type of Generation 2 images: set "
                    "hyper_v_generation: V2 (with a Gen2 base), or leave security_type out",
                )
            )
        classic = self.build.os_disk.type == "unmanaged"
        if security == "TrustedLaunch" and (classic or not self.builds_vm):
            rules.append(
                (
                    at,
                    "a TrustedLaunch definition takes captures of Trusted Launch VMs (on managed "
                    "disks), not a VHD; use TrustedLaunchSupported for an image registered "
                    "from a VHD",
                )
            )
        if security == "TrustedLaunch" and self.capture.managed_image is not None:
            rules.append(
                (
                    ("capture", "managed_image"),
                    "Azure makes no managed image from a Trusted Launch VM (the build VM of a "
                    "TrustedLaunch definition); remove managed_image, or use "
                    "TrustedLaunchSupported (its build VM is a Standard one)",
                )
            )
        raise_rules(rules)
        return self
