"""What every `nightloop` command shares: error handling, setting flags, JSON output."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Callable

import click

from daemon.agent.descriptors import label
from daemon.bridge.pairing import load_or_create_token
from daemon.core import protocol as p
from daemon.core.errors import NightloopError
from daemon.core.settings import DEFAULTS, FIELDS, Settings, config_dir, env_name, load_settings
from daemon.core.store import Episode, Store
from daemon.core.wire import to_json
from daemon.service.client import DaemonClient, DaemonUnavailable, connected
from daemon.tasks.cluster import LOCAL, Cluster


class Group(click.Group):
    """Turns our own errors (daemon/core/errors.py) into one clear line; anything else is a
    bug and keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NightloopError as exc:
            raise click.ClickException(str(exc)) from None


def setting_options(*names: str) -> Callable:
    """Decorator: a --flag for each named setting (see daemon/core/settings.py), default None
    so that only flags actually given override the config file and the environment."""
    def decorate(fn: Callable) -> Callable:
        for name in reversed(names):
            meta, default = FIELDS[name].metadata, getattr(DEFAULTS, name)
            listed = isinstance(default, tuple)     # given as "a, b, c"
            kind = click.Choice(meta["choices"]) if meta["choices"] else \
                str if listed else type(default)
            shown = ", ".join(default) if listed else repr(default) if default != "" else "empty"
            fn = click.option(f"--{name.replace('_', '-')}", name, type=kind, default=None,
                              callback=_listed if listed else None,
                              help=f"{meta['help'][0].upper()}{meta['help'][1:]} "
                                   f"[env {env_name(name)}; default {shown}].")(fn)
        return fn
    return decorate


def _listed(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple | None:
    """A comma-separated flag value as the tuple a list setting holds."""
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def ray_options(fn: Callable) -> Callable:
    """Decorator: --ray [ADDRESS] and --actors N, given to the command as `cluster` (a
    daemon.tasks.cluster.Cluster, or None without --ray)."""
    @functools.wraps(fn)
    def command(*args: Any, ray_address: str | None, actors: int, **kwargs: Any) -> Any:
        return fn(*args, cluster=Cluster(ray_address, actors) if ray_address else None,
                  **kwargs)
    command = click.option(
        "--actors", type=click.IntRange(1, 256), default=2, show_default=True,
        help="With --ray: actors at once, each a browser with the extension and a policy.",
    )(command)
    return click.option(
        "--ray", "ray_address", is_flag=False, flag_value=LOCAL, default=None,
        metavar="[ADDRESS]",
        help="Run the benchmark episodes on Ray actors (pip install 'nightloop[ray]'): a "
             "cluster's address (auto, ray://host:10001), or none for a Ray instance on this "
             "machine. This process stays the store's one writer.")(command)


def settings_from(**flags: Any) -> Settings:
    return load_settings(flags).settings


def with_store(db: str | None) -> Callable:
    """Decorator: run an async function with a read/write Store (no recovery: the daemon's job)."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        async def run(*args: Any, **kwargs: Any) -> Any:
            async with await Store.open(settings_from(db=db).db_path, recover=False) as store:
                return await fn(store, *args, **kwargs)
        return run
    return wrap


async def episode_json(store: Store, episode: Episode) -> dict:
    """An episode as `episodes show --json` gives it: its row with its steps and rewards."""
    return {**to_json(episode),
            "steps": [to_json(s) for s in await store.steps(episode.id)],
            "rewards": [to_json(r) for r in await store.rewards(episode.id)]}


def pairing_token() -> str:
    return load_or_create_token(config_dir())


@contextlib.asynccontextmanager
async def owning_daemon(db: Path, port: int) -> AsyncIterator[DaemonClient | None]:
    """The running daemon, connected, when it serves the store at `db`: it is that store's one
    writer, so a command changes the store through it. None when no daemon runs there (or it
    serves another store): then the command writes the store itself."""
    async with contextlib.AsyncExitStack() as stack:
        client: DaemonClient | None = None
        try:
            client = await stack.enter_async_context(connected(port, pairing_token()))
            status = await client.request(p.Status())
            if Path(status.db).resolve() != db.resolve():
                client = None
        except DaemonUnavailable:
            client = None
        yield client


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def run_coro(coro: Any) -> Any:
    return asyncio.run(coro)


def describe_action(action: dict | None, target: dict | None = None) -> str:
    """`click link "Orders"`, `fill textbox "Name" "Ada"`: the element by its `target`
    descriptor's role and name where there is one, else by its id."""
    if not action:
        return "(no action)"
    args = " ".join((label(target) if target else f"[{v}]") if k == "id" else
                    json.dumps(v, ensure_ascii=False)
                    for k, v in action.items() if k != "action")
    return f"{action['action']} {args}".strip()


def step_line(step: dict) -> str:
    """One line for a step as progress messages and `episodes show` print it."""
    outcome = "ok" if step["ok"] else f"error: {step.get('error')}"
    mode = f"[{step['mode']}] " if step.get("mode") else ""
    what = describe_action(step.get("action"), step.get("target"))
    return f"  {step['index']:>2}. {mode}{what} → {outcome}"
