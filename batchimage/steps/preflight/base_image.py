"""Check: the base image exists and fits: a Marketplace image in the region (latest resolved,
plan found, OS and Hyper-V generation matching the definition, able to boot the Trusted
Launch build VM a TrustedLaunch definition needs), or a valid fixed VHD."""

from __future__ import annotations

from typing import Any

from batchimage.azure.blobs import account_for_url, blob_service, sas_blob_client, split_blob_url
from batchimage.azure.vhdblob import inspect_vhd_blob
from batchimage.core.errors import AzureError, TransientAzureError
from batchimage.steps.gallery import trusted_launch_only
from batchimage.steps.preflight.facts import Facts
from batchimage.steps.preflight.report import CheckResult, fail, ok

NAME = "base image"


def check_base_image(facts: Facts) -> list[CheckResult]:
    """One result for the base image."""
    base = facts.spec.image.base
    if base.marketplace is not None:
        return [_marketplace(facts)]
    if facts.spec.image.customize:
        return [
            fail(
                NAME,
                "customize steps on a VHD base are not supported yet: register the VHD as it "
                "is (no customize steps), or start from a Marketplace image",
            )
        ]
    if base.vhd_file is not None:
        return [_vhd_file(base.vhd_file)]
    return [_vhd_url(facts, base.vhd_url)]


def _marketplace(facts: Facts) -> CheckResult:
    spec = facts.spec
    mp = spec.image.base.marketplace
    try:
        image = facts.marketplace()
    except TransientAzureError:
        raise
    except AzureError as err:
        return fail(NAME, err.message)
    problems = []
    if image.os_type != spec.os_type:
        problems.append(f"{image.urn} is a {image.os_type} image, the spec says {spec.os_type}")
    wanted_gen = spec.image.capture.gallery.definition.hyper_v_generation
    if image.hyper_v_generation.upper() != wanted_gen.upper():
        problems.append(
            f"{image.urn} is Hyper-V generation {image.hyper_v_generation}, the definition "
            f"asks for {wanted_gen}; set image.capture.gallery.definition.hyper_v_generation: "
            f"{image.hyper_v_generation} (or pick a {wanted_gen} sku)"
        )
    security = spec.image.capture.gallery.definition.security_type or "Standard"
    if trusted_launch_only(security) and not image.trusted_launch_capable:
        shown = image.security_type or "no security type"
        problems.append(
            f"{image.urn} cannot boot a Trusted Launch VM (Hyper-V {image.hyper_v_generation}, "
            f"{shown}), which a TrustedLaunch definition is built on: pick a Gen2 image whose "
            "SecurityType contains TrustedLaunch (az vm image show --urn ... shows its "
            "features), or use TrustedLaunchSupported"
        )
    if mp.plan is not None and image.plan is not None:
        given = (mp.plan.name, mp.plan.product, mp.plan.publisher)
        found = (image.plan["name"], image.plan["product"], image.plan["publisher"])
        if tuple(x.lower() for x in given) != tuple(x.lower() for x in found):
            problems.append(
                f"the spec's purchase plan {'/'.join(given)} differs from the image's "
                f"{'/'.join(found)}; remove `plan` from the spec to use the image's"
            )
    if problems:
        return fail(NAME, "; ".join(problems))
    pinned = "pinned" if facts.pinned_version else ("latest" if mp.version == "latest" else "")
    what = f"{image.urn}" + (f" ({pinned})" if pinned else "")
    what += f", {image.os_type}, Hyper-V {image.hyper_v_generation}"
    if image.plan:
        plan = image.plan
        what += (
            f"; purchase plan {plan['publisher']}/{plan['product']}/{plan['name']} is carried to "
            f"the definition (accept its terms once: az vm image terms accept --urn {image.urn})"
        )
    return ok(NAME, what)


def _vhd_file(vhd_file: Any) -> CheckResult:
    from batchimage.azure.vhd import VhdError, validate_fixed_vhd

    try:
        info = validate_fixed_vhd(vhd_file.path)
    except VhdError as err:
        return fail(NAME, str(err))
    except OSError as err:
        return fail(NAME, f"cannot read {vhd_file.path}: {err.strerror}")
    size = getattr(info, "virtual_size", None)
    shown = f", {size / 2**30:.1f} GiB" if isinstance(size, int) else ""
    return ok(NAME, f"{vhd_file.path} is a fixed VHD{shown}")


def _vhd_url(facts: Facts, vhd_url: Any) -> CheckResult:
    spec = facts.spec
    clients = facts.clients
    url = vhd_url.url
    try:
        if vhd_url.sas is not None:
            sas = facts.ctx.secret(vhd_url.sas).get_secret_value().lstrip("?")
            blob = sas_blob_client(clients, url, sas)
        else:
            account = _account_of(facts, vhd_url)
            if account is None:
                return fail(
                    NAME, f"cannot find the storage account of {url}; give storage_account_id"
                )
            if account.location != spec.location:
                return fail(
                    NAME,
                    f"the VHD's account {account.name} is in {account.location}; the gallery "
                    f"version is made in {spec.location}: copy the VHD to an account there",
                )
            container, name = split_blob_url(account, url)
            blob = blob_service(clients, account).get_blob_client(container, name)
        size, problem = inspect_vhd_blob(blob)
    except TransientAzureError:
        raise
    except AzureError as err:
        return fail(NAME, f"cannot read {url}: {err}")
    if problem:
        return fail(NAME, f"{url} is not a usable VHD: {problem}")
    return ok(NAME, f"{url}: fixed VHD page blob, {size / 2**30:.1f} GiB")


def _account_of(facts: Facts, vhd_url: Any) -> Any:
    if vhd_url.storage_account_id:
        parts = vhd_url.storage_account_id.split("/")
        return facts.storage(parts[-1], parts[4])
    return account_for_url(facts.clients, vhd_url.url)
