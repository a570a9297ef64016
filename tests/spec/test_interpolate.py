"""`${VAR}` / `${VAR:-default}` interpolation, with located errors for unset variables."""

from __future__ import annotations

from collections.abc import Callable

from batchimage.core.errors import SpecProblem
from batchimage.spec import Spec

from .conftest import MINIMAL


def test_values_come_from_the_environment_with_defaults(load: Callable[..., Spec]) -> None:
    text = MINIMAL.replace("location: eastus", "location: ${REGION}").replace(
        "resource_group: demo-rg", "resource_group: ${GROUP:-fallback-rg}"
    )
    spec = load(text, environ={"REGION": "westeurope"})
    assert spec.location == "westeurope"
    assert spec.resource_group == "fallback-rg"
    spec = load(text, environ={"REGION": "westeurope", "GROUP": "given-rg"})
    assert spec.resource_group == "given-rg"


def test_default_applies_to_empty_and_numbers_coerce(load: Callable[..., Spec]) -> None:
    text = MINIMAL + (
        "pools:\n  - id: p\n    batch_account: {name: acct}\n    vm_size: Standard_D2s_v5\n"
        "    dedicated_nodes: ${NODES:-3}\n"
    )
    assert load(text, environ={"NODES": ""}).pools[0].dedicated_nodes == 3
    assert load(text, environ={"NODES": "5"}).pools[0].dedicated_nodes == 5


def test_double_dollar_writes_a_literal_and_plain_dollar_is_kept(load: Callable[..., Spec]) -> None:
    text = MINIMAL.replace(
        "  capture:", "  customize:\n    - shell: echo $${HOME} $$ $USER\n  capture:"
    )
    assert load(text).image.customize[0].shell == "echo ${HOME} $$ $USER"


def test_missing_variable_is_named_and_located(problems: Callable[..., list[SpecProblem]]) -> None:
    text = MINIMAL.replace("location: eastus", "location: east${MISSING_REGION}")
    found = problems(text)
    assert len(found) == 1  # no follow-on "invalid region" error for the same field
    assert (found[0].line, found[0].column, found[0].field) == (3, 15, "location")
    assert "environment variable 'MISSING_REGION' is not set" in found[0].message


def test_bad_reference_and_block_scalar_position(
    problems: Callable[..., list[SpecProblem]],
) -> None:
    text = MINIMAL.replace(
        "  capture:", "  customize:\n    - shell: |\n        ok\n        run ${NOT SET}\n  capture:"
    )
    found = problems(text)
    assert [(p.line, p.column) for p in found] == [(11, 13)]
    assert "must be '${NAME}'" in found[0].message
