"""The layers hold: `lint-imports` keeps the contracts of pyproject.toml (core imports nothing
else of batchimage; the sandbox imports only itself and core; only sandbox_client imports
the sandbox; the engine imports neither batchimage.azure nor the display, not even through
another module; the Azure edge imports only itself and core, and nothing else imports the
Azure SDK; the spec language imports none of azure, steps, engine, commands and plan, not
even through another module; the state imports none of them nor the Azure SDK, not even
through another module), and breaks each of them when a copy of the package gets a
forbidden import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# what the `lint-imports` script runs, with this interpreter wherever its scripts are
LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports_command; "
    "sys.exit(lint_imports_command())"
)
CONTRACTS = (
    "batchimage.core imports nothing else of batchimage",
    "batchimage.sandbox imports only batchimage.sandbox and batchimage.core",
    "only sandbox_client (and the sandbox itself) imports batchimage.sandbox",
    "batchimage.engine imports neither batchimage.azure nor the display",
    "batchimage.azure imports only batchimage.azure and batchimage.core",
    "only batchimage.azure imports the Azure SDK",
    "batchimage.spec imports none of azure, steps, engine, commands, plan",
    "batchimage.state imports none of the Azure SDK, azure, steps, engine, commands, plan",
)
CORE, ENGINE, EDGE_SDK, SPEC, STATE = (CONTRACTS[i] for i in (0, 3, 5, 6, 7))
# one forbidden import per contract, appended to a module of a copy of the package
MUTATIONS = {
    "batchimage/core/rbac.py": "import batchimage.sandbox_client",
    "batchimage/sandbox/tls.py": "import batchimage.spec",
    "batchimage/rehearsal.py": "import batchimage.sandbox.admin",
    "batchimage/plan.py": "import batchimage.azure.errors",  # the engine imports plan
    "batchimage/azure/guest.py": "import batchimage.steps.base",
    "batchimage/cli.py": "import azure.identity",
    "batchimage/spec/root.py": "import batchimage.steps.base",
    "batchimage/state/local.py": "import batchimage.commands.session",
}
# the engine's other half: the display, reached through a module the engine imports
DISPLAY = {"batchimage/steps/base.py": "import batchimage.ui_lines"}
# the display imported by a module of the engine package itself (not its __init__)
ENGINE_MODULE = {"batchimage/engine/walk.py": "import batchimage.ui"}
# the plan, reached by the spec through a module of core it imports (paths): core's too
PLAN = {"batchimage/core/paths.py": "import batchimage.plan"}
# the state's: the Azure SDK (an external package), and the plan through a module of core
SDK = {"batchimage/state/blob.py": "import azure.storage.blob"}
STATE_PLAN = {"batchimage/core/namelock.py": "import batchimage.plan"}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports --no-cache` in `root`, whose batchimage it checks (not an installed one)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_are_kept() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in " ".join(done.stdout.split())
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout


def mutated(tmp_path: Path, mutations: dict[str, str]) -> str:
    """`lint-imports` on a copy of the package with `mutations` appended: what it said."""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(
        REPO / "batchimage",
        tmp_path / "batchimage",
        ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.js"),
    )
    for module, line in mutations.items():
        with (tmp_path / module).open("a") as out:
            out.write(f"\n{line}\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout + done.stderr
    return done.stdout


def test_a_forbidden_import_breaks_its_contract(tmp_path: Path) -> None:
    said = mutated(tmp_path, MUTATIONS)
    for name in CONTRACTS:
        assert f"{name} BROKEN" in " ".join(said.split()), said
    assert f"Contracts: 0 kept, {len(CONTRACTS)} broken." in said


@pytest.mark.parametrize(
    ("mutations", "contracts"),
    [
        (DISPLAY, [ENGINE]),
        (ENGINE_MODULE, [ENGINE]),
        (PLAN, [SPEC, CORE]),
        (SDK, [STATE, EDGE_SDK]),  # the state imports the SDK itself: outside the edge too
        (STATE_PLAN, [STATE, CORE]),
    ],
    ids=["engine-display", "engine-module", "spec-plan", "state-sdk", "state-plan"],
)
def test_an_import_reached_through_another_module_breaks_exactly_its_contracts(
    tmp_path: Path, mutations: dict[str, str], contracts: list[str]
) -> None:
    said = mutated(tmp_path, mutations)
    for contract in contracts:
        assert f"{contract} BROKEN" in " ".join(said.split()), said
    kept = len(CONTRACTS) - len(contracts)
    assert f"Contracts: {kept} kept, {len(contracts)} broken." in said
