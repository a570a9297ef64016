"""Thin helpers the image steps share over the management SDKs: read-or-None, tags back to
`ResourceRef`s, waiting on pollers with SDK errors mapped, and delete/exists by resource id.

    found = get_or_none("read VM x", compute.virtual_machines.get, group, name)
    ref = ref_for(found.id, VM, found.tags)      # created_by_run read back from the tags
    wait(ctx, poller, "VM x to be created", "create VM x", timeout_s=1800)
    delete(ctx, ref)                             # by kind; a resource already gone is fine
                                                 # (a build VM's OS disk is marked first)

Every SDK exception leaves these functions as ours (`batchimage.azure.errors.translate`),
naming the operation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from azure.core.exceptions import AzureError as SdkAzureError

from batchimage.azure.cloud import scaled
from batchimage.azure.errors import azure_call, failed_operation, is_not_found, translate
from batchimage.azure.ids import parse_id
from batchimage.azure.pollers import abandon, fixed_rate
from batchimage.core.errors import AzureError, TransientAzureError
from batchimage.core.refs import ResourceRef

if TYPE_CHECKING:
    from batchimage.azure.calls import Calls
    from batchimage.azure.clients import AzureClients
    from batchimage.core.waiting import Poller

T = TypeVar("T")

VM = "Microsoft.Compute/virtualMachines"
DISK = "Microsoft.Compute/disks"
IMAGE = "Microsoft.Compute/images"
GALLERY = "Microsoft.Compute/galleries"
DEFINITION = "Microsoft.Compute/galleries/images"
VERSION = "Microsoft.Compute/galleries/images/versions"
RUN_COMMAND = "Microsoft.Compute/virtualMachines/runCommands"
NIC = "Microsoft.Network/networkInterfaces"
PUBLIC_IP = "Microsoft.Network/publicIPAddresses"
VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
NSG = "Microsoft.Network/networkSecurityGroups"
GROUP = "Microsoft.Resources/resourceGroups"
STORAGE = "Microsoft.Storage/storageAccounts"
BLOB = "blob"
NESTED = "CannotDeleteResource"  # 409: a parent with nested resources (gallery, definition)

# Delete order: what holds a reference goes before what it references.
DELETE_ORDER = (
    VM,
    RUN_COMMAND,
    DISK,
    BLOB,
    NIC,
    PUBLIC_IP,
    SUBNET,
    VNET,
    NSG,
    IMAGE,
    VERSION,
    DEFINITION,
    GALLERY,
    STORAGE,
    GROUP,
)


def text(value: Any, default: str = "") -> str:
    """An SDK field as plain text: an enum's value (not "Enum.MEMBER"), `default` for None."""
    if value is None:
        return default
    return str(getattr(value, "value", value))


