"""Microsoft.Resources through the real ResourceManagementClient: groups, providers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection


def test_seeded_group_exists(clients: AzureClients, sandbox: Connection) -> None:
    group = clients.resource.resource_groups.get(sandbox.resource_group)
    assert group.location == "eastus"
    assert group.properties.provisioning_state == "Succeeded"
    assert sandbox.subscription_id == "00000000-0000-4000-8000-000000000001"


def test_group_lifecycle(clients: AzureClients, unique: Callable[[str], str]) -> None:
    groups = clients.resource.resource_groups
    name = unique("rg")
    created = groups.create_or_update(name, {"location": "East US", "tags": {"team": "a"}})
    assert created.id.endswith(f"/resourceGroups/{name}")
    assert created.location == "eastus"
    assert groups.check_existence(name) is True
    assert name in [g.name for g in groups.list()]
    updated = groups.update(name, {"tags": {"team": "b"}})
    assert updated.tags == {"team": "b"}
    again = groups.create_or_update(name, {"location": "eastus"})
    assert again.tags == {"team": "b"}
    groups.begin_delete(name).result()
    assert groups.check_existence(name) is False
    with pytest.raises(ResourceNotFoundError) as err:
        groups.get(name)
    assert err.value.error is not None and err.value.error.code == "ResourceGroupNotFound"


def test_group_errors(clients: AzureClients, unique: Callable[[str], str]) -> None:
    groups = clients.resource.resource_groups
    with pytest.raises(HttpResponseError) as bad:
        groups.create_or_update("bad.", {"location": "eastus"})
    assert bad.value.status_code == 400
    assert bad.value.error is not None and bad.value.error.code == "InvalidResourceGroup"
    with pytest.raises(HttpResponseError) as chars:
        groups.create_or_update("my group!", {"location": "eastus"})
    assert chars.value.error is not None and chars.value.error.code == "InvalidResourceGroup"
    assert chars.value.error.message == (
        "The provided resource group name 'my group!' has these invalid characters: ' !'. "
        "The name can only be a letter, digit, '-', '.', '(', ')' or '_'."
    )
    name = unique("rg")
    groups.create_or_update(name, {"location": "eastus"})
    with pytest.raises(HttpResponseError) as moved:
        groups.create_or_update(name, {"location": "westeurope"})
    assert moved.value.status_code == 409
    assert (
        moved.value.error is not None and moved.value.error.code == "InvalidResourceGroupLocation"
    )
    with pytest.raises(ResourceNotFoundError) as missing:
        groups.begin_delete(unique("nogroup")).result()
    assert missing.value.error is not None and missing.value.error.code == "ResourceGroupNotFound"


def test_group_delete_is_long_running(
    clients: AzureClients, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    groups = clients.resource.resource_groups
    name = unique("rg")
    groups.create_or_update(name, {"location": "eastus"})
    admin.configure(durations={"resource_group.delete": 2000.0})  # 2 s at scale 0.001
    try:
        poller = groups.begin_delete(name)
        assert groups.get(name).properties.provisioning_state == "Deleting"
        with pytest.raises(HttpResponseError) as busy:
            groups.create_or_update(name, {"location": "eastus"})
        assert busy.value.status_code == 409
        assert busy.value.error is not None and busy.value.error.code == "ResourceGroupBeingDeleted"
        poller.result()
    finally:
        admin.configure(durations={"resource_group.delete": 45.0})
    assert groups.check_existence(name) is False
    ops = admin.counters()["operations"]
    assert ops.get("Operations_GetResult", 0) >= 1  # the SDK polled the Location URL


def test_providers(clients: AzureClients, admin: SandboxAdmin) -> None:
    providers = clients.resource.providers
    batch = providers.get("Microsoft.Batch")
    assert batch.registration_state == "Registered"
    assert "batchAccounts" in [t.resource_type for t in batch.resource_types]
    names = {p.namespace for p in providers.list()}
    assert {
        "Microsoft.Compute",
        "Microsoft.Network",
        "Microsoft.Storage",
        "Microsoft.Batch",
    } <= names
    with pytest.raises(ResourceNotFoundError) as err:
        providers.get("Microsoft.Nothing")
    assert err.value.error is not None and err.value.error.code == "InvalidResourceNamespace"


def test_provider_registration(
    clients: AzureClients, admin: SandboxAdmin, sandbox: Connection
) -> None:
    other = "00000000-0000-4000-8000-0000000000f2"
    admin.add_subscription(other, registered=False)
    from batchimage.azure.clients import AzureClients as Factory

    there = Factory(clients.profile, other).resource.providers
    assert there.get("Microsoft.Batch").registration_state == "NotRegistered"
    started = there.register("Microsoft.Batch")
    assert started.registration_state == "Registering"
    admin.advance(60)
    assert there.get("Microsoft.Batch").registration_state == "Registered"


def test_unmodelled_type_says_so(clients: AzureClients, sandbox: Connection) -> None:
    vault = (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{sandbox.resource_group}"
        "/providers/Microsoft.KeyVault/vaults/kv1"
    )
    with pytest.raises(HttpResponseError) as err:
        clients.resource.resources.get_by_id(vault, api_version="2023-07-01")
    assert err.value.status_code == 400
    assert err.value.error is not None and err.value.error.code == "InvalidResourceType"
    assert "not modelled" in err.value.error.message


def test_concurrent_writes_all_land(
    clients: AzureClients, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    names = [unique("rgc") for _ in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(
            pool.map(
                lambda n: clients.resource.resource_groups.create_or_update(
                    n, {"location": "eastus"}
                ),
                names,
            )
        )
    listed = {g.name for g in clients.resource.resource_groups.list()}
    assert set(names) <= listed
    stored = admin.state()["tables"]["resources"]
    assert all(
        f"/subscriptions/{clients.subscription_id}/resourcegroups/{n}".lower() in stored
        for n in names
    )


def test_provision_rehearsal_prerequisites(admin: SandboxAdmin, clients: AzureClients) -> None:
    sub = "00000000-0000-4000-8000-0000000000f3"
    items = [
        {"kind": "resource_group", "name": "their-rg"},
        {"kind": "storage_account", "group": "their-rg", "name": "theirstore"},
        {"kind": "batch_account", "group": "their-rg", "name": "theirbatch"},
        {
            "kind": "subnet",
            "group": "net-rg",
            "vnet": "their-vnet",
            "name": "pool",
            "address_prefix": "10.40.2.0/24",
        },
    ]
    ids = admin.provision(sub, "westeurope", items)
    assert admin.provision(sub, "westeurope", items) == ids  # idempotent
    there = AzureClients(clients.profile, sub, credential=clients.credential)
    assert there.resource.resource_groups.get("their-rg").location == "westeurope"
    store = there.storage.storage_accounts.get_properties("their-rg", "theirstore")
    assert store.kind == "StorageV2" and store.location == "westeurope"
    batch = there.batch_management.batch_account.get("their-rg", "theirbatch")
    assert batch.pool_allocation_mode == "UserSubscription"
    subnet = there.network.subnets.get("net-rg", "their-vnet", "pool")
    assert subnet.id == ids[3] and subnet.address_prefix == "10.40.2.0/24"
    assert there.network.virtual_networks.get(
        "net-rg", "their-vnet"
    ).address_space.address_prefixes == ["10.40.0.0/16"]


def test_subscription_lists_its_locations(clients: AzureClients) -> None:
    """Subscriptions - List Locations: the regions the sandbox's catalogue offers."""
    from azure.core.rest import HttpRequest

    from batchimage.azure.regions import subscription_locations
    from batchimage.sandbox.services.compute.models import catalog

    sub = clients.subscription_id
    raw = clients.resource.send_request(
        HttpRequest("GET", f"/subscriptions/{sub}/locations", params={"api-version": "2022-12-01"})
    )
    assert raw.status_code == 200
    first = raw.json()["value"][0]
    assert first["id"] == f"/subscriptions/{sub}/locations/{first['name']}"
    assert first["type"] == "Region" and first["metadata"]["regionType"] == "Physical"
    assert first["regionalDisplayName"].endswith(first["displayName"])
    found = subscription_locations(clients)
    assert sorted(found) == sorted(catalog.regions())
    assert found["eastus"] == "East US"


