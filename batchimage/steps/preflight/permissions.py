"""Check: the caller may do what the run will do, at each scope it writes: the build's and
the gallery's resource groups, the storage accounts it reads keys of, and each pool's Batch
account (pools: actions; the smoke test's jobs and tasks: data actions, which Owner and
Contributor do not grant).

The caller's effective permissions come from the Microsoft.Authorization permissions API;
what is missing is named with the built-in role that would grant it and the `az role
assignment create` command that assigns it. For `plan` (which writes nothing, and in CI
often runs as another identity than apply) what is missing is a warning. A resource group
that does not exist yet is not checked (creating it needs
Microsoft.Resources/subscriptions/resourceGroups/write on the subscription, which the run
then finds out at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchimage.azure.permissions import (
    Need,
    caller_object_id,
    describe,
    group_permissions,
    missing,
    resource_permissions,
    role_for,
)
from batchimage.steps.gallery import builds_vm
from batchimage.steps.preflight.facts import Facts, pool_accounts, storage_uses
from batchimage.steps.preflight.report import CheckResult, fail, ok, warn

NAME = "permissions"
COMPUTE = "Microsoft.Compute"
NETWORK = "Microsoft.Network"
BATCH = "Microsoft.Batch/batchAccounts"


@dataclass(frozen=True)
class Scope:
    """Somewhere the run writes: a resource group, or one resource in it."""

    label: str
    group: str
    needs: tuple[Need, ...]
    resource: tuple[str, str, str] | None = None  # (namespace, type, name)

    def id(self, subscription: str) -> str:
        group = f"/subscriptions/{subscription}/resourceGroups/{self.group}"
        if self.resource is None:
            return group
        return f"{group}/providers/{'/'.join(self.resource)}"


def _actions(why: str, *actions: str) -> list[Need]:
    return [Need(a, False, why) for a in actions]


def build_needs(spec: Any) -> list[Need]:
    """What building, customizing and generalizing the VM does in the build group."""
    if not builds_vm(spec):
        return []
    build = spec.image.build
    vm = f"{COMPUTE}/virtualMachines"
    needs = _actions("the build VM", f"{vm}/write", f"{vm}/delete", f"{COMPUTE}/disks/delete")
    needs += _actions("customize and generalize", f"{vm}/runCommands/write")
    needs += _actions("generalize", f"{vm}/deallocate/action", f"{vm}/generalize/action")
    if build.os_disk.type == "unmanaged":
        needs += _actions("classic capture", f"{vm}/capture/action")
    nic = f"{NETWORK}/networkInterfaces"
    needs += _actions("the build VM's network", f"{nic}/write", f"{nic}/delete")
    if build.network.subnet_id is None:
        needs += _actions(
            "the build VM's network",
            f"{NETWORK}/virtualNetworks/write",
            f"{NETWORK}/virtualNetworks/delete",
            f"{NETWORK}/virtualNetworks/subnets/join/action",
            f"{NETWORK}/networkSecurityGroups/write",
            f"{NETWORK}/networkSecurityGroups/delete",
        )
    if build.public_ip:
        ip = f"{NETWORK}/publicIPAddresses"
        needs += _actions("the build VM's public IP", f"{ip}/write", f"{ip}/delete")
    return needs


def scopes(spec: Any, facts: Facts) -> list[Scope]:
    """Every scope the run writes, with what it does there (groups merged by name)."""
    groups: dict[str, list[Need]] = {}
    groups.setdefault(spec.resource_group, []).extend(build_needs(spec))
    capture = spec.image.capture
    gallery = f"{COMPUTE}/galleries"
    groups.setdefault(capture.gallery.resource_group or spec.resource_group, []).extend(
        _actions(
            "the image",
            f"{gallery}/write",
            f"{gallery}/images/write",
            f"{gallery}/images/versions/write",
        )
    )
    if capture.managed_image is not None and builds_vm(spec):
        image_group = capture.managed_image.resource_group or spec.resource_group
        groups.setdefault(image_group, []).extend(
            _actions("the managed image", f"{COMPUTE}/images/write")
        )
    out = [Scope(f"resource group {g}", g, tuple(n)) for g, n in groups.items() if n]
    for use in storage_uses(spec):
        account = facts.storage(use.account, use.group)
        if account is not None and account.shared_key:
            keys = _actions(use.role, "Microsoft.Storage/storageAccounts/listKeys/action")
            out.append(
                Scope(
                    f"storage account {account.name}",
                    account.group,
                    tuple(keys),
                    ("Microsoft.Storage", "storageAccounts", account.name),
                )
            )
    for (group, name), pools in pool_accounts(spec).items():
        if facts.batch(group, name) is None:
            continue  # the batch accounts check says so
        needs = _actions("the pools", f"{BATCH}/pools/write", f"{BATCH}/pools/delete")
        tested = [p.id for p in pools if p.smoke_test is not None]
        if tested:
            why = f"the smoke test of pool {', '.join(tested)} runs a job with a task"
            needs += [Need(f"{BATCH}/jobs/{verb}", True, why) for verb in ("write", "delete")]
        resource = ("Microsoft.Batch", "batchAccounts", name)
        out.append(Scope(f"batch account {name}", group, tuple(needs), resource))
    return out


def _advice(scope: Scope, lacking: list[Need], subscription: str, assignee: str) -> str:
    text = f"on {scope.label}, you lack {describe(lacking)}"
    if any(n.data for n in lacking):
        text += " - Owner and Contributor grant no data actions"
    role = role_for(lacking)
    if role is not None:
        text += (
            f"; assign the built-in role '{role}': az role assignment create --role \"{role}\" "
            f"--assignee {assignee} --scope {scope.id(subscription)}"
        )
    return text


def check_permissions(facts: Facts) -> list[CheckResult]:
    """One result: every scope's needs granted, or what is missing and how to grant it."""
    clients = facts.clients
    problems, checked, unchecked = [], [], []
    for scope in scopes(facts.spec, facts):
        if scope.resource is None:
            blocks = group_permissions(clients, scope.group)
            if blocks is None:
                unchecked.append(scope.label)
                continue
        else:
            blocks = resource_permissions(clients, scope.group, *scope.resource)
        lacking = missing(blocks, list(scope.needs))
        if lacking:
            problems.append((scope, lacking))
        checked.append(scope.label)
    if problems and facts.planning:
        where = ", ".join(scope.label for scope, _ in problems)
        return [
            warn(
                NAME,
                f"the identity that ran this plan may not apply it: it lacks write access on "
                f"{where} (a plan reads only; apply checks its own identity, and "
                "`batchimage preflight` names the roles)",
            )
        ]
    if problems:
        assignee = caller_object_id(clients) or "<your object id>"
        sub = clients.subscription_id
        return [fail(NAME, ". ".join(_advice(s, m, sub, assignee) for s, m in problems))]
    message = f"what the run does is granted on {', '.join(checked) or 'nothing it writes'}"
    if unchecked:
        message += f" ({', '.join(unchecked)}: created by the run, not checked)"
    return [ok(NAME, message)]
