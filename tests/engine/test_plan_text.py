"""The plan as text: on a terminal its lines wrap under their own text to fit the width;
for a pipe (no width) each step stays on one line for scripts to read."""

from __future__ import annotations

from batchimage.commands.plan import render_plan
from batchimage.engine.result import Change

CHANGES = [
    Change("preflight", "run_preflight", "read", "first read"),
    Change(
        "pool.p1-quickstart-b",
        "create_pool",
        "create",
        "does not exist yet (after capture.version)",
    ),
    Change(
        "customize.11",
        "run_customize",
        "create",
        "does not exist yet (after build.vm, customize.10)",
    ),
]
CHECKS = ["FAIL credentials: no token for Azure Resource Manager: no sign-in found (tried a, b, c)"]


def test_a_plan_wraps_to_the_terminal_width() -> None:
    lines = render_plan("demo", "state/demo.json", CHANGES, CHECKS, width=80).splitlines()
    assert max(len(line) for line in lines) <= 80
    step = lines.index("  + create   customize.11          does not exist yet (after build.vm,")
    assert lines[step + 1] == "                                   customize.10)"
    check = next(i for i, line in enumerate(lines) if "FAIL credentials" in line)
    assert lines[check].startswith("      FAIL credentials: ")
    assert lines[check + 1].startswith("           ")  # under the check's words


def test_a_long_key_wraps_under_a_short_indent() -> None:
    long = Change("pool." + "x" * 40, "create_pool", "create", "does not exist yet (after a, b)")
    lines = render_plan("demo", "s", [long], width=60).splitlines()
    assert max(len(line) for line in lines) <= 60
    assert lines[1:3] == [
        "  + create   pool." + "x" * 40,
        "      does not exist yet (after a, b)",
    ]


def test_without_a_width_every_step_is_one_line() -> None:
    lines = render_plan("demo", "state/demo.json", CHANGES, CHECKS).splitlines()
    assert len(lines) == 1 + 1 + len(CHECKS) + 2 + 1
    assert lines[3] == (
        "  + create   pool.p1-quickstart-b  does not exist yet (after capture.version)"
    )
