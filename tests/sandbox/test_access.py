"""Role-based access and token audiences, through the real SDK clients: a principal with
only the roles a new user has (Owner) cannot create Batch jobs (403 AuthorizationFailure),
a data role lets it; a Reader gets ARM's 403 AuthorizationFailed on writes; the
permissions API answers each principal's blocks in the published shape; each service
refuses a token minted for another (ARM 401 InvalidAuthenticationTokenAudience, Batch 401
AuthenticationFailed, Azurite 403 AuthenticationFailed)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from azure.batch import models as bm
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import BlobServiceClient

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from tests.sandbox.batch_support import pool_options
from tests.sandbox.principals import ScopedCredential, as_principal

DATA_ROLE = "Azure Batch Data Contributor"


def account_id(conn: Connection, name: str | None = None) -> str:
    return (
        f"/subscriptions/{conn.subscription_id}/resourceGroups/{conn.resource_group}"
        f"/providers/Microsoft.Batch/batchAccounts/{name or conn.batch_account}"
    )


def error_code(err: HttpResponseError) -> str | None:
    model = getattr(err, "model", None)
    return getattr(model, "code", None) or (err.error.code if err.error else None)


def test_seeded_principal_owns_the_subscription_and_runs_jobs_on_the_seeded_account(
    sandbox: Connection, admin: SandboxAdmin
) -> None:
    roles = {(a["roleName"], a["properties"]["scope"]) for a in admin.role_assignments()}
    assert ("Owner", f"/subscriptions/{sandbox.subscription_id}") in roles
    assert (DATA_ROLE, account_id(sandbox)) in roles


def test_owner_cannot_create_jobs_without_a_data_role(
    cloud: CloudProfile, sandbox: Connection, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    clients, who = as_principal(cloud, admin, unique("owner"))
    batch = clients.batch(sandbox.batch_endpoint(sandbox.batch_account))
    list(batch.list_pools())  # pools are actions: Owner's "*" grants them
    job = bm.BatchJobCreateOptions(id=unique("job"), pool_info=bm.BatchPoolInfo(pool_id="any"))
    with pytest.raises(HttpResponseError) as refused:
        batch.create_job(job)
    assert refused.value.status_code == 403
    assert error_code(refused.value) == "AuthorizationFailure"
    assert "This request is not authorized to perform this operation." in str(refused.value)

    admin.assign_role(who["objectId"], "Azure Batch Job Submitter", account_id(sandbox))
    batch.create_job(job)  # the data action is granted now
    assert batch.get_job(job.id).id == job.id
    batch.begin_delete_job(job.id, polling_interval=0).result()


def test_reader_is_refused_writes_on_arm_and_on_the_data_plane(
    cloud: CloudProfile, sandbox: Connection, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    subscription = f"/subscriptions/{sandbox.subscription_id}"
    clients, who = as_principal(
        cloud, admin, unique("reader"), roles=[{"role": "Reader", "scope": subscription}]
    )
    assert clients.resource.resource_groups.get(sandbox.resource_group).name  # reads pass
    group = unique("rg")
    with pytest.raises(HttpResponseError) as refused:
        clients.resource.resource_groups.create_or_update(group, {"location": "eastus"})
    assert refused.value.status_code == 403
    assert error_code(refused.value) == "AuthorizationFailed"
    message = str(refused.value.error.message if refused.value.error else "")
    assert f"object id '{who['objectId']}'" in message
    assert "perform action 'Microsoft.Resources/subscriptions/resourcegroups/write'" in message
    assert f"over scope '{subscription}/resourcegroups/{group}'" in message

    batch = clients.batch(sandbox.batch_endpoint(sandbox.batch_account))
    assert isinstance(list(batch.list_pools()), list)  # Reader: */read covers pools/read
    with pytest.raises(HttpResponseError) as pool_refused:
        batch.create_pool(pool_options(unique("pool")))
    assert pool_refused.value.status_code == 403
    assert error_code(pool_refused.value) == "AuthorizationFailure"


def test_permissions_api_answers_each_principals_roles(
    cloud: CloudProfile,
    clients: AzureClients,
    sandbox: Connection,
    admin: SandboxAdmin,
    unique: Callable[[str], str],
) -> None:
    group = clients.authorization.permissions.list_for_resource_group(sandbox.resource_group)
    assert any(p.actions == ["*"] and not p.data_actions for p in group)  # Owner
    account = list(
        clients.authorization.permissions.list_for_resource(
            sandbox.resource_group, "Microsoft.Batch", "", "batchAccounts", sandbox.batch_account
        )
    )
    assert "Microsoft.Batch/batchAccounts/jobs/*" in [a for p in account for a in p.data_actions]

    owner, _ = as_principal(cloud, admin, unique("owner"))
    theirs = owner.authorization.permissions.list_for_resource(
        sandbox.resource_group, "Microsoft.Batch", "", "batchAccounts", sandbox.batch_account
    )
    assert [(p.actions, p.data_actions) for p in theirs] == [(["*"], [])]

    # the wire shape: PermissionGetResult of Permission (api-version 2022-04-01)
    url = (
        f"{sandbox.arm_endpoint}/subscriptions/{sandbox.subscription_id}/resourcegroups/"
        f"{sandbox.resource_group}/providers/Microsoft.Authorization/permissions"
    )
    token = clients.credential.get_token(sandbox.arm_scope).token
    raw = requests.get(
        url,
        params={"api-version": "2022-04-01"},
        headers={"Authorization": f"Bearer {token}"},
        verify=sandbox.ca_bundle,
        timeout=10,
    ).json()
    assert set(raw) == {"value"}
    assert all(
        set(p) == {"actions", "notActions", "dataActions", "notDataActions"} for p in raw["value"]
    )
    with pytest.raises(HttpResponseError) as missing:
        list(clients.authorization.permissions.list_for_resource_group(unique("nogroup")))
    assert missing.value.status_code == 404 and error_code(missing.value) == "ResourceGroupNotFound"


def test_arm_refuses_a_token_for_another_audience(cloud: CloudProfile, sandbox: Connection) -> None:
    batch_token = AzureClients(cloud, credential=ScopedCredential(cloud, cloud.batch_scope))
    with pytest.raises(ClientAuthenticationError) as refused:
        batch_token.resource.resource_groups.get(sandbox.resource_group)
    assert refused.value.status_code == 401
    assert error_code(refused.value) == "InvalidAuthenticationTokenAudience"
    message = str(refused.value.error.message if refused.value.error else "")
    assert "obtained for wrong audience or resource 'https://batch.core.windows.net/'" in message
    assert refused.value.response is not None
    assert "Bearer" in refused.value.response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "scope",
    [
        "{arm}/.default",  # a token for ARM
        "https://batch.core.windows.net/.default",  # one slash: audience without the slash
    ],
)
def test_batch_refuses_a_token_for_another_audience(
    cloud: CloudProfile, sandbox: Connection, scope: str
) -> None:
    wrong = scope.format(arm=sandbox.arm_endpoint)
    clients = AzureClients(cloud, credential=ScopedCredential(cloud, wrong))
    batch = clients.batch(sandbox.batch_endpoint(sandbox.batch_account))
    with pytest.raises(HttpResponseError) as refused:
        list(batch.list_pools())
    assert refused.value.status_code == 401
    assert error_code(refused.value) == "AuthenticationFailed"
    details = {v.key: v.value for v in refused.value.model.error_values}  # type: ignore[union-attr]
    audience = wrong.rsplit("/", 1)[0]
    assert details["AuthenticationErrorDetail"].startswith(
        f"The access token has been obtained from wrong audience or resource '{audience}'"
    )
    assert "'https://batch.core.windows.net/'" in details["AuthenticationErrorDetail"]


def test_azurite_checks_the_storage_audience_of_sandbox_tokens(
    cloud: CloudProfile, sandbox: Connection, unique: Callable[[str], str]
) -> None:
    endpoint = sandbox.blob_endpoint(sandbox.storage_account)
    good = BlobServiceClient(
        endpoint,
        credential=ScopedCredential(cloud, "https://storage.azure.com/.default"),
        connection_verify=sandbox.ca_bundle,
    )
    container = good.create_container(unique("aud"))  # issuer and audience pass Azurite
    container.delete_container()

    arm = BlobServiceClient(
        endpoint,
        credential=ScopedCredential(cloud, cloud.arm_scope),
        connection_verify=sandbox.ca_bundle,
        retry_total=0,
    )
    with pytest.raises(HttpResponseError) as refused:
        arm.create_container(unique("aud"))
    assert refused.value.status_code == 403
    assert refused.value.error_code == "AuthenticationFailed"
    assert "Invalid token audience." in str(refused.value)
