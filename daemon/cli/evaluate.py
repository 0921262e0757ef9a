"""`nightloop eval`: evaluation runs (MiniWoB++, the bundled sites, the skills) and their
comparison."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from daemon.agent.replay import DemonstrationReplay, recorded_demonstrations
from daemon.core.settings import Settings, data_dir
from daemon.core.store import Store
from daemon.service.app import make_policy
from daemon.tasks import miniwob, splits
from daemon.tasks import report as eval_report
from daemon.tasks.cluster import Cluster, Recipe, evaluate_on_ray
from daemon.tasks.evaluation import EvalPlan, evaluate
from daemon.tasks.oracle import OraclePolicy
from daemon.tasks.sites import Sites
from daemon.tasks.sites.teacher import SiteTeacher
from daemon.tasks.sites.templates import TEMPLATES, parse_templates
from daemon.tasks.skills import HELD_OUT, SKILLS, skills_benchmark
from trainer.starting import with_serving_adapter

from .common import (
    json_option,
    print_json,
    ray_options,
    run_coro,
    setting_options,
    settings_from,
)


def run_options(max_steps: int):
    """The options every evaluation run takes: which seeds, how long, how many at once, the
    store label, the report folder, JSON output and the policy's settings."""
    options = [
        click.option("--seeds", "n_seeds", type=click.IntRange(1, 1000), default=5,
                     show_default=True, help="Seeds per task, the first N of the split."),
        click.option("--seed-list", default=None,
                     help="Comma-separated seeds instead of --seeds."),
        click.option("--split", type=click.Choice(splits.SPLITS), default="test",
                     show_default=True,
                     help="Which seeds: test seeds are 0, 5, 10, ...; validation seeds the "
                          "others from 1,000,000 on (the nightly gate's); train the rest."),
        click.option("--max-steps", type=click.IntRange(1, 100), default=max_steps,
                     show_default=True, help="Steps per episode."),
        click.option("--parallel", type=click.IntRange(1, 16), default=1, show_default=True,
                     help="Episodes at once, each in its own tab."),
        click.option("--source", type=click.Choice(["eval", "practice"]), default="eval",
                     show_default=True, help="How the episodes are labelled in the store."),
        click.option("--screenshots", is_flag=True,
                     help="Keep a screenshot of each step (Chrome takes two a second)."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Report folder [default: eval/<time>-<policy> in the XDG data "
                          "dir]."),
        json_option,
        ray_options,
        setting_options("model", "adapter", "n_ctx", "threads", "temperature", "seed",
                        "obs_tokens", "history", "step_timeout", "db"),
    ]

    def apply(command):
        for option in reversed(options):
            command = option(command)
        return command
    return apply


@click.group("eval")
def eval_group() -> None:
    """Measure the agent on MiniWoB++, the bundled sites or the skills pages through the real
    extension, and compare runs."""


@eval_group.command("miniwob")
@click.option("--suite", type=click.Choice(["smoke", "core", "all"]), default=None,
              help="A named task list [default: smoke].")
@click.option("--tasks", default=None, help="Comma-separated task names instead of a suite.")
@click.option("--policy", "policy_name", type=click.Choice(["llm", "oracle"]), default="llm",
              show_default=True, help="The local model, or the scripted teacher (a few tasks).")
@run_options(max_steps=10)
def eval_miniwob(suite: str | None, tasks: str | None, n_seeds: int, seed_list: str | None,
                 split: str, max_steps: int, parallel: int, policy_name: str, source: str,
                 screenshots: bool, cluster: Cluster | None, out: Path | None,
                 as_json: bool, **flags: Any) -> None:
    """Run MiniWoB++ tasks through the daemon, the extension and a headless Chromium.

    The page's state is read after every step and the episode ends when the page's own episode
    does. Its ground truth is stored as a `ground_truth` reward: 1 for success (the page's raw
    reward above 0), else 0, the raw reward beside it. Ctrl-C stops and keeps what finished.

    Example: nightloop eval miniwob --suite core --seeds 5 --split test --parallel 2
    (on a Ray cluster: --ray auto --actors 8 instead of --parallel)
    """
    if suite and tasks:
        raise click.UsageError("give --suite or --tasks, not both")
    names = miniwob.parse_tasks(tasks) if tasks else miniwob.suite(suite or "smoke")
    seeds = _seed_list(seed_list, split) if seed_list else splits.seeds(split, n_seeds)
    settings = settings_from(**flags)
    recipe = Recipe(lambda _: OraclePolicy()) if policy_name == "oracle" else _model(settings)
    plan = EvalPlan(names, seeds, max_steps=max_steps, parallel=parallel,
                    step_timeout=settings.step_timeout, source=source, screenshots=screenshots)
    _run(plan, recipe, policy_name, split, settings.db_path, out, as_json,
         cluster)


@eval_group.command("sites")
@click.option("--templates", default=None,
              help="Comma-separated templates, or sites for all of theirs [default: every "
                   f"template: {', '.join(TEMPLATES)}].")
@click.option("--policy", "policy_name", type=click.Choice(["llm", "teacher", "replay"]),
              default="llm", show_default=True,
              help="The local model; the scripted teacher (each template's own script); or "
                   "replay with values (your newest good demonstration whose task each task "
                   "fits, no model).")
@run_options(max_steps=15)
def eval_sites(templates: str | None, n_seeds: int, seed_list: str | None, split: str,
               max_steps: int, parallel: int, policy_name: str, source: str,
               screenshots: bool, cluster: Cluster | None, out: Path | None,
               as_json: bool, **flags: Any) -> None:
    """Run the bundled sites' task templates (a shop, a support form, a train booking, an
    inbox, account settings) through the daemon, the extension and a headless Chromium.

    Each seed gives new values and a fresh load (other ids, another order). The agent ends its
    episode; the site's state is then checked against what the task asked for and stored as a
    `ground_truth` reward (1 or 0, the reason beside it). Ctrl-C stops and keeps what finished.

    Example: nightloop eval sites --templates shop,inbox.reply --seeds 5 --split test
    """
    names = _templates(templates, TEMPLATES)
    seeds = _seed_list(seed_list, split) if seed_list else splits.seeds(split, n_seeds)
    settings = settings_from(**flags)
    if policy_name == "teacher":
        tasks = [TEMPLATES[t].task(s) for t in names for s in seeds]
        recipe = Recipe(lambda _: SiteTeacher(tasks))
    elif policy_name == "replay":
        demonstrations = run_coro(_demonstrations(settings.db_path))
        recipe = Recipe(lambda _: DemonstrationReplay(demonstrations))
    else:
        recipe = _model(settings)
    plan = EvalPlan(names, seeds, max_steps=max_steps, parallel=parallel,
                    step_timeout=settings.step_timeout, source=source, benchmark=Sites(),
                    screenshots=screenshots)
    _run(plan, recipe, f"sites-{policy_name}", split, settings.db_path, out, as_json,
         cluster)


@eval_group.command("skills")
@click.option("--templates", default=None,
              help="Comma-separated skills templates [default: every one: "
                   f"{', '.join(SKILLS)}; held out of training: {', '.join(HELD_OUT)}].")
@click.option("--policy", "policy_name", type=click.Choice(["llm", "teacher"]), default="llm",
              show_default=True, help="The local model, or each task's own script.")
@run_options(max_steps=10)
def eval_skills(templates: str | None, n_seeds: int, seed_list: str | None, split: str,
                max_steps: int, parallel: int, policy_name: str, source: str,
                screenshots: bool, cluster: Cluster | None, out: Path | None,
                as_json: bool, **flags: Any) -> None:
    """Run the everyday skills (type, choose, tick, press, search, log in... on generated
    pages) through the daemon, the extension and a headless Chromium.

    Each seed gives another page (labels, layout, distractors) and other words for the task.
    The agent ends its episode; the page's recorded state is then checked against what the
    task asked for and stored as a `ground_truth` reward. Ctrl-C stops and keeps what finished.

    Example: nightloop eval skills --templates skills.login,skills.tab --seeds 10
    """
    names = _templates(templates, SKILLS)
    seeds = _seed_list(seed_list, split) if seed_list else splits.seeds(split, n_seeds)
    settings = settings_from(**flags)
    tasks = [SKILLS[t].task(s) for t in names for s in seeds]
    recipe = Recipe(lambda _: SiteTeacher(tasks)) if policy_name == "teacher" \
        else _model(settings)
    plan = EvalPlan(names, seeds, max_steps=max_steps, parallel=parallel,
                    step_timeout=settings.step_timeout, source=source,
                    benchmark=skills_benchmark(), screenshots=screenshots)
    _run(plan, recipe, f"skills-{policy_name}", split, settings.db_path, out, as_json,
         cluster)


def _templates(text: str | None, templates: dict) -> list[str]:
    try:
        return parse_templates(text, templates)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--templates") from None


def _model(settings: Settings) -> Recipe:
    """The local model with the adapter the settings serve: by default the store's serving
    adapter, as the daemon would (`--adapter none`: the bare model)."""
    async def resolve() -> Settings:
        async with await Store.open(settings.db_path) as store:
            return await with_serving_adapter(store, settings)
    return Recipe(make_policy, dataclasses.replace(run_coro(resolve()), policy="llm"))



async def _demonstrations(db: Path) -> list:
    async with await Store.open(db) as store:
        return await recorded_demonstrations(store)


def _run(plan: EvalPlan, recipe: Recipe, label: str, split: str, db: Path, out: Path | None,
         as_json: bool, cluster: Cluster | None) -> None:
    """Run `plan` here or on Ray actors, showing each episode as it ends, and write its
    report (also when interrupted: it covers what finished)."""
    out = out or data_dir() / "eval" / f"{datetime.now():%Y%m%d-%H%M%S}-{label}"
    meta: dict[str, Any] = {
        "benchmark": plan.benchmark.name, "split": split, "seeds": plan.seeds,
        "max_steps": plan.max_steps, "parallel": plan.parallel,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if cluster:
        meta["ray"] = {"address": cluster.address, "actors": cluster.actors}

    def described(policy: str, adapter: str | None) -> None:
        meta.update(policy=policy, adapter=adapter)
    results: list = []
    total = len(plan.tasks) * len(plan.seeds)

    def progress(result) -> None:
        results.append(result)
        if not as_json:
            outcome = "success" if result.success else f"fail ({result.error or result.status})"
            click.echo(f"[{len(results)}/{total}] {result.task} seed {result.seed}: {outcome}, "
                       f"{result.steps} steps, {result.seconds:.1f} s", err=True)

    policy = None if cluster else recipe.build()
    if policy:
        described(policy.name, policy.adapter)
    started = time.perf_counter()
    try:
        if policy:
            run_coro(evaluate(plan, policy=policy, db=db, on_result=progress))
        else:
            run_coro(evaluate_on_ray(plan, recipe, db=db, cluster=cluster,
                                     on_result=progress, on_ready=described))
    except KeyboardInterrupt:
        meta["interrupted"] = True
        click.echo("interrupted: the report covers the episodes that finished", err=True)
    finally:
        results.sort(key=lambda r: (plan.tasks.index(r.task), plan.seeds.index(r.seed)))
        meta["seconds"] = round(time.perf_counter() - started, 1)
        meta["episodes_per_minute"] = round(len(results) / meta["seconds"] * 60, 1) \
            if meta["seconds"] else None
        eval_report.write_run(out, results, meta)
    if as_json:
        print_json(json.loads((out / eval_report.RESULTS).read_text()))
    else:
        click.echo(eval_report.markdown(eval_report.summarize(results), meta))
        click.echo(f"report: {out / 'report.md'}, chart: {out / 'success.png'}")


def _seed_list(text: str, split: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers",
                                 param_hint="--seed-list") from None
    wrong = [s for s in seeds if s < 0 or splits.split_of(s) != split]
    if wrong:
        raise click.BadParameter(f"seeds {wrong} are not {split} seeds (test seeds are the "
                                 "multiples of 5, validation seeds the others from 1,000,000 "
                                 "on, train seeds the rest)", param_hint="--seed-list")
    return seeds


@eval_group.command("compare")
@click.argument("run_a", type=click.Path(file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(file_okay=False, path_type=Path))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Chart of the differences [default: RUN_B/compare.png].")
@json_option
def eval_compare(run_a: Path, run_b: Path, plot_path: Path | None, as_json: bool) -> None:
    """Per-task success of two evaluation runs, their difference (B minus A), and on the seeds
    both ran: how many only B solved (won) and only A (lost), with a two-sided sign test.

    Example: nightloop eval compare runs/base runs/adapter-3
    """
    meta_a, a = eval_report.load_run(run_a)
    meta_b, b = eval_report.load_run(run_b)
    diffs = eval_report.compare(a, b)
    plot_path = plot_path or run_b / "compare.png"
    eval_report.plot_compare(diffs, plot_path, run_a.name, run_b.name)
    if as_json:
        print_json([{"task": d.task, "a": d.rate_a, "b": d.rate_b, "diff": d.diff,
                     "won": d.won, "lost": d.lost, "p": round(d.p_value, 4)} for d in diffs])
        return

    def fmt(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"
    click.echo(f"A: {run_a} ({meta_a.get('policy')})\nB: {run_b} ({meta_b.get('policy')})")
    click.echo(f"{'task':<28} {'A':>5} {'B':>5} {'B-A':>6} {'won':>4} {'lost':>4} {'p':>6}")
    for d in diffs:
        diff = "—" if d.diff is None else f"{d.diff:+.2f}"
        click.echo(f"{d.task:<28} {fmt(d.rate_a):>5} {fmt(d.rate_b):>5} {diff:>6} "
                   f"{d.won:>4} {d.lost:>4} {d.p_value:>6.3f}")
    click.echo(f"chart: {plot_path}")
