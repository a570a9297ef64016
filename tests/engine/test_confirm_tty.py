"""On a real pseudo-terminal `batchimage apply FILE` shows the plan and asks; `n` changes
nothing (zero sandbox writes, no step done) and exits 1, `y` applies. `batchimage destroy
FILE` lists what will go and asks likewise; `n` deletes nothing, `y` deletes."""

from __future__ import annotations

from pathlib import Path

from batchimage.spec import load_spec
from batchimage.state import StepStatus
from tests.engine.sandbox_cli import ci_env
from tests.engine.sandbox_pipeline import admin, cloud, pools  # noqa: F401
from tests.engine.terminal import Terminal
from tests.pools.harness import PoolHarness


def test_apply_and_destroy_ask_on_a_terminal(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    spec = pools.spec("quickstart.yaml")
    env = ci_env(sandbox_folder)
    name = spec.stem
    pool_id = load_spec(spec).pools[0].id

    pools.admin.reset_counters()
    refused = Terminal(spec.parent, env, "apply", spec.name)
    screen = refused.expect("Apply these changes?")
    assert f"plan for {name}" in screen and "capture.version" in screen
    assert "to create" in screen
    refused.answer("n")
    assert refused.finish() == 1, refused.output
    assert "apply cancelled; nothing was changed" in refused.output
    assert pools.admin.counters()["writes"] == 0
    state = pools.store(spec).read()
    assert state is None or not any(s.status == StepStatus.DONE for s in state.steps.values())

    accepted = Terminal(spec.parent, env, "apply", spec.name)
    accepted.expect("Apply these changes?")
    accepted.answer("y")
    assert accepted.finish() == 0, accepted.output
    assert "apply complete" in accepted.output
    version_id = pools.outputs(spec, "capture.version")["version_id"]
    assert pools.resource(version_id) is not None

    pools.admin.reset_counters()
    kept = Terminal(spec.parent, env, "destroy", spec.name)
    screen = kept.expect("Delete these resources?")
    assert f"destroy {name} will delete" in screen and version_id in screen
    kept.answer("n")
    assert kept.finish() == 1, kept.output
    assert "destroy cancelled; nothing was deleted" in kept.output
    assert pools.admin.counters()["writes"] == 0
    assert pools.resource(version_id) is not None
    assert pools.pool_ids(pool_id)

    deleted = Terminal(spec.parent, env, "destroy", spec.name)
    deleted.expect("Delete these resources?")
    deleted.answer("y")
    assert deleted.finish() == 0, deleted.output
    assert "destroy complete" in deleted.output
    assert pools.resource(version_id) is None
    assert pools.pool_ids(pool_id) == []