@pytest.mark.parametrize(
    ("tags", "code"),
    [
        ({f"t{i}": "v" for i in range(51)}, "InvalidTags"),
        ({"a/b": "v"}, "InvalidTagNameCharacters"),
        ({"bell\x07": "v"}, "InvalidTagNameCharacters"),
        ({" ": "v"}, "InvalidTagName"),
        ({"n" * 513: "v"}, "InvalidTagName"),
        ({"long": "v" * 257}, "InvalidTagValueLength"),
    ],
)
def test_tags_beyond_azure_limits_are_refused(
    clients: AzureClients, unique: Callable[[str], str], tags: dict[str, str], code: str
) -> None:
    """Tags: at most 50, names 1-512 characters without < > % & \\ ? / or control
    characters, values up to 256 (docs/azure-behaviours.md, "Tags and provenance"), on
    create and update."""
    groups = clients.resource.resource_groups
    name = unique("rg")
    with pytest.raises(HttpResponseError) as refused:
        groups.create_or_update(name, {"location": "eastus", "tags": tags})
    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == code
    groups.create_or_update(
        name, {"location": "eastus", "tags": {f"t{i}": "v" * 256 for i in range(50)}}
    )
    with pytest.raises(HttpResponseError) as patched:
        groups.update(name, {"tags": tags})
    assert patched.value.error is not None and patched.value.error.code == code
    nsgs = clients.network.network_security_groups
    with pytest.raises(HttpResponseError) as resource:
        nsgs.begin_create_or_update(name, "nsg", {"location": "eastus", "tags": tags}).result()
    assert resource.value.error is not None and resource.value.error.code == code
    groups.begin_delete(name).result()


def test_a_storage_account_takes_tag_names_of_128_characters(
    clients: AzureClients, sandbox: Connection
) -> None:
    accounts = clients.storage.storage_accounts
    body = {"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}
    name = "bitagnames128"  # refused: never made
    with pytest.raises(HttpResponseError) as refused:
        accounts.begin_create(sandbox.resource_group, name, {**body, "tags": {"n" * 129: "v"}})
    assert refused.value.error is not None and refused.value.error.code == "InvalidTagName"
