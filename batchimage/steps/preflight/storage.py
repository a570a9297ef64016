"""Check: every storage account the spec names exists, is general-purpose, in the right region."""

from __future__ import annotations

from batchimage.steps.preflight.facts import Facts, storage_uses
from batchimage.steps.preflight.report import CheckResult, fail, ok, warn

PAGE_BLOB_KINDS = {"storagev2", "storage"}


def check_storage(facts: Facts) -> list[CheckResult]:
    """Kind StorageV2 (or classic Storage), no hierarchical namespace, same region when needed."""
    spec = facts.spec
    results = []
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
