"""The `nightloop` command: thin click commands over the daemon's library code, and output.

Errors that a user can fix come out as one line and a non-zero exit; every command has --help
ending with an example.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from daemon.bridge import launch as chromium
from daemon.bridge.pairing import EXTENSION_DIR, extension_id, write_pairing_file
from daemon.core import maintenance
from daemon.core import protocol as p
from daemon.core.errors import NightloopError
from daemon.core.observation import Observation
from daemon.core.settings import FIELDS, Settings, config_dir, data_dir
from daemon.core.store import Adapter, Store
from daemon.core.wire import to_json
from daemon.service.app import BrowserOptions, run_daemon
from daemon.service.client import DaemonUnavailable, connected
from trainer.starting import takes_starting_adapter

from .common import (
    Group,
    json_option,
    pairing_token,
    print_json,
    run_coro,
    setting_options,
    settings_from,
    step_line,
)
from .episodes import episodes_group
from .evaluate import eval_group
from .judging import judge_group
from .nights import night_command
from .review import review_command
from .secrets import secrets_group
from .settings import config_group, models_group
from .storage import store_group
from .training import adapters_group, practice_group, schedule_command, train_command


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
@click.option("--sites", is_flag=True,
              help="Also serve the bundled practice sites (a shop, a support form, a train "
                   "booking, an inbox, account settings) on 127.0.0.1; the browser opens there.")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
def daemon(with_browser: bool, headless: bool | None, profile: Path | None, sites: bool,
           verbose: bool, **flags: Any) -> None:
    """Run the daemon in the foreground (Ctrl-C stops it).

    It listens on 127.0.0.1 only, for the paired extension and for the CLI. Every setting can
    also come from config.toml or the environment (see `nightloop config show`).

    Example: nightloop daemon --browser --sites --temperature 0.25 --seed 7
    """
    import logging
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from(**flags)
    options = None
    if with_browser:
        options = BrowserOptions(profile or data_dir() / "browser-profile", _headless(headless))
    run_coro(run_daemon(settings, options, sites))


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

# `run` and `replay` stream: one JSON object a line.
json_lines_option = click.option(
    "--json", "as_json", is_flag=True,
    help="JSON Lines: {\"step\": …} as each step ends, then {\"episode\": …}.")


@cli.command()
@click.argument("task")
@click.option("--url", default=None, help="Open this URL first (in a new tab).")
@click.option("--yes", "approve", is_flag=True,
              help="Approve every sensitive action of this run (a site the task does not "
                   "name, a secret field, paying, deleting) without asking.")
@click.option("--replay", type=click.Choice(["auto", "never"]), default="never",
              show_default=True,
              help="auto: when TASK fits the task of one of your demonstrations with other "
                   "values, replay it with TASK's values (the model steps in where a target "
                   "is gone).")
@click.option("--allow-secret-in-task", "allow_secret", is_flag=True,
              help="Run TASK though it seems to hold a secret in clear (it is masked in what "
                   "is stored); better: `nightloop secrets set NAME` once and write {{NAME}}.")
@setting_options("port")
@json_lines_option
def run(task: str, url: str | None, approve: bool, replay: str, allow_secret: bool,
        port: int | None, as_json: bool) -> None:
    """Give the running daemon a TASK and follow its steps until the episode ends.

    Before a sensitive action the episode waits for your yes: asked here when this is a
    terminal, in the toolbar popup either way; without an answer in time it is denied.
    Ctrl-C asks the daemon to stop the episode. Name secrets as {{NAME}} (`nightloop secrets`):
    a task that seems to hold one in clear is refused.

    \b
    The exit status says how the episode ended:
      0  done             3  gave up          4  step limit
      5  failed           6  stopped          7  an approval was denied

    Example: nightloop run 'fill "Name" with "Ada"; click "Send"' --url http://localhost:8000/
    """
    _exit_with(run_coro(_follow(p.Task(task, source="cli", url=url, approve=approve,
                                       replay=replay, allow_secret=allow_secret),
                                settings_from(port=port).port, as_json=as_json)))


@cli.command()
@click.argument("episode_id", type=int)
@click.option("--fallback", type=click.Choice(["model", "none"]), default="model",
              show_default=True, help="Where a recorded target is not found: let the model "
                                      "decide that step, or stop with a report.")
@click.option("--url", default=None, help="Start here instead of the recorded start URL.")
@click.option("--task", "new_task", default=None,
              help="Do this task instead, with its own values: the episode's typed text, "
                   "choices and clicked names that its task text named take the new task's.")
@setting_options("port")
@json_lines_option
def replay(episode_id: int, fallback: str, url: str | None, new_task: str | None,
           port: int | None, as_json: bool) -> None:
    """Run a finished episode (a demonstration, say) again by its recorded actions, without
    the model; each step is found again by its element descriptor.

    With --task, the recorded values become the new task's: "Reply to Ada about Lunch with
    Yes" replays "Reply to Bob about Rota with No" on Bob's message. A new task that does not
    fit the recorded one is refused, naming the value it lacks (--fallback none), or left to
    the model (--fallback model).

    A step that cannot be done as recorded (its element gone, or the page refusing it) is
    left to the model (--fallback model) or ends the replay failed, saying where and why,
    before any later step runs (--fallback none). After a click or key press, and before it
    says done, the replay reads the page's answer: a form error it did not show before ends
    the replay failed, in the page's words. A password step pauses until you type it in the
    page and press Continue in the toolbar popup. Exit status as for `nightloop run`.

    Example: nightloop replay 12 --task "Reply to Bob about Rota with No" --fallback none
    """
    _exit_with(run_coro(_follow(p.Replay(episode_id, fallback, url=url, task=new_task),
                                settings_from(port=port).port, as_json=as_json)))


# How `run` and `replay` exit: how the episode ended (their --help lists it).
EXIT_STATUS = {"done": 0, "gave_up": 3, "step_limit": 4, "failed": 5, "stopped": 6,
               "interrupted": 6}
DENIED = 7          # an approval was denied, and the episode did not fail or stop otherwise


def exit_status(episode: dict, steps: list[dict]) -> int:
    """How `run` and `replay` exit for `episode` with its `steps` (as progress carries them)."""
    status = EXIT_STATUS.get(episode["status"], 1)
    denied = any((s.get("result") or {}).get("approval", {}).get("approved") is False
                 for s in steps)
    return DENIED if denied and status in (0, 3, 4) else status


def _exit_with(ended: tuple[dict, list[dict]]) -> None:
    sys.exit(exit_status(*ended))


async def _follow(request: p.Task | p.Replay, port: int, *,
                  as_json: bool) -> tuple[dict, list[dict]]:
    """Send a request that starts an episode, print its steps until it ends (as JSON Lines
    with `as_json`); return the episode and its steps."""
    def say(line: str) -> None:
        if not as_json:
            click.echo(line)

    def emit(kind: str, data: dict) -> None:
        if as_json:
            click.echo(json.dumps({kind: data}, ensure_ascii=False, default=str))
    steps: list[dict] = []
    async with connected(port, pairing_token()) as client:
        reply = await client.request(request)
        assert isinstance(reply, p.EpisodeUpdate)
        episode_id = reply.episode["id"]
        say(f"episode {episode_id} started")
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(
            client.send(p.Stop(episode_id))))
        async for message in client.messages():
            if isinstance(message, p.StepUpdate) and message.episode_id == episode_id:
                steps.append(message.step)
                say(step_line(message.step))
                emit("step", message.step)
            elif isinstance(message, p.ApprovalAsk) and message.episode_id == episode_id:
                await _answer(client, message)
            elif isinstance(message, p.EpisodeUpdate) and message.episode["id"] == episode_id:
                if message.notice:
                    say(f"  waiting for you: {message.notice}")
                if message.episode["status"] != "running":
                    say(_outcome_line(message.episode))
                    emit("episode", message.episode)
                    return message.episode, steps
    raise AssertionError("unreachable")


async def _answer(client, ask: p.ApprovalAsk) -> None:
    """Ask the user at the terminal, if there is one (the popup may answer first)."""
    click.echo(f"  needs your approval: step {ask.index} {ask.reason} on {ask.page}", err=True)
    if not sys.stdin.isatty():
        click.echo(f"  (no terminal to ask: answer in the popup within {ask.timeout:g} s)",
                   err=True)
        return
    answer = await asyncio.to_thread(
        click.prompt, "  approve? [y]es / [n]o / [a]ll of this episode", default="n",
        type=click.Choice(["y", "n", "a"]), show_choices=False, err=True)
    verdict = {"y": "approve", "a": "approve_episode", "n": "deny"}[answer]
    await client.send(p.Approval(ask.request_id, verdict))


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


def serving_line(path: str | None, adapters: list[Adapter]) -> str:
    """How status names the adapter at `path` (None: the bare model) among the store's."""
    if not path:
        return "none (the bare model)"
    for a in adapters:
        if a.path == path:
            shipped = (a.config or {}).get("source") == "shipped"
            return f"{a.id}, " + ("the shipped starting adapter" if shipped
                                  else f"{a.status} {(a.promoted_at or a.created_at)[:10]}")
    return path


