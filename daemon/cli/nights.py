"""`nightloop night`: what the last night (or an earlier one) did, in words, as JSON, or as an
HTML report that opens offline (trainer/night.py builds it from the store)."""

from __future__ import annotations

import webbrowser
from datetime import datetime
from pathlib import Path

import click

from daemon.core.errors import NotFound
from daemon.core.files import write_private
from daemon.core.screenshots import Screenshots
from daemon.core.store import Store
from daemon.service import schedule
from trainer.night import NightReport, curve, history, last_report

from . import night_report
from . import report as episode_report
from .common import (
    episode_json,
    json_option,
    print_json,
    run_coro,
    setting_options,
    settings_from,
    with_store,
)


@click.command("night")
@click.option("--id", "night_id", type=click.IntRange(1), default=None,
              help="An earlier night, by its number [default: the last one].")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="Write the HTML report to this file, and the night's practice of your "
                   "tasks to FILE-episodes.html beside it (both open offline).")
@click.option("--open", "open_it", is_flag=True, help="Open the HTML report (with --report).")
@json_option
@setting_options("db", "train_at")
def night_command(night_id: int | None, report_path: Path | None, open_it: bool,
                  as_json: bool, db: str | None, train_at: str | None) -> None:
    """What a night of learning did: when it ran, what it practised and how that went, what it
    trained on, the gate per task (the candidate against the adapter serving then), whether
    the new adapter was promoted and why, and anything that failed.

    `nightloop adapters rollback` undoes a night whose adapter serves (the popup's "Undo last
    night" does the same through the daemon).

    Example: nightloop night --report night.html --open
    """
    settings = settings_from(db=db, train_at=train_at)

    @with_store(db)
    async def go(store: Store) -> tuple[NightReport, list, dict, dict[str, list[dict]]]:
        found = await last_report(store, night_id)
        if found is None:
            raise NotFound(f"there is no night {night_id}" if night_id else
                           "no night has run yet: `nightloop train --now`, or set train_at")
        nights = await store.nights()
        practice = await _practice_episodes(store, found) if report_path else {}
        return found, curve(nights), await history(store, nights), practice
    found, points, tasks, practice = run_coro(go())
    due = schedule.upcoming(settings)
    data = {**found.to_json(), "curve": points, "history": tasks,
            "next_run": due.isoformat(timespec="minutes") if due else None}
    if report_path:
        _write_report(report_path, data, practice, settings)
        if open_it:
            webbrowser.open(report_path.resolve().as_uri())
    if as_json:
        print_json(data)
        return
    for line in describe(found, data["next_run"]):
        click.echo(line)
    if report_path:
        click.echo(f"wrote {report_path}")


async def _practice_episodes(store: Store, found: NightReport) -> dict[str, list[dict]]:
    """The night's practice of the user's tasks, by task, as the episode report takes them."""
    night, mine = found.night, {e["task"] for e in (found.night.practice or {}).get("yours", [])}
    by_task: dict[str, list[dict]] = {}
    for episode in await store.episodes_after(night.after_episode, night.last_episode):
        if episode.source == "practice" and episode.task in mine:
            by_task.setdefault(episode.task, []).append(await episode_json(store, episode))
    return by_task


def _write_report(path: Path, data: dict, practice: dict[str, list[dict]], settings) -> None:
    episodes = [e for shown in practice.values() for e in shown]
    companion = path.with_name(f"{path.stem}-episodes.html") if episodes else None
    if companion:
        write_private(companion, episode_report.render(
            episodes, Screenshots(settings.db_path),
            title=f"nightloop night {data['night']['id']}: practice of your tasks"))
    write_private(path, night_report.render(data, {task: [e["id"] for e in shown]
                                                   for task, shown in practice.items()},
                                            companion.name if companion else None))


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def describe(found: NightReport, next_run: str | None) -> list[str]:
    """The report in lines for a terminal."""
    night = found.night
    lines = [f"night {night.id}: {_when(night.started_at, night.ended_at)}, {night.status}",
             found.outcome]
    if found.short:
        lines.append(f"  {found.short}")
    practice = night.practice or {}
    for entry in practice.get("yours", []):
        lines.append(f"  practised {entry['task']!r}: {entry['succeeded']} of "
                     f"{entry['episodes']} succeeded (judge's mean p {_percent(entry['p'])})")
    parts = [f"{name} {v['succeeded']} of {v['episodes']} on {v['tasks']} tasks"
             for name, v in practice.items() if isinstance(v, dict)]
    if parts:
        lines.append("  practised " + "; ".join(parts))
    if practice.get("failed_to_run"):
        lines.append(f"  {practice['failed_to_run']} practice episodes failed to run")
    training = night.training
    if training:
        sources = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in
                            training["sft_episodes"].items())
        lines.append(f"  trained on {training['sft_samples']} SFT samples ({sources or 'none'}"
                     f"), {training['groups']} GRPO groups; your verdicts among them: "
                     f"{training['thumbs_up']} up, {training['thumbs_down']} down")
    for change in found.changes:
        if change.yours:
            lines.append(f"  {'your task' if not change.held_out else 'held out'} "
                         f"{change.task!r}: judge's p {_percent(change.before)} → "
                         f"{_percent(change.after)} ({change.mark})")
    gate = night.gate
    if gate:
        moved = [c for c in found.changes if not c.yours and c.mark != "same"]
        lines.append(f"  gate: {gate['candidate']['success']:.3f} vs serving "
                     f"{gate['serving']['success']:.3f} on {gate['candidate']['n']} paired "
                     f"episodes; " + (", ".join(f"{c.task} {_percent(c.before)} → "
                                                f"{_percent(c.after)}" for c in moved)
                                      or "no task moved"))
    if night.decision:
        lines.append(f"  {night.decision}")
    if night.judge and night.judge.get("calibration"):
        lines.append(f"  judge: {night.judge['judged']} episodes scored; "
                     f"{night.judge['calibration']}")
    if found.can_undo:
        lines.append("  undo it: nightloop adapters rollback")
    lines.append(f"next night: {next_run or 'not scheduled (set train_at, e.g. 03:00)'}")
    return lines


def _when(started: str, ended: str | None) -> str:
    """Local time and length: ``2026-12-07 03:00, 121 min``."""
    start = datetime.fromisoformat(started).astimezone()
    if not ended:
        return f"started {start:%Y-%m-%d %H:%M}"
    minutes = (datetime.fromisoformat(ended).astimezone() - start).total_seconds() / 60
    return f"{start:%Y-%m-%d %H:%M}, {minutes:.0f} min"

