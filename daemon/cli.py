"""The `nightloop` command: thin click commands over the daemon's library code, and output.

Errors that a user can fix come out as one line and a non-zero exit; every command has --help
ending with an example.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from . import browser as chromium
from . import protocol as p
from .app import BrowserOptions, run_daemon
from .cli_common import Group, json_option, pairing_token, print_json, run_coro, with_store, \
    setting_options, settings_from
from .cli_eval import eval_group
from .cli_judge import judge_group
from .cli_settings import config_group, models_group
from .cli_train import adapters_group, practice_group, schedule_command, train_command
from .client import DaemonUnavailable, connected
from .config import FIELDS, config_dir, data_dir
from .descriptors import label
from .observation import Observation
from .pairing import EXTENSION_DIR, extension_id, write_pairing_file
from .store import Episode, Store
from .wire import NightloopError, to_json


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
    settings = settings_from(**flags)
    options = None
    if with_browser:
        options = BrowserOptions(profile or data_dir() / "browser-profile", _headless(headless))
    run_coro(run_daemon(settings, options))


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
    port = settings_from(port=port).port
    profile = profile or data_dir() / "browser-profile"
    proc = chromium.launch(profile, port=port, token=pairing_token(), headless=_headless(headless),
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
    token, port = pairing_token(), settings_from(port=port).port
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
    episode = run_coro(_follow(p.Task(task, source="cli", url=url), settings_from(port=port).port,
                               quiet=as_json))
    if as_json:
        print_json(episode)


@cli.command()
@click.argument("episode_id", type=int)
@click.option("--fallback", type=click.Choice(["model", "none"]), default="model",
              show_default=True, help="Where a recorded target is not found: let the model "
                                      "decide that step, or stop with a report.")
@click.option("--url", default=None, help="Start here instead of the recorded start URL.")
@setting_options("port")
@json_option
def replay(episode_id: int, fallback: str, url: str | None, port: int | None,
           as_json: bool) -> None:
    """Run a finished episode (a demonstration, say) again by its recorded actions, without
    the model; each step is found again by its element descriptor.

    A step whose element is gone uses the model (--fallback model) or ends the replay with a
    report of where and why (--fallback none). A password step pauses until you type it in
    the page and press Continue in the toolbar popup.

    Example: nightloop replay 12 --fallback none
    """
    episode = run_coro(_follow(p.Replay(episode_id, fallback, url=url),
                               settings_from(port=port).port, quiet=as_json))
    if as_json:
        print_json(episode)


async def _follow(request: p.Task | p.Replay, port: int, *, quiet: bool) -> dict:
    """Send a request that starts an episode, print its steps until it ends, return it."""
    async with connected(port, pairing_token()) as client:
        reply = await client.request(request)
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
            elif isinstance(message, p.EpisodeUpdate) and message.episode["id"] == episode_id:
                if message.notice and not quiet:
                    click.echo(f"  waiting for you: {message.notice}")
                if message.episode["status"] != "running":
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
    mode = f"[{step['mode']}] " if step.get("mode") else ""
    return f"  {step['index']:>2}. {mode}{_describe(step.get('action'))} → {outcome}"


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
        async with connected(settings_from(port=port).port, pairing_token()) as client:
            status = await client.request(p.Status())
            assert isinstance(status, p.Status)
            if not status.episode:
                raise NightloopError("no episode is running")
            await client.send(p.Stop(status.episode["id"]))
            click.echo(f"asked episode {status.episode['id']} to stop")
    run_coro(go())


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
        async with connected(settings_from(port=port).port, pairing_token()) as client:
            reply = await client.request(p.Observe("", tab_id))
            assert isinstance(reply, p.Observation)
            return reply
    reply = run_coro(go())
    if reply.error or reply.observation is None:
        raise NightloopError(f"the page could not be observed: {reply.error}")
    if as_json:
        print_json({"tab_id": reply.tab_id, "observation": reply.observation})
    else:
        click.echo(Observation.from_json(reply.observation).render())


@cli.command()
@setting_options("port", "db")
@json_option
def status(port: int | None, db: str | None, as_json: bool) -> None:
    """Say whether the daemon is up, where, and what it has stored. Exits 1 when it is down.

    Example: nightloop status --json
    """
    settings = settings_from(port=port, db=db)

    async def go() -> dict:
        try:
            async with connected(settings.port, pairing_token(), timeout=3) as client:
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
    state = run_coro(go())
    state.pop("type", None)
    state.pop("request_id", None)
    if as_json:
        print_json(state)
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
    @with_store(db)
    async def go(store: Store) -> list[Episode]:
        return await store.episodes(limit)
    rows = run_coro(go())
    if as_json:
        print_json([to_json(e) for e in rows])
        return
    if not rows:
        click.echo("no episodes yet")
    for e in rows:
        click.echo(f"{e.id:>5}  {e.started_at[:19].replace('T', ' ')}  {e.status:<11} "
                   f"{e.n_steps:>3} steps  {e.source:<13} {_clip(e.task, 60)}")


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
    @with_store(db)
    async def go(store: Store) -> dict:
        episode = await store.episode(episode_id)
        if episode is None:
            raise NightloopError(f"there is no episode {episode_id}")
        return await _episode_json(store, episode)
    data = run_coro(go())
    if as_json:
        print_json(data)
        return
    click.echo(f"episode {data['id']}: {data['task']}")
    for key in ("status", "source", "replay_of", "start_url", "final_answer", "error", "policy",
                "adapter", "started_at", "ended_at"):
        if data.get(key) is not None:
            click.echo(f"  {key}: {data[key]}")
    click.echo(f"  steps ({len(data['steps'])}):")
    for step in data["steps"]:
        times = " ".join(f"{k[:-3]} {step[k]:.0f}ms" for k in ("observe_ms", "policy_ms", "act_ms")
                         if step.get(k) is not None)
        click.echo(f"  {_step_line(step)}  [{times}]  {step.get('url') or ''}")
        if step.get("target"):
            target = step["target"]
            extra = ", ".join(f"{k} {target[k]!r}" for k in ("text", "label", "path")
                              if target.get(k))
            click.echo(f"      target: {label(target)} #{target.get('nth', 0)}"
                       + (f" ({extra})" if extra else ""))
        if step.get("prompt_tokens") is not None:
            click.echo(f"      tokens {step['prompt_tokens']} in ({step['cached_tokens']} cached), "
                       f"{step['completion_tokens']} out; prefill {step['prefill_ms']:.0f}ms, "
                       f"decode {step['decode_ms']:.0f}ms; seed {step['seed']}")
    for reward in data["rewards"]:
        click.echo(f"  reward {reward['kind']}: {reward['value']:+g}{_reward_parts(reward)}")


def _reward_parts(reward: dict) -> str:
    """` = 0.7 × flip 0.81 (…) + 0.3 × progress 0.2` for a judge reward; '' for others."""
    details = reward.get("details") or {}
    if reward["kind"] != "judge" or "components" not in details:
        return ""
    weights, parts = details["weights"], details["components"]
    flip = details.get("flip", {})
    how = f"{flip.get('form')}, {flip.get('model')}"
    if "inferred" in flip:
        how += f", inferred {flip['inferred'][0]!r}"
    return (f"  = {weights['flip']:g} × (2·flip {parts['flip']:.2f} − 1) "
            f"+ {weights['progress']:g} × progress {parts['progress']:+.2f}   ({how}; "
            f"{details.get('seconds', 0):.1f} s)")


@episodes.command("export")
@click.option("--jsonl", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file [default: standard output].")
@setting_options("db")
def export_episodes(path: Path | None, db: str | None) -> None:
    """Export every episode, with steps and rewards, one JSON object per line.

    Example: nightloop episodes export --jsonl episodes.jsonl
    """
    @with_store(db)
    async def go(store: Store) -> list[str]:
        return [json.dumps(await _episode_json(store, e), ensure_ascii=False)
                for e in reversed(await store.episodes())]
    lines = run_coro(go())
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

    @with_store(db)
    async def go(store: Store) -> int:
        return await store.delete_episodes(list(episode_ids), before=cutoff)
    click.echo(f"deleted {run_coro(go())} episodes")


for group in (config_group, models_group, eval_group, judge_group, adapters_group,
              practice_group, train_command, schedule_command):
    cli.add_command(group)


def main() -> None:
    cli(prog_name="nightloop")

