"""Test helper process: run `apply` (or `destroy`) over in-test steps, like the CLI does.

Usage: python pipeline_script.py WORLD STATE [--behaviour JSON] [--values JSON]
           [--yes] [--log-format text|json] [--destroy] [--secret VALUE] [--name NAME]

The pipeline is a -> b -> c plus an independent d (see fakes.Thing); behaviour per step
(sleep_s, wait_forever, crash_before_put, crash_after_put, fail_with) is given as JSON.
It goes through the same `commands.apply.run` / `commands.destroy.run` as the real CLI
(lock, plan, confirm, signals, engine, state) and exits with the CLI's exit codes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from batchimage.commands import apply, destroy
from batchimage.commands.options import Options
from batchimage.commands.session import Session
from batchimage.core.errors import BatchImageError, PermanentAzureError
from batchimage.core.redact import register_secret
from batchimage.state import Journal
from batchimage.state.local import LocalStateStore
from batchimage.steps.base import RunContext
from batchimage.ui import make_sink
from tests.engine.fakes import FakeCloud, FakeSpec, Thing, World


@dataclass
class FakeCloudSession(Session):
    """A session whose runs reach the in-test cloud through their clients (the session
    itself has none: no pipeline guard, as with a local state and no Azure)."""

    cloud: FakeCloud = field(default_factory=FakeCloud)

    def context(
        self, journal: Journal, *, offline: bool = False, refresh: bool = False
    ) -> RunContext:
        ctx = super().context(journal, offline=offline, refresh=refresh)
        ctx.clients_factory = lambda: self.cloud
        return ctx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("world")
    parser.add_argument("state")
    parser.add_argument("--behaviour", default="{}")
    parser.add_argument("--values", default="{}")
    parser.add_argument("--yes", action="store_true")
    parser.add_argument("--log-format", default="json")
    parser.add_argument("--destroy", action="store_true")
    parser.add_argument("--secret")
    parser.add_argument("--name", default="demo")
    args = parser.parse_args()

    register_secret(args.secret)
    values = json.loads(args.values)
    world = World(Path(args.world))
    behaviour = json.loads(args.behaviour)
    for key, how in behaviour.items():
        if "fail_with" in how:
            world.fail(key, "apply", PermanentAzureError(how["fail_with"], code="BadRequest"))
    a = Thing("a", values.get("a", "v1"))
    b = Thing("b", values.get("b", "v1"), deps=[a])
    c = Thing("c", values.get("c", "v1"), deps=[b])
    d = Thing("d", values.get("d", "v1"))
    opts = Options(spec_file="demo.yaml", yes=args.yes, log_format=args.log_format)
    session = FakeCloudSession(
        spec=FakeSpec(name=args.name),
        steps=[a, b, c, d],
        store=LocalStateStore(Path(args.state)),
        sink=make_sink(args.log_format),
        opts=opts,
        cloud=FakeCloud(world=world, behaviour=behaviour),
    )
    try:
        rc = destroy.run(session) if args.destroy else apply.run(session)
    except BatchImageError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    finally:
        session.close()
    sys.exit(rc)


if __name__ == "__main__":
    main()
