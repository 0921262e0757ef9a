"""`nightloop episodes`: list, show, report, rate, export and delete what the store holds."""

from __future__ import annotations

import json
import webbrowser
from datetime import datetime, timezone
from pathlib import Path

import click

from daemon.agent.descriptors import label
from daemon.core.errors import NightloopError
from daemon.core.files import write_private
from daemon.core.screenshots import Screenshots
from daemon.core.store import Episode, Store
from daemon.core.wire import to_json
from judge.reward import explain

from . import report
from .common import (
    episode_json,
    json_option,
    print_json,
    run_coro,
    setting_options,
    step_line,
    with_store,
)
from .review import rate


@click.group("episodes")
def episodes_group() -> None:
    """List, show, export and delete stored episodes."""


@episodes_group.command("list")
@setting_options("db")
@json_option
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True,
              help="Newest N only (a page).")
@click.option("--before", type=click.IntRange(1), default=None,
              help="Those older than this episode id (the next page).")
def list_episodes(db: str | None, as_json: bool, limit: int, before: int | None) -> None:
    """List episodes, newest first, a page at a time.

    Example: nightloop episodes list --limit 20 --before 1200
    """
    @with_store(db)
    async def go(store: Store) -> list[Episode]:
        return await store.episodes(limit + 1, before)
    rows = run_coro(go())
    more, rows = len(rows) > limit, rows[:limit]
    if as_json:
        print_json([to_json(e) for e in rows])
        return
    if not rows:
        click.echo("no episodes yet" if before is None else f"none before {before}")
    for e in rows:
        click.echo(f"{e.id:>5}  {e.started_at[:19].replace('T', ' ')}  {e.status:<11} "
                   f"{e.n_steps:>3} steps  {e.source:<13} {_clip(e.task, 60)}")
    if more:
        click.echo(f"older: nightloop episodes list --before {rows[-1].id}")


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1] + "…"


@episodes_group.command("show")
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
        return await episode_json(store, episode)
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
        click.echo(f"  {step_line(step)}  [{times}]  {step.get('url') or ''}")
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
        if step.get("screenshot"):
            click.echo(f"      screenshot: {_screenshot_line(step['screenshot'])}")
    for reward in data["rewards"]:
        click.echo(f"  reward {reward['kind']}: {reward['value']:+g}{_reward_parts(reward)}")


def _screenshot_line(shot: dict) -> str:
    if "file" not in shot:
        return f"none ({shot['skipped']})"
    covered = f", {shot['covered']} secret fields painted over" if shot.get("covered") else ""
    size = f"{shot['width']}×{shot['height']}, {shot['bytes'] / 1000:.0f} kB"
    return f"{shot['file']} ({size}{covered})"


def _reward_parts(reward: dict) -> str:
    """`  = 2 × p(success) 0.83 − 1 (…)   (likelihood, SmolLM2…; 0.4 s)` for a judge reward;
    '' for others."""
    details = reward.get("details") or {}
    if reward["kind"] != "judge" or not explain(details):
        return ""
    flip = details.get("flip", {})
    how = f"{flip.get('form')}, {flip.get('model')}"
    if "inferred" in flip:
        how += f", inferred {flip['inferred'][0]!r}"
    return f"  {explain(details)}   ({how}; {details.get('seconds', 0):.1f} s)"


@episodes_group.command("export")
@click.option("--jsonl", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file [default: standard output].")
@setting_options("db")
def export_episodes(path: Path | None, db: str | None) -> None:
    """Export every episode, with steps and rewards, one JSON object per line.

    Example: nightloop episodes export --jsonl episodes.jsonl
    """
    @with_store(db)
    async def go(store: Store) -> list[str]:
        return [json.dumps(await episode_json(store, e), ensure_ascii=False)
                for e in reversed(await store.episodes())]
    lines = run_coro(go())
    if path is None:
        for line in lines:
            click.echo(line)
        return
    write_private(path, "".join(line + "\n" for line in lines))
    click.echo(f"exported {len(lines)} episodes to {path}", err=True)


@episodes_group.command("report")
@click.argument("episode_ids", type=int, nargs=-1, required=True)
@click.option("--out", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file [default: nightloop-episode-ID.html here].")
@click.option("--open", "open_it", is_flag=True, help="Open it in your default browser.")
@setting_options("db")
def report_episodes(episode_ids: tuple[int, ...], path: Path | None, open_it: bool,
                    db: str | None) -> None:
    """Write episodes as one HTML file that opens offline: the task, outcome and rewards, then
    every step with its screenshot (the target outlined), the action in words, its result,
    timings and the model's output. Several ids: one report with an index.

    Example: nightloop episodes report 12 13 --open
    """
    @with_store(db)
    async def go(store: Store) -> tuple[list[dict], Screenshots]:
        found = []
        for episode_id in dict.fromkeys(episode_ids):
            episode = await store.episode(episode_id)
            if episode is None:
                raise NightloopError(f"there is no episode {episode_id}")
            found.append(await episode_json(store, episode))
        return found, store.screenshots
    episodes, screenshots = run_coro(go())
    if path is None:
        path = Path(f"nightloop-episode-{'-'.join(str(e['id']) for e in episodes[:3])}"
                    f"{'-etc' if len(episodes) > 3 else ''}.html")
    write_private(path, report.render(episodes, screenshots))
    click.echo(f"wrote {path} ({len(episodes)} episode{'s' if len(episodes) > 1 else ''})")
    if open_it:
        webbrowser.open(path.resolve().as_uri())


@episodes_group.command("rate")
@click.argument("episode_id", type=int)
@click.argument("verdict", type=click.Choice(["up", "down"]))
@click.option("--note", default=None, help="Why, in a few words (kept with the verdict).")
@setting_options("db")
def rate_episode(episode_id: int, verdict: str, note: str | None, db: str | None) -> None:
    """Give your verdict on an episode, as the popup's 👍/👎 does: the nightly cycle learns
    from it the same way (the newest verdict counts).

    Example: nightloop episodes rate 12 down --note "booked the wrong date"
    """
    rate(db, episode_id, verdict == "up", note)
    click.echo(f"episode {episode_id}: {'👍 good' if verdict == 'up' else '👎 bad'}"
               + (f" ({note})" if note else ""))


@episodes_group.command("delete")
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
