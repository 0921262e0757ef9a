"""`nightloop train`, `adapters`, `practice` and `schedule`: learning cycles, the adapters
they produce, which user tasks they may repeat, and when the daemon runs the next one."""

from __future__ import annotations

import dataclasses
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from daemon.core import protocol as p
from daemon.core.store import PracticeRule, Store
from daemon.service import schedule
from daemon.service.adapters import change_adapter
from daemon.service.client import DaemonError, DaemonUnavailable, connected
from daemon.tasks import miniwob
from daemon.tasks.cluster import Cluster
from daemon.tasks.practice import practice_tasks, rule_for, set_rule
from daemon.tasks.sites.templates import parse_templates
from trainer.config import CyclePlan, TrainConfig
from trainer.night import history

from .common import (
    json_option,
    owning_daemon,
    pairing_token,
    print_json,
    ray_options,
    run_coro,
    setting_options,
    settings_from,
    with_store,
)


def _print_config_help(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(TrainConfig().help())
        ctx.exit()


@click.group("train", invoke_without_command=True)
@click.option("--config-help", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_config_help,
              help="List every training setting a --config file may set, with its default.")
@click.option("--now", is_flag=True,
              help="Run one full cycle now: practice, judge, SFT/GRPO, export, gate, promote.")
@click.option("--budget", type=click.FloatRange(1, 24 * 60), default=None,
              help="Minutes the whole cycle may take; each phase stops cleanly at its share "
                   "[default: the train_budget setting, the nightly cycle's].")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path), default=None,
              help="TOML file overriding training settings (names: --config-help).")
@click.option("--tasks", default="",
              help="Comma-separated MiniWoB++ tasks to practise, teach and gate on "
                   "[default: every DOM-level task].")
@click.option("--sites", default="auto",
              help="Comma-separated templates of the bundled sites (or sites, for all of "
                   "theirs) to practise beside MiniWoB++, with their ground truth; auto: those "
                   "your demonstrations fit; none: no sites [default: auto].")
@click.option("--seeds", "n_seeds", type=click.IntRange(0, 100),
              default=CyclePlan.practice_seeds, show_default=True,
              help="Train seeds per task to practise, each attempted `practice_k` times, after "
                   "the last seed an earlier cycle practised; 0: as many as practice's time "
                   "allows.")
@click.option("--gate-seeds", type=click.IntRange(0, 1000), default=CyclePlan.gate_seeds,
              show_default=True,
              help="Validation seeds per task the gate runs with the candidate and the serving "
                   "adapter; 0: enough for the config's gate_episodes, as many as time fits.")
@click.option("--teacher-seeds", type=click.IntRange(0, 1000), default=CyclePlan.teacher_seeds,
              show_default=True,
              help="Train seeds per task the scripted teacher demonstrates for SFT (0: none).")
@click.option("--fresh", is_flag=True,
              help="Start over instead of going on with an interrupted cycle.")
@click.option("--screenshots", is_flag=True,
              help="Keep a screenshot of each practice step (slower; off so nights stay fast).")
