"""Step `resolve_image`: the exact base image - a Marketplace `latest` resolved once and
pinned in state (with its purchase plan and Hyper-V generation), or a VHD blob's identity."""

from __future__ import annotations

from typing import Any

from batchimage.azure.marketplace import resolve_marketplace
from batchimage.steps.base import Outputs, RunContext, Step
from batchimage.steps.run_preflight import RunPreflight


class BaseImageOutputs(Outputs):
    """The exact base image the build starts from."""

    source: str  # marketplace | vhd_url | vhd_file
    os_type: str
    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None
    version: str | None = None
    plan: dict[str, str] | None = None
    hyper_v_generation: str | None = None
    vhd_url: str | None = None
    storage_account_id: str | None = None


def pinned_for(ctx: RunContext, recorded: BaseImageOutputs | None) -> str | None:
    """The version pinned by `recorded` when the spec still names that image with `latest`."""
    mp = ctx.spec.image.base.marketplace
    if mp is None or mp.version != "latest" or recorded is None or recorded.source != "marketplace":
        return None
    same = (recorded.publisher, recorded.offer, recorded.sku) == (mp.publisher, mp.offer, mp.sku)
    return recorded.version if same else None


class ResolveImage(Step[BaseImageOutputs]):
    """Read-only: which exact image the build uses (a pinned version never moves by itself)."""

    kind = "resolve_image"
    key = "resolve_image"
    read_only = True
    depends_on = (RunPreflight,)

    def inputs(self) -> dict[str, Any]:
        return {"base": self.spec_base}

    def __init__(self, spec: Any) -> None:
        self.spec_base = spec.image.base.model_dump(mode="json", exclude={"vhd_file"})
        self.spec_base["vhd_file"] = (
            str(spec.image.base.vhd_file.path) if spec.image.base.vhd_file else None
        )

    def check(self, ctx: RunContext) -> BaseImageOutputs | None:
        spec = ctx.spec
        base = spec.image.base
        if base.marketplace is not None:
            mp = base.marketplace
            pinned = pinned_for(ctx, ctx.recorded())
            image = resolve_marketplace(ctx.clients, spec.location, mp, pinned=pinned)
            if pinned is None and mp.version == "latest":
                ctx.say(f"latest of {mp.publisher}:{mp.offer}:{mp.sku} is {image.version}; pinned")
            plan = mp.plan.model_dump() if mp.plan is not None else image.plan
            return BaseImageOutputs(
                source="marketplace",
                os_type=spec.os_type,
                publisher=mp.publisher,
                offer=mp.offer,
                sku=mp.sku,
                version=image.version,
                plan=plan,
                hyper_v_generation=image.hyper_v_generation,
            )
        if base.vhd_url is not None:
            return BaseImageOutputs(
                source="vhd_url",
                os_type=spec.os_type,
                vhd_url=base.vhd_url.url,
                storage_account_id=base.vhd_url.storage_account_id
                or _account_id(ctx, base.vhd_url.url),
                hyper_v_generation=spec.image.capture.gallery.definition.hyper_v_generation,
            )
        return BaseImageOutputs(
            source="vhd_file",
            os_type=spec.os_type,
            hyper_v_generation=spec.image.capture.gallery.definition.hyper_v_generation,
        )

    def apply(self, ctx: RunContext) -> BaseImageOutputs | None:
        return self.check(ctx)

    def describe(self) -> str:
        base = self.spec_base
        if base.get("marketplace"):
            mp = base["marketplace"]
            return f"base image {mp['publisher']}:{mp['offer']}:{mp['sku']}:{mp['version']}"
        return (
            f"base image {(base.get('vhd_url', {}) and base['vhd_url']['url']) or base['vhd_file']}"
        )


def _account_id(ctx: RunContext, url: str) -> str | None:
    """The id of the storage account whose blob endpoint serves `url`."""
    from batchimage.azure.blobs import account_for_url

    found = account_for_url(ctx.clients, url)
    return found.id if found is not None else None