def get_or_none(operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """`fn(*args, **kwargs)`, or None when Azure answers "not found"; other errors are ours."""
    try:
        return fn(*args, **kwargs)
    except SdkAzureError as exc:
        if is_not_found(exc):
            return None
        raise translate(exc, operation) from exc


def tags_of(resource: Any) -> dict[str, str]:
    """The tags of an SDK model or REST dict (empty when none)."""
    tags = getattr(resource, "tags", None)
    if tags is None and isinstance(resource, Mapping):
        tags = resource.get("tags")
    return dict(tags or {})


def poll_interval(ctx: Calls, seconds: float) -> float:
    """Real seconds between polls `seconds` apart in Azure's time (see `cloud.scaled`)."""
    return scaled(ctx.clients.profile, seconds)


def wait(
    ctx: Calls, poller: Poller, what: str, operation: str, *, timeout_s: float | None = None
) -> Any:
    """Wait for an LRO (progress shown as `what`); a failure leaves as ours, naming `operation`
    with the operation's final status and the request id that started it."""
    try:
        return ctx.wait(fixed_rate(poller), what, timeout_s=timeout_s)
    except (SdkAzureError, TimeoutError, ConnectionError) as exc:
        raise failed_operation(exc, poller, operation) from exc
    finally:
        abandon(poller)  # a wait given up (Ctrl-C, timeout) leaves no thread polling


def begin_and_wait(
    ctx: Calls,
    operation: str,
    what: str,
    start: Callable[..., Poller],
    *args: Any,
    timeout_s: float | None = None,
    **kwargs: Any,
) -> Any:
    """Start an LRO with `start(*args, **kwargs)` and wait for it (see `wait`)."""
    with azure_call(operation):
        poller = start(*args, **kwargs)
    return wait(ctx, poller, what, operation, timeout_s=timeout_s)


def watch_beside(
    ctx: Calls,
    poller: Poller | None,
    read: Callable[[bool], T | None],
    what: str,
    *,
    interval_s: float,
    first_s: float = 0.0,
    timeout_s: float | None = None,
) -> T:
    """`read(operation_over)` until it returns a value: `first_s` real seconds from now,
    then at a fixed rate of `interval_s` (request times do not add up), and at once when
    `poller` (the operation's, None when there is none) sees the end; between reads it
    waits on the poller, which returns as soon as the operation ends. The poller is
    abandoned when the wait stops on an error."""
    due = [ctx.clock.monotonic() + first_s]  # when the next read is due
    ended = [poller is None]  # the operation's end was seen (and read after)

    def probe() -> T | None:
        over = poller is None or poller.done()
        now = ctx.clock.monotonic()
        if now < due[0] and (ended[0] or not over):
            return None
        ended[0] = over
        while due[0] <= now:
            due[0] += interval_s
        return read(over)

    def pause(seconds: float) -> None:
        left = max(0.0, min(seconds, due[0] - ctx.clock.monotonic()))
        if poller is not None and not poller.done():
            with contextlib.suppress(Exception):  # its error is the caller's to raise
                poller.wait(left)
        else:
            ctx.sleep(left)

    try:
        return ctx.poll(probe, what, interval_s=interval_s, timeout_s=timeout_s, waiter=pause)
    except BaseException:
        if poller is not None:
            abandon(poller)  # the wait stopped: no thread left polling
        raise


def put_and_watch(
    ctx: Calls,
    operation: str,
    what: str,
    start: Callable[..., Poller],
    read: Callable[[], Any],
    *args: Any,
    every_s: float,
) -> Any:
    """Start a PUT with `start(*args)` and wait until its operation ends or, first, `read()`
    (a GET of the resource, None when absent) shows it Succeeded: read every `every_s`
    Azure seconds (`watch_beside`), while the operation's poller waits as Azure asks
    (Network asks 10 s between polls of an operation that takes a few seconds). A failure
    is the operation's to report (its error), so a Failed read only waits on."""
    with azure_call(operation):
        poller = start(*args)

    def seen(over: bool) -> Any:
        if over:
            return poller
        found = read()
        state = text(getattr(found, "provisioning_state", None) or "").lower()
        return found if state == "succeeded" else None

    interval = poll_interval(ctx, every_s)
    found = watch_beside(ctx, poller, seen, what, interval_s=interval, first_s=interval)
    if found is poller:
        return wait(ctx, poller, what, operation)
    abandon(poller)  # the resource reads Succeeded: its operation's end is not awaited
    return found


def order_for_delete(refs: Iterable[ResourceRef]) -> list[ResourceRef]:
    """`refs` sorted so that every resource is deleted before what it depends on."""
    rank = {kind: i for i, kind in enumerate(DELETE_ORDER)}
    return sorted(refs, key=lambda ref: rank.get(ref.kind, len(rank)))


def readable(ref: ResourceRef) -> bool:
    """Whether `exists` knows how to read resources of `ref`'s kind."""
    return ref.kind in (BLOB, GROUP) or ref.kind in _OPERATIONS


def exists(clients: AzureClients, ref: ResourceRef) -> bool:
    """Whether the resource `ref` names still exists (read-only)."""
    if ref.kind == BLOB:
        from batchimage.azure.blobs import blob_exists

        return blob_exists(clients, ref.id)
    getter = _getter(clients, ref)
    if getter is None:
        return False
    return get_or_none(f"read {ref.id}", getter) is not None


def delete(ctx: Calls, ref: ResourceRef, *, timeout_s: float | None = None) -> str:
    """Delete one resource by kind; "deleted", "gone" (already), or "kept: <why>" for a
    group, gallery or image definition others' resources are still in."""
    clients: AzureClients = ctx.clients
    if ref.kind == BLOB:
        from batchimage.azure.blobs import delete_blob

        return "deleted" if delete_blob(clients, ref.id) else "gone"
    if ref.kind == GROUP:
        return _delete_group(ctx, ref, timeout_s)
    if ref.kind in (GALLERY, DEFINITION):  # what another spec of this process may share
        from batchimage.azure.shared import holding

        p = parse_id(ref.id)
        with holding(clients, GALLERY, p["group"], p["names"].split("/")[0]):
            return _delete_parent(ctx, ref, timeout_s)
    return _delete(ctx, ref, timeout_s)


def _delete_parent(ctx: Calls, ref: ResourceRef, timeout_s: float | None) -> str:
    """A gallery or image definition: kept while it holds others' definitions or versions."""
    held = _holds(ctx.clients, ref)
    return held or _delete(ctx, ref, timeout_s)


def _delete(ctx: Calls, ref: ResourceRef, timeout_s: float | None) -> str:
    """Delete one resource of a kind `_OPERATIONS` knows."""
    clients: AzureClients = ctx.clients
    name = ref.id.rsplit("/", 1)[-1]
    start = _deleter(clients, ref)
    if start is None:
        raise AzureError(f"batchimage cannot delete resources of kind {ref.kind} ({ref.id})")
    try:
        poller = start()
        wait(ctx, poller, f"{name} to be deleted", f"delete {name}", timeout_s=timeout_s)
    except (SdkAzureError, AzureError) as exc:
        err = exc if isinstance(exc, AzureError) else translate(exc, f"delete {name}")
        if is_not_found(err):
            return "gone"
        if ref.kind in (GALLERY, DEFINITION) and err.code == NESTED:
            return _holds(clients, ref) or _nested_lag(err)
        if err is exc:
            raise
        raise err from exc
    return "deleted"


def _holds(clients: AzureClients, ref: ResourceRef) -> str:
    """ "kept: ..." when the gallery holds image definitions, or the image definition
    holds image versions (others' by now: this pipeline's own are deleted before it), else
    "" (also when it is gone already)."""
    p = parse_id(ref.id)
    names = p["names"].split("/")
    list_children: Callable[..., Iterable[Any]]
    if ref.kind == GALLERY:
        what, list_children = "image definition(s)", clients.compute.gallery_images.list_by_gallery
    else:
        what = "image version(s)"
        list_children = clients.compute.gallery_image_versions.list_by_gallery_image
    try:
        with azure_call(f"list the {what} of {names[-1]}"):
            found = sorted(text(d.name) for d in list_children(p["group"], *names[:2]))
    except AzureError as err:
        if is_not_found(err):
            return ""
        raise
    if not found:
        return ""
    return (
        f"kept: it still holds {len(found)} {what} of other pipelines "
        f"({', '.join(found[:5])}); destroy again once they are gone to delete it"
    )


def _nested_lag(err: AzureError) -> NoReturn:
    """A gallery whose last definition was just deleted can still be refused for a while
    (Azure/azure-sdk-for-go#8314): a transient failure, retried by the engine."""
    raise TransientAzureError(
        f"{err.message} (its image definitions are being deleted)",
        code=err.code,
        status=err.status,
        operation=err.operation,
    )


def _delete_group(ctx: Calls, ref: ResourceRef, timeout_s: float | None) -> str:
    """Delete a resource group only when nothing is left in it (never others' resources)."""
    clients: AzureClients = ctx.clients
    group = parse_id(ref.id)["group"]
    from batchimage.azure.groups import read_group, resources_in

    if read_group(clients, group) is None:
        return "gone"
    left = [text(r.name) for r in resources_in(clients, group)]
    if left:
        return f"kept: it still holds {len(left)} resource(s) ({', '.join(sorted(left)[:5])})"
    try:
        poller = clients.resource.resource_groups.begin_delete(group)
    except SdkAzureError as exc:
        if is_not_found(exc):
            return "gone"
        raise translate(exc, f"delete group {group}") from exc
    wait(ctx, poller, f"group {group} to be deleted", f"delete group {group}", timeout_s=timeout_s)
    return "deleted"


# kind -> (client attribute, operation group, how many names the calls take, get method)
_OPERATIONS: dict[str, tuple[str, str, int, str]] = {
    VM: ("compute", "virtual_machines", 1, "get"),
    DISK: ("compute", "disks", 1, "get"),
    IMAGE: ("compute", "images", 1, "get"),
    GALLERY: ("compute", "galleries", 1, "get"),
    DEFINITION: ("compute", "gallery_images", 2, "get"),
    VERSION: ("compute", "gallery_image_versions", 3, "get"),
    RUN_COMMAND: ("compute", "virtual_machine_run_commands", 2, "get_by_virtual_machine"),
    NIC: ("network", "network_interfaces", 1, "get"),
    PUBLIC_IP: ("network", "public_ip_addresses", 1, "get"),
    VNET: ("network", "virtual_networks", 1, "get"),
    SUBNET: ("network", "subnets", 2, "get"),
    NSG: ("network", "network_security_groups", 1, "get"),
}


# The api-version azure-mgmt-network sends (tests/azure/test_arm_reads.py checks it): a
# network resource's existence is read by id through the resource client, the same GET,
# so a no-op run does not load the network SDK (0.2 s of CPU) for cleanup's checks.
NETWORK_API = "2026-03-01"


def _call_for(
    clients: AzureClients, ref: ResourceRef, method: str | None
) -> Callable[[], Any] | None:
    """`ops.<method>(group, *names)` for `ref` (None for a kind without such a call);
    `method` None means the kind's get method."""
    if ref.kind == GROUP and method is None:
        group = parse_id(ref.id)["group"]
        return lambda: clients.resource.resource_groups.get(group)
    if method is None and ref.kind.startswith("Microsoft.Network/"):
        return lambda: clients.resource.resources.get_by_id(ref.id, api_version=NETWORK_API)
    known = _OPERATIONS.get(ref.kind)
    if known is None:
        return None
    client, operations, count, get = known
    p = parse_id(ref.id)
    args = [p.get("group", ""), *p.get("names", "").split("/")[:count]]
    ops = getattr(getattr(clients, client), operations)
    fn = getattr(ops, method or get)
    return lambda: fn(*args)


def _getter(clients: AzureClients, ref: ResourceRef) -> Callable[[], Any] | None:
    return _call_for(clients, ref, None)


def _deleter(clients: AzureClients, ref: ResourceRef) -> Callable[[], Poller] | None:
    return _call_for(clients, ref, "begin_delete")
