"""The `nightloop` command: thin click commands over the daemon's library code, and output.

Errors that a user can fix come out as one line and a non-zero exit; every command has --help
ending with an example.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import click

from . import browser as chromium
from . import models
from . import protocol as p
from .app import BrowserOptions, run_daemon
from .client import DaemonUnavailable, connected
from .config import DEFAULTS, FIELDS, Settings, config_dir, config_file, data_dir, env_name, \
    load_settings
from .observation import Observation
from .pairing import EXTENSION_DIR, extension_id, load_or_create_token, write_pairing_file
from .store import Episode, Store
from .wire import NightloopError, to_json


class Group(click.Group):
    """Turns our own errors into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (NightloopError, FileNotFoundError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None


def setting_options(*names: str) -> Callable:
    """Decorator: a --flag for each named setting (see daemon/config.py), default None so that
    only flags actually given override the config file and the environment."""
    def decorate(fn: Callable) -> Callable:
        for name in reversed(names):
            meta, default = FIELDS[name].metadata, getattr(DEFAULTS, name)
            kind = click.Choice(meta["choices"]) if meta["choices"] else type(default)
            shown = repr(default) if default != "" else "empty"
            fn = click.option(f"--{name.replace('_', '-')}", name, type=kind, default=None,
                              help=f"{meta['help'][0].upper()}{meta['help'][1:]} "
                                   f"[env {env_name(name)}; default {shown}].")(fn)
        return fn
    return decorate


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def _settings(**flags: Any) -> Settings:
    return load_settings(flags).settings


def _token() -> str:
    return load_or_create_token(config_dir())


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _with_store(db: str | None) -> Callable:
    """Decorator: run an async function with a read/write Store (no recovery: the daemon's job)."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        async def run(*args: Any, **kwargs: Any) -> Any:
            async with await Store.open(_settings(db=db).db_path, recover=False) as store:
                return await fn(store, *args, **kwargs)
        return run
    return wrap


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nightloop")
def cli() -> None:
    """nightloop: a local web agent that drives your own browser.

    \b
    Start it:          nightloop daemon --browser
    Give it a task:    nightloop run 'fill "Name" with "Ada"; click "Send"' --url URL
    Review its work:   nightloop episodes list
    """


# -- daemon and browser ---------------------------------------------------------------------

@cli.command()
@setting_options(*FIELDS)
@click.option("--browser", "with_browser", is_flag=True,
              help="Also start Chromium with the extension loaded and paired.")
@click.option("--headless", is_flag=True, default=None,
              help="With --browser: no window (the default when there is no display).")
@click.option("--profile", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --browser: the browser profile dir [default in the XDG data dir].")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
def daemon(with_browser: bool, headless: bool | None, profile: Path | None, verbose: bool,
           **flags: Any) -> None:
    """Run the daemon in the foreground (Ctrl-C stops it).

    It listens on 127.0.0.1 only, for the paired extension and for the CLI. Every setting can
    also come from config.toml or the environment (see `nightloop config show`).

    Example: nightloop daemon --browser --temperature 0.25 --seed 7
    """
    import logging
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(**flags)
    options = None
    if with_browser:
        options = BrowserOptions(profile or data_dir() / "browser-profile", _headless(headless))
    _run(run_daemon(settings, options))


def _headless(flag: bool | None) -> bool:
    if flag is None and not chromium.has_display():
        click.echo("No display found (DISPLAY/WAYLAND_DISPLAY unset): starting the browser "
                   "headless. Give it tasks with `nightloop run`.")
        return True
    return bool(flag)


@cli.command()
@setting_options("port")
@click.option("--headless", is_flag=True, default=None,
              help="No window (the default when there is no display).")
@click.option("--profile", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Browser profile dir [default in the XDG data dir].")
@click.option("--url", default="about:blank", help="Page to open first.")
def browser(port: int | None, headless: bool | None, profile: Path | None, url: str) -> None:
    """Start Chromium with the nightloop extension loaded and paired.

    Runs until the browser is closed (or Ctrl-C).

    Example: nightloop browser --profile ~/nightloop-profile
    """
    port = _settings(port=port).port
    profile = profile or data_dir() / "browser-profile"
    proc = chromium.launch(profile, port=port, token=_token(), headless=_headless(headless),
                           url=url)
    click.echo(f"Chromium started (pid {proc.pid}), profile {profile}; paired with port {port}.")
    # Ctrl-C or SIGTERM closes the browser too, rather than leaving it orphaned.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: proc.terminate())
    proc.wait()


@cli.command()
@setting_options("port")
def pair(port: int | None) -> None:
    """Show how to pair your own Chrome/Chromium with the daemon.

    Also writes extension/pairing.json, so an extension loaded unpacked from that folder pairs
    by itself.

    Example: nightloop pair --port 8977
    """
    token, port = _token(), _settings(port=port).port
    path = write_pairing_file(EXTENSION_DIR, port, token)
    click.echo(f"""Pair the nightloop extension with the daemon on 127.0.0.1:{port}:

  1. Open chrome://extensions, switch on Developer mode, click "Load unpacked" and choose
     {EXTENSION_DIR}
     (its id is {extension_id()}).
  2. It pairs by itself from {path.name}. If it shows "not paired", open its popup and enter
     port {port} and this token:

     {token}

The token is stored in {config_dir() / 'token'} (readable only by you).""")


# -- tasks ----------------------------------------------------------------------------------

@cli.command()
@click.argument("task")
@click.option("--url", default=None, help="Open this URL first (in a new tab).")
@setting_options("port")
@json_option
def run(task: str, url: str | None, port: int | None, as_json: bool) -> None:
    """Give the running daemon a TASK and follow its steps until the episode ends.

    Ctrl-C asks the daemon to stop the episode.

    Example: nightloop run 'fill "Name" with "Ada"; click "Send"' --url http://localhost:8000/
    """
    episode = _run(_follow(task, url, _settings(port=port).port, quiet=as_json))
    if as_json:
        _print_json(episode)


async def _follow(task: str, url: str | None, port: int, *, quiet: bool) -> dict:
    async with connected(port, _token()) as client:
        reply = await client.request(p.Task(task, source="cli", url=url))
        assert isinstance(reply, p.EpisodeUpdate)
        episode_id = reply.episode["id"]
        if not quiet:
            click.echo(f"episode {episode_id} started")
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(
            client.send(p.Stop(episode_id))))
        async for message in client.messages():
            if isinstance(message, p.StepUpdate) and message.episode_id == episode_id:
                if not quiet:
                    click.echo(_step_line(message.step))
            elif isinstance(message, p.EpisodeUpdate) and message.episode["id"] == episode_id \
                    and message.episode["status"] != "running":
                if not quiet:
                    click.echo(_outcome_line(message.episode))
                return message.episode
    raise AssertionError("unreachable")


def _describe(action: dict | None) -> str:
    if not action:
        return "(no action)"
    args = " ".join(f"[{v}]" if k == "id" else json.dumps(v, ensure_ascii=False)
                    for k, v in action.items() if k != "action")
    return f"{action['action']} {args}".strip()


def _step_line(step: dict) -> str:
    outcome = "ok" if step["ok"] else f"error: {step.get('error')}"
    return f"  {step['index']:>2}. {_describe(step.get('action'))} → {outcome}"


def _outcome_line(episode: dict) -> str:
    line = f"episode {episode['id']} ended: {episode['status']}"
    if episode.get("final_answer"):
        line += f" — {episode['final_answer']}"
    if episode.get("error"):
        line += f" ({episode['error']})"
    return line


@cli.command()
@setting_options("port")
def stop(port: int | None) -> None:
    """Stop the running episode (it ends before its next step).

    Example: nightloop stop
    """
    async def go() -> None:
        async with connected(_settings(port=port).port, _token()) as client:
            status = await client.request(p.Status())
            assert isinstance(status, p.Status)
            if not status.episode:
                raise NightloopError("no episode is running")
            await client.send(p.Stop(status.episode["id"]))
            click.echo(f"asked episode {status.episode['id']} to stop")
    _run(go())


@cli.command()
@setting_options("port")
@click.option("--tab", "tab_id", type=int, default=None,
              help="Tab id [default: the web tab used last].")
@json_option
def observe(port: int | None, tab_id: int | None, as_json: bool) -> None:
    """Print what the agent sees in a tab right now.

    Example: nightloop observe --json
    """
    async def go() -> p.Observation:
        async with connected(_settings(port=port).port, _token()) as client:
            reply = await client.request(p.Observe("", tab_id))
            assert isinstance(reply, p.Observation)
            return reply
    reply = _run(go())
    if reply.error or reply.observation is None:
        raise NightloopError(f"the page could not be observed: {reply.error}")
    if as_json:
        _print_json({"tab_id": reply.tab_id, "observation": reply.observation})
    else:
        click.echo(Observation.from_json(reply.observation).render())


@cli.command()
@setting_options("port", "db")
@json_option
def status(port: int | None, db: str | None, as_json: bool) -> None:
    """Say whether the daemon is up, where, and what it has stored. Exits 1 when it is down.

    Example: nightloop status --json
    """
    settings = _settings(port=port, db=db)

    async def go() -> dict:
        try:
            async with connected(settings.port, _token(), timeout=3) as client:
                reply = await client.request(p.Status())
                assert isinstance(reply, p.Status)
                return {"running": True, **to_json(reply)}
        except DaemonUnavailable as exc:
            local = settings.db_path
            counts = {}
            if local.exists():
                async with await Store.open(local, recover=False) as store:
                    counts = await store.counts()
            return {"running": False, "address": f"127.0.0.1:{settings.port}", "db": str(local),
                    "counts": counts, "reason": str(exc)}
    state = _run(go())
    state.pop("type", None)
    state.pop("request_id", None)
    if as_json:
        _print_json(state)
    else:
        if state["running"]:
            click.echo(f"daemon: running on {state['address']}")
            click.echo(f"browser: {'connected' if state['browser_connected'] else 'not connected'}")
            if state.get("episode"):
                click.echo(f"episode: {state['episode']['id']} running")
        else:
            click.echo(f"daemon: not running (nothing at {state['address']})")
        click.echo(f"store: {state['db']}")
        counts = state.get("counts") or {}
        click.echo("episodes: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                   if counts else "none"))
    if not state["running"]:
        sys.exit(1)


# -- episodes -------------------------------------------------------------------------------

@cli.group()
def episodes() -> None:
    """List, show, export and delete stored episodes."""


@episodes.command("list")
@setting_options("db")
@json_option
@click.option("--limit", type=click.IntRange(1), default=None, help="Newest N only.")
def list_episodes(db: str | None, as_json: bool, limit: int | None) -> None:
    """List episodes, newest first.

    Example: nightloop episodes list --limit 20
    """
    @_with_store(db)
    async def go(store: Store) -> list[Episode]:
        return await store.episodes(limit)
    rows = _run(go())
    if as_json:
        _print_json([to_json(e) for e in rows])
        return
    if not rows:
        click.echo("no episodes yet")
    for e in rows:
        click.echo(f"{e.id:>5}  {e.started_at[:19].replace('T', ' ')}  {e.status:<11} "
                   f"{e.n_steps:>3} steps  {e.source:<8} {_clip(e.task, 60)}")


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1] + "…"


async def _episode_json(store: Store, episode: Episode) -> dict:
    return {**to_json(episode),
            "steps": [to_json(s) for s in await store.steps(episode.id)],
            "rewards": [to_json(r) for r in await store.rewards(episode.id)]}


@episodes.command("show")
@click.argument("episode_id", type=int)
@setting_options("db")
@json_option
def show_episode(episode_id: int, db: str | None, as_json: bool) -> None:
    """Show one episode with its steps and rewards.

    Example: nightloop episodes show 3 --json
    """
    @_with_store(db)
    async def go(store: Store) -> dict:
        episode = await store.episode(episode_id)
        if episode is None:
            raise NightloopError(f"there is no episode {episode_id}")
        return await _episode_json(store, episode)
    data = _run(go())
    if as_json:
        _print_json(data)
        return
    click.echo(f"episode {data['id']}: {data['task']}")
    for key in ("status", "source", "start_url", "final_answer", "error", "policy", "adapter",
                "started_at", "ended_at"):
        if data.get(key) is not None:
            click.echo(f"  {key}: {data[key]}")
    click.echo(f"  steps ({len(data['steps'])}):")
    for step in data["steps"]:
        times = " ".join(f"{k[:-3]} {step[k]:.0f}ms" for k in ("observe_ms", "policy_ms", "act_ms")
                         if step.get(k) is not None)
        click.echo(f"  {_step_line(step)}  [{times}]  {step.get('url') or ''}")
        if step.get("prompt_tokens") is not None:
            click.echo(f"      tokens {step['prompt_tokens']} in ({step['cached_tokens']} cached), "
                       f"{step['completion_tokens']} out; prefill {step['prefill_ms']:.0f}ms, "
                       f"decode {step['decode_ms']:.0f}ms; seed {step['seed']}")
    for reward in data["rewards"]:
        click.echo(f"  reward {reward['kind']}: {reward['value']:+g}")


@episodes.command("export")
@click.option("--jsonl", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file [default: standard output].")
@setting_options("db")
def export_episodes(path: Path | None, db: str | None) -> None:
    """Export every episode, with steps and rewards, one JSON object per line.

    Example: nightloop episodes export --jsonl episodes.jsonl
    """
    @_with_store(db)
    async def go(store: Store) -> list[str]:
        return [json.dumps(await _episode_json(store, e), ensure_ascii=False)
                for e in reversed(await store.episodes())]
    lines = _run(go())
    if path is None:
        for line in lines:
            click.echo(line)
        return
    # Write next to the target and rename, so an interrupted export never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)
    click.echo(f"exported {len(lines)} episodes to {path}", err=True)


@episodes.command("delete")
@click.argument("episode_ids", type=int, nargs=-1)
@click.option("--before", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Delete every episode started before this date (UTC).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@setting_options("db")
def delete_episodes(episode_ids: tuple[int, ...], before: datetime | None, yes: bool,
                    db: str | None) -> None:
    """Delete episodes with all their steps and rewards.

    Example: nightloop episodes delete --before 2026-01-01
    """
    if bool(episode_ids) == bool(before):
        raise click.UsageError("give episode ids or --before DATE (one of the two)")
    cutoff = before.replace(tzinfo=timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z") if before else None
    what = f"episodes {', '.join(map(str, episode_ids))}" if episode_ids else \
        f"every episode started before {cutoff}"
    if not yes:
        click.confirm(f"Delete {what} with their steps and rewards?", abort=True)

    @_with_store(db)
    async def go(store: Store) -> int:
        return await store.delete_episodes(list(episode_ids), before=cutoff)
    click.echo(f"deleted {_run(go())} episodes")


# -- settings and models --------------------------------------------------------------------

@cli.group("config")
def config_group() -> None:
    """Show the effective settings and where each comes from."""


@config_group.command("show")
@setting_options(*FIELDS)
@json_option
def config_show(as_json: bool, **flags: Any) -> None:
    """Print every setting, its effective value and its source.

    Sources, lowest first: default, config.toml, NIGHTLOOP_* environment variables, flags.

    Example: nightloop config show --temperature 0.5
    """
    resolved = load_settings(flags)
    rows = {name: {"value": getattr(resolved.settings, name), "source": resolved.sources[name],
                   "help": FIELDS[name].metadata["help"]} for name in FIELDS}
    if as_json:
        _print_json({"config_file": str(config_file()), "settings": rows})
        return
    exists = "" if config_file().exists() else " (not created; defaults apply)"
    click.echo(f"config file: {config_file()}{exists}")
    width = max(map(len, FIELDS))
    for name, row in rows.items():
        value = json.dumps(row["value"]) if isinstance(row["value"], str) else row["value"]
        click.echo(f"{name:<{width}} = {value!s:<12}  # {row['source']}")


@cli.group("models")
def models_group() -> None:
    """List the models nightloop can use, and add your own GGUF files."""


def _model_rows(settings: Settings) -> list[dict]:
    rows, seen = [], set()

    def add(source: str, path: Path | str, check: Callable) -> None:
        try:
            info = check(path)
        except (FileNotFoundError, NightloopError) as exc:
            rows.append({"source": source, "path": str(path), "error": str(exc)})
            return
        if (source, info.path) in seen:
            return
        seen.add((source, info.path))
        rows.append({"source": source, "path": str(info.path), "kind": info.kind,
                     "name": info.name, "architecture": info.architecture,
                     "quantization": info.quantization, "size_bytes": info.size_bytes,
                     "chat_template": info.chat_template,
                     "context_length": info.context_length})

    for package, relative in models.SHIPPED:
        try:
            add("shipped", models.shipped_model(package, relative), models.check_model)
        except FileNotFoundError as exc:
            rows.append({"source": "shipped", "path": relative, "error": str(exc)})
    if settings.model:
        add("config: model", settings.model, models.check_model)
    if settings.adapter:
        add("config: adapter", settings.adapter, models.check_adapter)
    for path in models.registered():
        add("added", path, models.check_model)
    return rows


@models_group.command("list")
@json_option
def models_list(as_json: bool) -> None:
    """List shipped, configured and added models with what they are.

    Example: nightloop models list --json
    """
    rows = _model_rows(_settings())
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        if "error" in row:
            click.echo(f"{row['source']:<16} {row['path']}\n{'':<16} unusable: {row['error']}")
            continue
        template = "chat template" if row["chat_template"] else "no chat template"
        click.echo(f"{row['source']:<16} {row['name']}: {row['architecture']}, "
                   f"{row['quantization']}, {row['size_bytes'] / 1e6:.0f} MB, {template}\n"
                   f"{'':<16} {row['path']}")


@models_group.command("add")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def models_add(path: Path) -> None:
    """Check a GGUF model file and add it to the list.

    To make it the policy's model, set `model` in config.toml or pass --model to the daemon.

    Example: nightloop models add ~/models/qwen2.5-0.5b-instruct-q4_k_m.gguf
    """
    info = models.register(path)
    click.echo(f"added {info.describe()}\n  {info.path}")
    if not info.chat_template:
        click.echo("note: it has no chat template, so prompts use a plain layout; "
                   "instruction-tuned models with a template follow them better")


# -- evaluation -----------------------------------------------------------------------------

@cli.group("eval")
def eval_group() -> None:
    """Measure the agent on MiniWoB++ through the real extension, and compare runs."""


@eval_group.command("miniwob")
@click.option("--suite", type=click.Choice(["smoke", "core", "all"]), default=None,
              help="A named task list [default: smoke].")
@click.option("--tasks", default=None, help="Comma-separated task names instead of a suite.")
@click.option("--seeds", "n_seeds", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Seeds per task, the first N of the split.")
@click.option("--seed-list", default=None, help="Comma-separated seeds instead of --seeds.")
@click.option("--split", type=click.Choice(["train", "test"]), default="test",
              show_default=True, help="Which seeds: test seeds are 0, 5, 10, ...; train the rest.")
@click.option("--max-steps", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Steps per episode.")
@click.option("--parallel", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Episodes at once, each in its own tab.")
@click.option("--policy", "policy_name", type=click.Choice(["llm", "oracle"]), default="llm",
              show_default=True, help="The local model, or the scripted teacher (a few tasks).")
@click.option("--source", type=click.Choice(["eval", "practice"]), default="eval",
              show_default=True, help="How the episodes are labelled in the store.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder [default: eval/<time>-<policy> in the XDG data dir].")
@json_option
@setting_options("model", "adapter", "n_ctx", "threads", "temperature", "seed", "obs_tokens",
                 "history", "step_timeout", "db")
def eval_miniwob(suite: str | None, tasks: str | None, n_seeds: int, seed_list: str | None,
                 split: str, max_steps: int, parallel: int, policy_name: str, source: str,
                 out: Path | None, as_json: bool, **flags: Any) -> None:
    """Run MiniWoB++ tasks through the daemon, the extension and a headless Chromium.

    Each episode's ground truth (the page's own reward) is stored as a `ground_truth` reward;
    success means a raw reward above 0. Ctrl-C stops and keeps what finished.

    Example: nightloop eval miniwob --suite core --seeds 5 --split test --parallel 2
    """
    from . import eval_report, miniwob
    from .app import make_policy
    from .evaluation import EvalPlan, evaluate
    from .oracle import OraclePolicy

    if suite and tasks:
        raise click.UsageError("give --suite or --tasks, not both")
    names = miniwob.check_tasks([t.strip() for t in tasks.split(",") if t.strip()]) if tasks \
        else miniwob.suite(suite or "smoke")
    seeds = _seed_list(seed_list, split) if seed_list else miniwob.seeds(split, n_seeds)
    settings = _settings(**flags)
    policy = OraclePolicy() if policy_name == "oracle" else \
        make_policy(dataclasses.replace(settings, policy="llm"))
    plan = EvalPlan(names, seeds, max_steps=max_steps, parallel=parallel,
                    step_timeout=settings.step_timeout, source=source)
    out = out or data_dir() / "eval" / f"{datetime.now():%Y%m%d-%H%M%S}-{policy_name}"
    meta = {"policy": policy.name, "adapter": policy.adapter, "split": split,
            "seeds": seeds, "max_steps": max_steps, "parallel": parallel,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    results: list = []
    total = len(names) * len(seeds)

    def progress(result) -> None:
        results.append(result)
        if not as_json:
            outcome = "success" if result.success else f"fail ({result.error or result.status})"
            click.echo(f"[{len(results)}/{total}] {result.task} seed {result.seed}: {outcome}, "
                       f"{result.steps} steps, {result.seconds:.1f} s", err=True)

    started = time.perf_counter()
    try:
        _run(evaluate(plan, policy=policy, db=settings.db_path, on_result=progress))
    except KeyboardInterrupt:
        meta["interrupted"] = True
        click.echo("interrupted: the report covers the episodes that finished", err=True)
    finally:
        results.sort(key=lambda r: (names.index(r.task), seeds.index(r.seed)))
        meta["seconds"] = round(time.perf_counter() - started, 1)
        meta["episodes_per_minute"] = round(len(results) / meta["seconds"] * 60, 1) \
            if meta["seconds"] else None
        eval_report.write_run(out, results, meta)
    if as_json:
        _print_json(json.loads((out / eval_report.RESULTS).read_text()))
    else:
        click.echo(eval_report.markdown(eval_report.summarize(results), meta))
        click.echo(f"report: {out / 'report.md'}, chart: {out / 'success.png'}")


def _seed_list(text: str, split: str) -> list[int]:
    from . import miniwob
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers",
                                 param_hint="--seed-list") from None
    wrong = [s for s in seeds if s < 0 or miniwob.split_of(s) != split]
    if wrong:
        raise click.BadParameter(f"seeds {wrong} are not {split} seeds (test seeds are the "
                                 "multiples of 5, train seeds the rest)", param_hint="--seed-list")
    return seeds


@eval_group.command("compare")
@click.argument("run_a", type=click.Path(file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(file_okay=False, path_type=Path))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Chart of the differences [default: RUN_B/compare.png].")
@json_option
def eval_compare(run_a: Path, run_b: Path, plot_path: Path | None, as_json: bool) -> None:
    """Per-task success of two evaluation runs and their difference (B minus A).

    Example: nightloop eval compare runs/base runs/adapter-3
    """
    from . import eval_report
    meta_a, a = eval_report.load_run(run_a)
    meta_b, b = eval_report.load_run(run_b)
    diffs = eval_report.compare(a, b)
    plot_path = plot_path or run_b / "compare.png"
    eval_report.plot_compare(diffs, plot_path, run_a.name, run_b.name)
    if as_json:
        _print_json([{"task": d.task, "a": d.rate_a, "b": d.rate_b, "diff": d.diff}
                     for d in diffs])
        return

    def fmt(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"
    click.echo(f"A: {run_a} ({meta_a.get('policy')})\nB: {run_b} ({meta_b.get('policy')})")
    click.echo(f"{'task':<28} {'A':>5} {'B':>5} {'B-A':>6}")
    for d in diffs:
        diff = "—" if d.diff is None else f"{d.diff:+.2f}"
        click.echo(f"{d.task:<28} {fmt(d.rate_a):>5} {fmt(d.rate_b):>5} {diff:>6}")
    click.echo(f"chart: {plot_path}")


def main() -> None:
    cli(prog_name="nightloop")

