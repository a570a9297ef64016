"""Marketplace identifiers follow their documented rules: the images Microsoft's docs name
are accepted (capitals, dots in SKUs, long publisher IDs); junk such as a path, a blank or
a space is a located problem naming the field."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from batchimage.core.errors import SpecProblem
from batchimage.spec import Spec
from tests.spec.conftest import MINIMAL

BASE = "{publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}"

DOCUMENTED = [  # MicrosoftDocs/azure-docs articles/virtual-machines/linux/cli-ps-findimage.md
    "Canonical:UbuntuServer:18.04-LTS:latest",
    "OpenLogic:CentOS:7.5:latest",
    "SUSE:openSUSE-Leap:42.3:latest",
    "MicrosoftWindowsServer:WindowsServer:2019-Datacenter:latest",
    "center-for-internet-security-inc:cis-debian-linux-10-l1:cis-debian10-l1:1.0.7",
    "atomizedinc1587939464368:atomized-h-debian10-v1:hdebian10plan:1.0.0",
    "cognosys:apache-web-server-with-debian-10:apache-web-server-with-debian-10:1.2019.1008",
]


def with_base(urn: str, plan: str = "") -> str:
    publisher, offer, sku, version = urn.split(":")
    image = f"{{publisher: '{publisher}', offer: '{offer}', sku: '{sku}', version: '{version}'"
    return MINIMAL.replace(BASE, image + (f", plan: {plan}" if plan else "") + "}")


@pytest.mark.parametrize("urn", DOCUMENTED)
def test_documented_images_are_accepted(load: Callable[..., Spec], urn: str) -> None:
    spec = load(with_base(urn))
    marketplace = spec.image.base.marketplace
    assert marketplace is not None
    assert ":".join([marketplace.publisher, marketplace.offer, marketplace.sku]) in urn


def test_a_documented_plan_is_accepted(load: Callable[..., Spec]) -> None:
    plan = "{name: rabbitmq, product: rabbitmq, publisher: bitnami}"
    spec = load(with_base("bitnami:rabbitmq:rabbitmq:latest", plan))
    assert spec.image.base.marketplace is not None
    assert spec.image.base.marketplace.plan is not None


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("publisher", "../../etc/passwd", "use the publisher's ID: letters, digits, '-' and '_'"),
        ("publisher", " ", "use the publisher's ID"),
        ("publisher", "", "use the publisher's ID"),
        ("publisher", "Micro.soft", "use the publisher's ID"),
        ("offer", "o" * 51, "use the offer's ID: 1-50 letters"),
        ("offer", "ubuntu server", "use the offer's ID"),
        ("sku", "..", "not starting with '.'"),
        ("sku", "a/b", "use the SKU (plan) ID"),
        ("version", "\u0661.\u0662.\u0663", "use 'latest' or an exact version"),
        ("version", "1.2", "use 'latest' or an exact version"),
    ],
)
def test_junk_identifiers_are_located(
    problems: Callable[..., list[SpecProblem]], field: str, value: str, says: str
) -> None:
    urn = {"publisher": "Canonical", "offer": "UbuntuServer", "sku": "18.04-LTS"}
    urn["version"] = "latest"
    urn[field] = value
    text = with_base(":".join(urn[k] for k in ("publisher", "offer", "sku", "version")))
    [problem] = problems(text)
    assert problem.field == f"image.base.marketplace.{field}"
    assert (problem.line, problem.column) == (7, text.splitlines()[6].index(f"'{value}'") + 1)
    assert says in problem.message


@pytest.mark.parametrize("field", ["name", "product", "publisher"])
def test_plan_identifiers_are_checked(
    problems: Callable[..., list[SpecProblem]], field: str
) -> None:
    plan = {"name": "rabbitmq", "product": "rabbitmq", "publisher": "bitnami", field: "../x"}
    text = "{" + ", ".join(f"{key}: {value}" for key, value in plan.items()) + "}"
    found = problems(with_base("bitnami:rabbitmq:rabbitmq:latest", text))
    assert [p.field for p in found] == [f"image.base.marketplace.plan.{field}"]
    assert "is not valid: use the" in found[0].message