def next_serving_line(settings: Settings, adapters: list[Adapter]) -> str:
    """What a daemon started with `settings` on this store would serve."""
    if settings.adapter:
        return serving_line(settings.adapter_file or None, adapters)
    if takes_starting_adapter(settings, adapters):
        return "the shipped starting adapter (registered when the daemon first starts)"
    promoted = [a for a in adapters if a.status == "promoted"]
    return serving_line(promoted[0].path if promoted else None, adapters)


@cli.command()
@setting_options("port", "db", "store_note_mb")
@json_option
def status(port: int | None, db: str | None, store_note_mb: int | None,
           as_json: bool) -> None:
    """Say whether the daemon is up, where, and what it has stored. Exits 1 when it is down.

    Example: nightloop status --json
    """
    settings = settings_from(port=port, db=db, store_note_mb=store_note_mb)

    async def go() -> dict:
        try:
            async with connected(settings.port, pairing_token(), timeout=3) as client:
                reply = await client.request(p.Status())
                assert isinstance(reply, p.Status)
                state = {"running": True, **to_json(reply)}
        except DaemonUnavailable as exc:
            state = {"running": False, "address": f"127.0.0.1:{settings.port}",
                     "db": str(settings.db_path), "counts": {}, "reason": str(exc)}
        adapters = []
        if Path(state["db"]).exists():
            async with await Store.open(Path(state["db"]), recover=False) as store:
                adapters = await store.adapters()
                if not state["running"]:
                    state["counts"] = await store.counts()
        state["adapter_serving"] = serving_line(state.get("adapter"), adapters) \
            if state["running"] else next_serving_line(settings, adapters)
        if Path(state["db"]).exists():
            found = maintenance.sizes(Path(state["db"]))
            state["store_bytes"], state["screenshot_bytes"] = found.store, found.screenshots
            if found.total > settings.store_note_mb * maintenance.MB:
                state["note"] = (f"the store and its screenshots take "
                                 f"{found.total / maintenance.MB:,.0f} MB: `nightloop store "
                                 "compact`, or keep fewer screenshots (screenshots_keep_days, "
                                 "screenshots_max_mb)")
        return state
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
        click.echo(f"adapter: {state['adapter_serving']}")
        click.echo(f"store: {state['db']}")
        counts = state.get("counts") or {}
        click.echo("episodes: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                   if counts else "none"))
        if "store_bytes" in state:
            click.echo(f"on disk: {state['store_bytes'] / maintenance.MB:,.1f} MB, screenshots "
                       f"{state['screenshot_bytes'] / maintenance.MB:,.1f} MB")
        if state.get("note"):
            click.echo(f"note: {state['note']}")
    if not state["running"]:
        sys.exit(1)


for group in (episodes_group, config_group, models_group, eval_group, judge_group,
              adapters_group, practice_group, train_command, schedule_command, review_command,
              night_command, secrets_group, store_group):
    cli.add_command(group)


def main() -> None:
    cli(prog_name="nightloop")

