"""Role-based access rules as published, without a sandbox: wildcard matching, notActions,
actions vs data actions of the built-in roles, the action ARM names for a request, which
role the preflight suggests, and the next action an access error gets."""

from __future__ import annotations

import pytest

from batchimage.azure.errors import next_action
from batchimage.azure.permissions import Need, describe, missing, role_for
from batchimage.core.errors import PermanentAzureError
from batchimage.core.rbac import block_grants, find_role, granted
from batchimage.sandbox.services.authorization.enforce import arm_need

JOBS = "Microsoft.Batch/batchAccounts/jobs/write"
POOLS = "Microsoft.Batch/batchAccounts/pools/write"


def role_blocks(name: str) -> list[dict[str, object]]:
    role = find_role(name)
    assert role is not None
    blocks: list[dict[str, object]] = role["permissions"]
    return blocks


def test_wildcards_and_not_actions() -> None:
    assert granted(["*"], [], "Microsoft.Compute/virtualMachines/write")
    assert granted(["*/read"], [], "Microsoft.Batch/batchAccounts/pools/read")
    assert not granted(["*/read"], [], POOLS)
    assert granted(["microsoft.batch/*"], [], POOLS)  # case-insensitive
    contributor = role_blocks("Contributor")[0]
    assert not block_grants(
        contributor, "Microsoft.Authorization/roleAssignments/write", data=False
    )
    assert block_grants(contributor, "Microsoft.Compute/galleries/write", data=False)


@pytest.mark.parametrize("role", ["Owner", "Contributor", "Reader"])
def test_owner_contributor_reader_grant_no_data_actions(role: str) -> None:
    assert not any(block_grants(b, JOBS, data=True) for b in role_blocks(role))


@pytest.mark.parametrize(
    ("role", "jobs", "pools"),
    [
        ("Azure Batch Account Contributor", True, True),
        ("Azure Batch Data Contributor", True, True),
        ("Azure Batch Job Submitter", True, False),
        ("Azure Batch Account Reader", False, False),
    ],
)
def test_batch_roles(role: str, jobs: bool, pools: bool) -> None:
    blocks = role_blocks(role)
    assert any(block_grants(b, JOBS, data=True) for b in blocks) is jobs
    assert any(block_grants(b, POOLS, data=False) for b in blocks) is pools


@pytest.mark.parametrize(
    ("method", "path", "scope", "action"),
    [
        ("PUT", "/subscriptions/s/resourceGroups/g", "/subscriptions/s/resourceGroups/g",
         "Microsoft.Resources/subscriptions/resourceGroups/write"),
        ("POST", "/subscriptions/s/providers/Microsoft.Compute/register", "/subscriptions/s",
         "Microsoft.Compute/register/action"),
        ("POST", "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"
         "/deallocate", "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/"
         "virtualMachines/v", "Microsoft.Compute/virtualMachines/deallocate/action"),
        ("DELETE", "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x/"
         "images/y/versions/1.0.0", "/subscriptions/s/resourceGroups/g/providers/"
         "Microsoft.Compute/galleries/x/images/y/versions/1.0.0",
         "Microsoft.Compute/galleries/images/versions/delete"),
    ],
)  # fmt: skip
def test_arm_names_the_action_of_a_write(method: str, path: str, scope: str, action: str) -> None:
    assert arm_need(method, path) == (scope, action, False)


def test_reads_are_not_checked_on_arm() -> None:
    assert arm_need("GET", "/subscriptions/s/resourceGroups/g") is None


def test_suggested_role_and_wording() -> None:
    delete = JOBS.replace("write", "delete")
    jobs = [Need(JOBS, True, "smoke test"), Need(delete, True, "smoke test")]
    assert missing(role_blocks("Contributor"), jobs) == jobs
    assert role_for(jobs) == "Azure Batch Data Contributor"
    vm = [Need("Microsoft.Compute/virtualMachines/write", False, "build VM")]
    assert role_for(vm) == "Contributor"
    assert describe(jobs) == f"data actions {JOBS}, {delete} (smoke test)"


def test_next_actions_for_access_errors() -> None:
    refused = PermanentAzureError(
        "This request is not authorized to perform this operation.",
        code="AuthorizationFailure",
        status=403,
        operation="create job batchimage-smoke-x",
    )
    assert "'Azure Batch Data Contributor'" in next_action(refused)
    audience = PermanentAzureError(
        "The access token has been obtained for wrong audience or resource 'x'.",
        code="InvalidAuthenticationTokenAudience",
        status=401,
    )
    assert "issued for another service" in next_action(audience)