@ray_options
@json_option
@setting_options("model", "threads", "judge_model", "max_steps", "db", "port")
@click.pass_context
def train_command(ctx: click.Context, now: bool, budget: float | None,
                  config_file: Path | None, tasks: str, sites: str, n_seeds: int,
                  gate_seeds: int, teacher_seeds: int, fresh: bool, screenshots: bool,
                  cluster: Cluster | None, as_json: bool, **flags: Any) -> None:
    """Run a learning cycle on this machine and promote the new adapter if it passes the gate.

    Practice covers MiniWoB++ tasks and your newest practice-safe tasks (`nightloop practice`).
    The candidate is promoted only on evidence: more paired MiniWoB++ validation seeds solved than
    the serving adapter (the config's gate_promote), and no loss beyond the margin on your
    held-out tasks once there are enough of them; a running daemon switches to a promoted
    adapter at once, between episodes. An interrupted
    cycle goes on from its last finished phase the next time.

    `nightloop train export` writes what a cycle would learn from, for a trainer elsewhere.

    With --ray, practice's and the gate's benchmark episodes run on Ray actors; your own tasks,
    the judge and training stay here, and this process stays the store's one writer.

    Example: nightloop train --now --budget 30 (on a Ray cluster: --ray auto --actors 8)
    """
    if ctx.invoked_subcommand:
        return
    if not now:
        raise click.UsageError("say --now to run a cycle now (or `nightloop train export`)")
    config = TrainConfig.from_toml(config_file) if config_file else TrainConfig()
    try:
        templates = None if sites == "auto" else () if sites == "none" else \
            tuple(parse_templates(sites))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sites") from None
    plan = CyclePlan(tuple(miniwob.parse_tasks(tasks)) if tasks else (), templates, n_seeds,
                     gate_seeds, teacher_seeds=teacher_seeds, screenshots=screenshots,
                     cluster=cluster)
    if cluster and screenshots:
        raise click.UsageError("screenshots stay on the node that took them: leave out "
                               "--screenshots with --ray")
    settings = settings_from(**{k: v for k, v in flags.items() if k != "port"})
    _cycle(settings, config, plan, (budget or settings.train_budget) * 60, Bars(quiet=as_json),
           flags["port"], as_json, fresh=fresh)


def _cycle(settings, config: TrainConfig, plan: CyclePlan, seconds: float, bars: Bars,
           port: int | None, as_json: bool, fresh: bool = False) -> None:
    """Run (or go on with) a cycle with progress bars, tell a running daemon about a promoted
    adapter, print the result; a failed cycle is the command's error."""
    from trainer.cycle import run_cycle  # imports torch: only when a cycle runs
    try:
        result = run_coro(run_cycle(settings, config, plan, budget=seconds, say=bars.say,
                                    progress=bars, fresh=fresh))
    finally:
        bars.close()
    if result.promoted:
        _tell_daemon(settings_from(port=port).port, bars.say)
    if as_json:
        print_json(dataclasses.asdict(result))
    else:
        click.echo(f"adapter {result.adapter_id}: "
                   f"{'promoted' if result.promoted else 'not promoted'}; gate: "
                   f"{result.gate.summary() if result.gate else 'not run'}; "
                   f"{result.practice_episodes} practice episodes; {result.seconds}")
    if result.error:
        raise click.ClickException(result.error)


@train_command.command("export")
@click.option("--format", "fmt", type=click.Choice(["trl", "jsonl"]), default="trl",
              show_default=True,
              help="trl: prompt/completion columns TRL's trainers load; jsonl: nightloop's own "
                   "samples, every field.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("nightloop-dataset"), show_default=True, help="Folder to write.")
@click.option("--after", "after", type=click.IntRange(0), default=None,
              help="The window's practice: episodes after this id [default: from where the "
                   "last night's window began, so its practice and what came since].")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path), default=None,
              help="TOML file overriding training settings (what is selected, and how).")
@setting_options("model", "db")
def train_export(fmt: str, out: Path, after: int | None, config_file: Path | None,
                 **flags: Any) -> None:
    """Write the SFT samples and GRPO groups a cycle would train on, for a trainer elsewhere
    (TRL's SFTTrainer / GRPOTrainer on a GPU; see the README, "Bigger models and GPUs").

    Example: nightloop train export --format trl --out data/
    """
    from daemon.agent.llama_policy import LlamaPolicy  # renders teacher samples' prompts
    from trainer import handoff
    from trainer.data import training_set, windows
    config = TrainConfig.from_toml(config_file) if config_file else TrainConfig()
    settings = settings_from(**flags)

    @with_store(flags["db"])
    async def go(store: Store) -> dict:
        start = after if after is not None else (await windows(store) or [0])[-1]
        policy = LlamaPolicy(settings)
        data = await training_set(store, config, policy.render, after=start)
        return handoff.write(out, data.sft, data.grpo, fmt=fmt, meta={
            "after_episode": start, "episodes": len(data.window),
            "held_out_tasks": sorted(data.held), "base_model": policy.info.path.name})
    about = run_coro(go())
    click.echo(f"wrote {about['sft']} SFT samples and {about['grpo']} GRPO samples "
               f"({about['groups']} groups) to {out}/ (format {fmt})")


