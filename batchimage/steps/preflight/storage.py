"""Check: every storage account the spec names exists, is general-purpose, in the right region."""

from __future__ import annotations

from batchimage.steps.preflight.facts import Facts, storage_uses
from batchimage.steps.preflight.report import CheckResult, fail, ok, warn
from batchimage.steps.staging import candidates

PAGE_BLOB_KINDS = {"storagev2", "storage"}


def check_staging(facts: Facts) -> list[CheckResult]:
    """File customize steps need a storage account to stage files in (see azure/staging)."""
    spec = facts.spec
    if not any(step.action == "file" for step in spec.image.customize):
        return []
    if candidates(spec):
        name = candidates(spec)[0][0]
        return [ok("file staging", f"files are staged in storage account {name}")]
    for pool in spec.pools:
        ref = pool.batch_account
        raw = facts.batch_raw(ref.resource_group or spec.resource_group, ref.name)
        auto = getattr(raw, "auto_storage", None) if raw is not None else None
        account_id = getattr(auto, "storage_account_id", None)
        if account_id:
            parts = account_id.split("/")
            name = parts[-1]
            if facts.storage(name, parts[4]) is None:
                return [
                    fail(
                        "file staging",
                        f"auto-storage account {name} of Batch account {ref.name} was not "
                        "found, and a file customize step stages its file there: link an "
                        "existing general-purpose v2 account to the Batch account, or add "
                        "image.capture.vhd_export with a storage account",
                    )
                ]
            return [ok("file staging", f"files are staged in {name} (auto-storage of {ref.name})")]
    return [
        fail(
            "file staging",
            "a file customize step needs a storage account to stage the file in, and the spec "
            "names none: add image.capture.vhd_export with a storage account, or a pool whose "
            "Batch account has an auto-storage account",
        )
    ]


def check_storage(facts: Facts) -> list[CheckResult]:
    """Kind StorageV2 (or classic Storage), no hierarchical namespace, same region when needed."""
    spec = facts.spec
    results = check_staging(facts)
    for use in storage_uses(spec):
        name = f"storage {use.account}"
        account = facts.storage(use.account, use.group)
        if account is None:
            results.append(
                fail(
                    name,
                    f"not found (needed for the {use.role}); create a general-purpose v2 "
                    f"account: az storage account create --name {use.account} --resource-group "
                    f"{use.group or spec.resource_group} --location {spec.location} "
                    "--kind StorageV2 --sku Standard_LRS",
                )
            )
            continue
        problems = []
        if account.kind.lower() not in PAGE_BLOB_KINDS:
            problems.append(
                f"is of kind {account.kind}, which cannot hold page blobs (VHDs); the {use.role} "
                "needs a general-purpose v2 account (kind StorageV2)"
            )
        if account.hns:
            problems.append(
                "has a hierarchical namespace (Data Lake Gen2), which cannot hold page blobs; "
                "use an account without it"
            )
        if not account.blob_endpoint:
            problems.append("has no blob endpoint")
        if problems:
            results.append(fail(name, "; ".join(problems)))
            continue
        if account.location != spec.location:
            message = (
                f"is in {account.location}, the pipeline in {spec.location}; the {use.role} "
                f"needs an account in {spec.location} (same subscription and region)"
            )
            if use.same_region:
                results.append(fail(name, message))
            else:
                results.append(warn(name, message.replace("needs", "is faster with")))
            continue
        results.append(ok(name, f"{account.kind} in {account.location}, for the {use.role}"))
    return results
