"""`nightloop review`: go through the episodes you have not rated yet, one key each.

Works in any terminal, over SSH too (no browser needed): each episode is shown as a few lines
(task, outcome, the steps in words, the rewards it has), then one key decides: ``y`` good, ``n``
bad, ``s`` skip, ``o`` open its HTML report, ``q`` quit. A verdict is stored at once as a ``user``
reward, the same row the popup's 👍/👎 writes, so the nightly cycle learns from it the same way;
with ``--notes`` each verdict takes a note. Keys typed ahead are kept; without a terminal (a
pipe), each line is one key.
"""

from __future__ import annotations

import os
import sys
import tempfile
import termios
import tty
import webbrowser
from pathlib import Path
from typing import get_args

import click

from daemon.agent.descriptors import in_words
from daemon.core.errors import NightloopError
from daemon.core.files import private_dir, write_private
from daemon.core.protocol import Source
from daemon.core.store import Episode, Reward, Step, Store

from . import report
from .common import episode_json, run_coro, setting_options, with_store

KEYS = "[y] good  [n] bad  [s] skip  [o] open report  [q] quit"
SOURCES = {"mine": ("toolbar", "cli", "replay", "demonstration"), "all": ()}
PAGE = 50                   # episodes one review session walks (the newest: run it again for more)


@click.command("review")
@click.option("--source", type=click.Choice(["mine", "all", *get_args(Source)]),
              default="mine", show_default=True,
              help="Whose episodes: mine (what you ran: toolbar, cli, replay, demonstration), "
                   "all (practice and eval too), or one source.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Only episodes started at or after this time (UTC).")
@click.option("--task", "task_text", default=None, help="Only tasks containing this text.")
@click.option("--notes", is_flag=True, help="Ask for a note after each verdict.")
@setting_options("db")
def review_command(source: str, since, task_text: str | None, notes: bool,
                   db: str | None) -> None:
    """Rate the episodes you have not rated yet, newest first, one key each.

    y: good, n: bad (stored as your verdict, like the popup's thumbs), s: skip, o: open its
    HTML report, q: quit.

    Example: nightloop review --source toolbar --since 2026-11-01
    """
    cutoff = since.strftime("%Y-%m-%dT%H:%M:%S") if since else None

    @with_store(db)
    async def pending(store: Store) -> list[Episode]:
        return await store.unrated(sources=SOURCES.get(source, (source,)), since=cutoff,
                                   task=task_text, limit=PAGE + 1)
    episodes = run_coro(pending())
    if not episodes:
        click.echo("nothing to review: every episode that matches has your verdict")
        return
    more, episodes = len(episodes) > PAGE, episodes[:PAGE]
    click.echo(f"{len(episodes)}{'+' if more else ''} episode{'s' if len(episodes) > 1 else ''}"
               f" to review, newest first{f' ({PAGE} at a time)' if more else ''}. {KEYS}")
    tally = {"good": 0, "bad": 0, "skipped": 0}
    with _Keys() as keys:
        for n, episode in enumerate(episodes, 1):
            click.echo()
            click.echo(_summary(db, episode, f"{n}/{len(episodes)}"))
            key = keys.ask(f"{KEYS} > ")
            while key == "o":
                click.echo(f"report: {_open_report(db, episode)}")
                key = keys.ask(f"{KEYS} > ")
            if key == "q":
                break
            if key == "s":
                tally["skipped"] += 1
                continue
            good = key == "y"
            note = keys.line("note (Enter: none)") if notes else None
            rate(db, episode.id, good, note)
            tally["good" if good else "bad"] += 1
            click.echo(f"saved: episode {episode.id} is {'good' if good else 'bad'}")
    click.echo(f"\nrated {tally['good'] + tally['bad']} ({tally['good']} good, "
               f"{tally['bad']} bad), skipped {tally['skipped']}")


class _Keys:
    """Single keys from the terminal: no Enter, no echo, and keys typed ahead are kept (the
    terminal is switched once, for the whole review, and restored after); from a pipe, one
    line per key. Ctrl-C, Ctrl-D and the end of input mean quit."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(self.fd) if sys.stdin.isatty() else None

    def __enter__(self) -> _Keys:
        if self.saved:
            tty.setcbreak(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved:
            termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)

    def ask(self, prompt: str) -> str:
        """One of y, n, s, o, q."""
        while True:
            click.echo(prompt, nl=False)
            try:
                if self.saved:
                    key = os.read(self.fd, 1).decode(errors="replace").lower() or "q"
                else:
                    key = (sys.stdin.readline() or "q").strip().lower()[:1]
            except KeyboardInterrupt:
                key = "q"
            key = "q" if key == "\x04" else key
            click.echo(key)
            if key and key in "ynsoq":
                return key
            click.echo(f"  press one of y, n, s, o, q (not {key!r})")

    def line(self, prompt: str) -> str | None:
        """A line of text, typed as usual (echoed, editable, ended by Enter)."""
        if self.saved:
            termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
        try:
            return click.prompt(prompt, default="", show_default=False).strip() or None
        finally:
            if self.saved:
                tty.setcbreak(self.fd, termios.TCSANOW)


def _summary(db: str | None, episode: Episode, position: str) -> str:
    """A few lines: the episode, its task, its steps in words, its answer and rewards."""
    @with_store(db)
    async def go(store: Store) -> tuple[list[Step], list[Reward]]:
        return await store.steps(episode.id), await store.rewards(episode.id)
    steps, rewards = run_coro(go())
    outcome = click.style(episode.status, fg="green" if episode.status == "done" else "red")
    lines = [click.style(f"[{position}] episode {episode.id}", bold=True)
             + f" · {episode.source} · {episode.started_at[:16].replace('T', ' ')} · {outcome}"
             + f" · {len(steps)} steps", f"  task: {episode.task}"]
    for step in steps:
        mark = click.style("✓", fg="green") if step.ok else click.style("✗", fg="red")
        why = "" if step.ok else f"  ({step.error})"
        lines.append(f"  {step.index + 1:>2}. {mark} {in_words(step.action, step.target)}{why}")
    if episode.final_answer:
        lines.append(f"  answer: {episode.final_answer}")
    if rewards:
        lines.append("  rewards: " + ", ".join(f"{r.kind} {r.value:+.2f}" for r in rewards))
    return "\n".join(lines)


def rate(db: str | None, episode_id: int, good: bool, note: str | None) -> None:
    """Store the user's verdict on an episode (NightloopError when there is no such one)."""
    @with_store(db)
    async def go(store: Store) -> None:
        if await store.episode(episode_id) is None:
            raise NightloopError(f"there is no episode {episode_id}")
        await store.add_reward(Reward.verdict(episode_id, good, "cli", note))
    run_coro(go())


def _open_report(db: str | None, episode: Episode) -> Path:
    """Write the episode's report into a private temporary folder and open it where a browser
    can be opened (over SSH the printed path is there to copy)."""
    @with_store(db)
    async def go(store: Store) -> str:
        return report.render([await episode_json(store, episode)], store.screenshots)
    path = private_dir(Path(tempfile.gettempdir()) / "nightloop-reports") / \
        f"episode-{episode.id}.html"
    write_private(path, run_coro(go()))
    webbrowser.open(path.resolve().as_uri())
    return path