class Bars:
    """Progress on stderr: one tqdm bar per phase (the next phase closes the last), and
    timestamped lines printed above it; nothing at all when `quiet`."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar, self.started = quiet, None, time.monotonic()

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.quiet:
            return
        from tqdm import tqdm
        if self.bar is None or self.bar.desc != what:
            self.close()
            self.bar = tqdm(total=total, desc=what, file=sys.stderr, dynamic_ncols=True)
        self.bar.total, self.bar.n = total, done
        self.bar.refresh()

    def say(self, line: str) -> None:
        if not self.quiet:
            from tqdm import tqdm
            tqdm.write(f"[{time.monotonic() - self.started:6.0f} s] {line}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _tell_daemon(port: int, say) -> None:
    """Ask a running daemon to serve the promoted adapter; fine if none runs."""
    async def go() -> p.Status:
        async with connected(port, pairing_token()) as client:
            return await client.request(p.Reload())
    try:
        status = run_coro(go())
        say(f"the daemon now serves {status.policy} with {status.adapter}")
    except DaemonUnavailable:
        say("no daemon is running: it will serve the promoted adapter when it starts")
    except DaemonError as exc:
        say(f"the running daemon did not switch: {exc}")


@click.group("adapters")
def adapters_group() -> None:
    """The LoRA adapters learning cycles produced: list them, promote one, roll back."""


@adapters_group.command("list")
@setting_options("db")
@json_option
def adapters_list(db: str | None, as_json: bool) -> None:
    """List adapters, newest first, with their status, parent and gate results.

    Example: nightloop adapters list --json
    """
    @with_store(db)
    async def go(store: Store) -> list:
        return await store.adapters()
    rows = run_coro(go())
    if as_json:
        print_json([dataclasses.asdict(a) for a in rows])
        return
    if not rows:
        click.echo("no adapters yet: run `nightloop train --now`")
    for a in rows:
        made = "shipped, see " + a.config["recipe"] if (a.config or {}).get("source") == \
            "shipped" else f"gate {(a.metrics or {}).get('gate', {})}"
        click.echo(f"{a.id:>4}  {a.created_at[:19].replace('T', ' ')}  {a.status:<9} "
                   f"parent {a.parent or '-':<4} {made}  {a.path}")


@adapters_group.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--gate/--no-gate", default=True, show_default=True,
              help="Measure it against the serving adapter now, as a cycle's gate does, and "
                   "promote it only if it passes; --no-gate leaves it a candidate that the "
                   "next `nightloop train --now` gates before anything else.")
@click.option("--budget", type=click.FloatRange(1, 24 * 60), default=20.0, show_default=True,
              help="Minutes the gate may take.")
@click.option("--tasks", default="", help="Comma-separated MiniWoB++ tasks to gate on "
                                          "[default: every DOM-level task].")
@click.option("--gate-seeds", type=click.IntRange(0, 1000), default=CyclePlan.gate_seeds,
              show_default=True, help="Validation seeds per task; 0: as many as the budget fits.")
@json_option
@setting_options("model", "threads", "db", "port")
def adapters_import(folder: Path, gate: bool, budget: float, tasks: str, gate_seeds: int,
                    as_json: bool, **flags: Any) -> None:
    """Bring back a LoRA adapter trained elsewhere (a peft folder, e.g. TRL's output on a
    GPU from `nightloop train export`): convert it to GGUF for llama.cpp, register it as a
    candidate and gate it like the nightly cycle's own.

    Example: nightloop adapters import ./sft-out --budget 30
    """
    from trainer.imported import import_adapter
    settings = settings_from(**{k: v for k, v in flags.items() if k != "port"})
    candidate = run_coro(import_adapter(settings, folder))
    bars = Bars(quiet=as_json)
    bars.say(f"adapter {candidate.id}: imported from {folder} as a candidate "
             f"({candidate.path})")
    if not gate:
        bars.say("not gated yet: the next `nightloop train --now` gates it first")
        return
    config = TrainConfig()
    plan = CyclePlan(tuple(miniwob.parse_tasks(tasks)) if tasks else (), gate_seeds=gate_seeds)
    _cycle(settings, config, plan, budget * 60 / config.shares["gate"], bars, flags["port"],
           as_json)


@adapters_group.command("promote")
@click.argument("adapter_id", type=int)
@setting_options("db", "port")
def adapters_promote(adapter_id: int, db: str | None, port: int | None) -> None:
    """Serve this adapter from now on (a running daemon switches between episodes).

    Example: nightloop adapters promote 3
    """
    _change_adapter(p.AdapterChange("promote", adapter_id), db, port)


@adapters_group.command("rollback")
@setting_options("db", "port")
def adapters_rollback(db: str | None, port: int | None) -> None:
    """Go back to the adapter the serving one was trained from (or to none), in one step.

    Example: nightloop adapters rollback
    """
    _change_adapter(p.AdapterChange("rollback"), db, port)


def _change_adapter(change: p.AdapterChange, db: str | None, port: int | None) -> None:
    """Through the daemon that serves the store when one does (it switches at once), else in
    the store directly."""
    settings = settings_from(db=db, port=port)

    async def go() -> tuple[p.AdapterChange, bool]:
        async with owning_daemon(settings.db_path, settings.port) as daemon:
            if daemon is not None:
                return await daemon.request(change), True
        async with await Store.open(settings.db_path, recover=False) as store:
            return await change_adapter(store, change), False
    done, live = run_coro(go())
    serving = f"adapter {done.serving}" if done.serving else "the base model"
    click.echo(f"adapter {done.retired} retired; {serving} serves again" if done.retired
               else f"adapter {done.serving} promoted")
    click.echo("done through the running daemon: its next episode runs on it" if live else
               f"no daemon serves {settings.db_path}: it takes effect when one starts")


@click.command("schedule")
@setting_options("train_at", "train_idle", "train_budget")
@json_option
def schedule_command(as_json: bool, **flags: Any) -> None:
    """Show when the daemon runs the next nightly learning cycle, and how the last one went.

    The daemon runs it at `train_at` (config.toml, NIGHTLOOP_TRAIN_AT or `nightloop daemon
    --train-at 03:00`) once no episode has run for `train_idle` minutes.

    Example: nightloop schedule --json
    """
    settings = settings_from(**flags)
    last, due = schedule.last_result(), schedule.upcoming(settings)
    data = {"train_at": settings.train_at or None, "idle_minutes": settings.train_idle,
            "budget_minutes": settings.train_budget,
            "next_run": due.isoformat(timespec="minutes") if due else None, "last": last}
    if as_json:
        print_json(data)
        return
    if due is None:
        when = "never (set train_at, e.g. 03:00)"
    elif due <= datetime.now():
        when = f"now: the {settings.train_at} window is open until " \
               f"{(due + schedule.WINDOW).strftime('%H:%M')}"
    else:
        when = data["next_run"]
    click.echo(f"next run: {when}" + (f", once idle {settings.train_idle} min, budget "
                                      f"{settings.train_budget:g} min" if due else ""))
    click.echo(f"last run: {last['started']} → exit {last['exit_status']}: {last['summary']}"
               if last else "last run: none yet")


@click.group("practice")
def practice_group() -> None:
    """Which of your tasks nightly learning may repeat on its own (sites or single tasks).

    Practice re-runs an allowed task a few times in a browser of its own (headless, a fresh
    profile, without your logins) and submits forms only on allowed sites.
    """


_SITES = click.argument("sites", nargs=-1)
_EPISODES = click.option("--episode", "episodes", type=int, multiple=True,
                         help="The task of this episode, on its start page's site (repeatable).")


@practice_group.command("allow")
@_SITES
@_EPISODES
@setting_options("db", "port")
def practice_allow(sites: tuple[str, ...], episodes: tuple[int, ...], db: str | None,
                   port: int | None) -> None:
    """Mark sites (any task on them) or single tasks as safe to practise.

    Example: nightloop practice allow shop.example.com --episode 42
    """
    for rule, _ in _set_rules(sites, episodes, True, db, port):
        click.echo(f"practice allowed: {_describe(rule)}")


@practice_group.command("deny")
@_SITES
@_EPISODES
@setting_options("db", "port")
def practice_deny(sites: tuple[str, ...], episodes: tuple[int, ...], db: str | None,
                  port: int | None) -> None:
    """Take back a practice rule (a site's, or one task's).

    Example: nightloop practice deny shop.example.com
    """
    for rule, was in _set_rules(sites, episodes, False, db, port):
        click.echo(f"practice {'denied' if was else 'was not allowed'}: {_describe(rule)}")


def _set_rules(sites: tuple[str, ...], episodes: tuple[int, ...], allowed: bool,
               db: str | None, port: int | None) -> list[tuple[PracticeRule, bool]]:
    """Allow or deny each rule, through the daemon that serves the store when one does, else in
    the store directly: (the rule, whether it was allowed before) for each."""
    if not sites and not episodes:
        raise click.UsageError("name at least one site or --episode")
    settings = settings_from(db=db, port=port)
    asks = [p.Practice(site=s) for s in sites] + [p.Practice(episode_id=e) for e in episodes]

    async def go() -> list[tuple[PracticeRule, bool]]:
        async with owning_daemon(settings.db_path, settings.port) as daemon:
            if daemon is not None:
                done = []
                for ask in asks:
                    before = await daemon.request(dataclasses.replace(ask))
                    after = await daemon.request(dataclasses.replace(ask, allowed=allowed))
                    done.append((PracticeRule(after.site, after.task), bool(before.allowed)))
                return done
        async with await Store.open(settings.db_path, recover=False) as store:
            done = []
            for ask in asks:
                rule = await rule_for(store, site=ask.site, episode_id=ask.episode_id)
                done.append((rule, (await set_rule(store, rule, allowed))[0]))
            return done
    try:
        return run_coro(go())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@practice_group.command("list")
@click.option("--history", "with_history", is_flag=True,
              help="Each practised task's record night by night: attempts, successes, the "
                   "judge's mean p, your verdicts on that night's practice.")
@setting_options("db")
@json_option
def practice_list(with_history: bool, db: str | None, as_json: bool) -> None:
    """List the practice rules and the tasks the next cycle would practise (★: held out for
    the gate, never trained on).

    Example: nightloop practice list --history
    """

    @with_store(db)
    async def go(store: Store) -> tuple[list, list, dict]:
        return (await store.practice_rules(),
                await practice_tasks(store, TrainConfig.practice_user_tasks),
                await history(store, await store.nights()) if with_history else {})
    rules, tasks, nights = run_coro(go())
    if as_json:
        print_json({"rules": [dataclasses.asdict(r) for r in rules],
                    "tasks": [{**dataclasses.asdict(t), "held_out": t.held_out} for t in tasks],
                    **({"history": nights} if with_history else {})})
        return
    if not rules:
        click.echo("nothing is practice-safe yet: `nightloop practice allow SITE` or the "
                   "popup's checkbox")
    for rule in rules:
        click.echo(f"allowed: {_describe(rule)}")
    for t in tasks:
        click.echo(f"would practise{' ★' if t.held_out else ''}: {t.task!r} on {t.url} "
                   f"(episode {t.episode_id})")
    if with_history and not nights:
        click.echo("no night has practised any of your tasks yet")
    for task, rows in nights.items():
        click.echo(f"{task!r}, night by night:")
        for r in rows:
            p = "–" if r["p"] is None else f"{r['p']:.0%}"
            click.echo(f"  night {r['night']} ({r['date']}): {r['succeeded']} of "
                       f"{r['episodes']} succeeded, judge's mean p {p}, your verdicts "
                       f"{r['thumbs_up']} up / {r['thumbs_down']} down")


def _describe(rule: Any) -> str:
    return f"{rule.task!r} on {rule.site}" if rule.task else f"any task on {rule.site}"
