"""`nightloop judge`: score episodes on demand, and measure the judge against ground truth."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from daemon.core.settings import data_dir
from daemon.core.store import Store
from judge.reward import explain

from .common import (
    Group,
    json_option,
    print_json,
    run_coro,
    setting_options,
    settings_from,
    with_store,
)

JUDGE_SETTINGS = ("judge_model", "judge_form", "judge_samples", "judge_temperature", "threads")


class JudgeGroup(Group):
    """`nightloop judge 3 4` and `nightloop judge --pending` go to the `score` command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["score", *args]
        return super().parse_args(ctx, args)


@click.group("judge", cls=JudgeGroup)
def judge_group() -> None:
    """Score episodes with the judge (FLIP + progress rules), or evaluate the judge.

    \b
    nightloop judge 12 13          score episodes 12 and 13 (again, if already judged)
    nightloop judge --pending      score every finished episode without a judge reward
    nightloop judge eval           measure every scorer on episodes with ground truth
    """


@judge_group.command("score")
@click.argument("episode_ids", type=int, nargs=-1)
@click.option("--pending", is_flag=True, help="Every finished episode without a judge reward.")
@setting_options(*JUDGE_SETTINGS, "db")
@json_option
def judge_score(episode_ids: tuple[int, ...], pending: bool, as_json: bool,
                **flags: Any) -> None:
    """Score episodes and store a `judge` reward for each (shown by `nightloop episodes
    show`). The daemon does this by itself in the background; this is for on demand.

    Example: nightloop judge score 12 13   (or simply: nightloop judge 12 13)
    """
    if bool(episode_ids) == pending:
        raise click.UsageError("give episode ids or --pending (one of the two)")
    settings = settings_from(**flags)

    @with_store(flags["db"])
    async def go(store: Store) -> list[dict]:
        from judge.judge import judge_from_settings
        from judge.scoring import judge_episode
        ids = list(episode_ids) or await store.unjudged()
        if not ids:
            return []
        judge = judge_from_settings(settings)
        out = []
        for n, episode_id in enumerate(ids, 1):
            reward = await judge_episode(store, judge, episode_id)
            if not as_json:
                click.echo(f"[{n}/{len(ids)}] episode {episode_id}: {reward.value:+.3f} "
                           f"{explain(reward.details)}, {reward.details['seconds']:.1f} s")
            out.append({"episode": episode_id, "value": reward.value, **reward.details})
        return out
    results = run_coro(go())
    if as_json:
        print_json(results)
    elif not results:
        click.echo("nothing to judge")


@judge_group.command("eval")
@click.option("--episodes", "which", default="all", show_default=True,
              help="Which episodes of the store: all (those with ground truth), a range "
                   "FIRST-LAST, or ids 1,2,3.")
@click.option("--jsonl", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Read episodes exported by `nightloop episodes export` "
                                 "(.jsonl or .jsonl.gz) instead of the store.")
@click.option("--scorers", default=None,
              help="Comma-separated subset of: flip, flip_generate, flip_likelihood, "
                   "flip_likelihood_z, direct, lexical, arguments, rules, hybrid, calibrated "
                   "[default: all].")
@click.option("--limit", type=click.IntRange(1), default=None, help="The first N episodes only.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder [default: judge-eval/<time> in the XDG data dir].")
@setting_options(*JUDGE_SETTINGS, "db")
@json_option
def judge_eval(which: str, jsonl: Path | None, scorers: str | None, limit: int | None,
               out: Path | None, as_json: bool, **flags: Any) -> None:
    """Measure the judge on episodes whose ground truth is known (MiniWoB eval runs).

    For each scorer: ROC-AUC (pooled, with unseen tasks ranked together — templates in 4 parts,
    the calibrated one fitted on the other parts — and per task template), accuracy at the best
    threshold and on unseen tasks (the threshold found on the other templates), Spearman with the
    ground-truth reward, seconds per episode; `--json` names the product's scorer under
    "default". Writes results.json, report.md, scores.png (score distributions of successes vs
    failures), calibration.png (reliability diagram) and calibration.json (the learned
    combination fitted on every episode, with its leave-task-out figures: among them the
    precision at p >= 0.5 ... 0.9 that training reads before trusting it for SFT) to --out.

    Example: nightloop judge eval --jsonl tests/data/miniwob-core-labelled.jsonl.gz --json
    """
    from judge import evaluate
    from judge.judge import JudgeOptions
    from judge.model import JudgeModel
    chosen = tuple(scorers.split(",")) if scorers else evaluate.SCORERS
    unknown = set(chosen) - set(evaluate.SCORERS)
    if unknown:
        raise click.UsageError(f"unknown scorer(s): {', '.join(sorted(unknown))}")
    if jsonl:
        items = evaluate.load_jsonl(jsonl)
    else:
        ids = _parse_ids(which)

        @with_store(flags["db"])
        async def load(store: Store) -> list:
            return await evaluate.load_store(store, ids)
        items = run_coro(load())
    items = items[:limit] if limit else items
    if not items:
        raise click.ClickException("no episodes with ground truth to evaluate on; run "
                                   "`nightloop eval miniwob` first or pass --jsonl")
    settings = settings_from(**flags)
    model = JudgeModel(settings.judge_model, threads=settings.threads) \
        if set(chosen) & set(evaluate.MODEL_SCORERS) else None
    options = JudgeOptions.from_settings(settings)
    t0 = time.monotonic()

    def progress(done: int, total: int) -> None:
        if not as_json:
            elapsed = time.monotonic() - t0
            click.echo(f"\rjudged {done}/{total} episodes, {elapsed:.0f} s, "
                       f"~{elapsed / done * (total - done):.0f} s left   ", nl=False, err=True)
    rows = evaluate.score_all(items, model, options, chosen, progress)
    if not as_json:
        click.echo(err=True)
    summary = evaluate.summarize(rows, chosen)
    about = {"model": model.name if model else None, "episodes": len(items),
             "successes": sum(i.success for i in items), "source": str(jsonl or which),
             "options": dataclasses.asdict(options), "seconds": round(time.monotonic() - t0, 1)}
    out = out or data_dir() / "judge-eval" / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    evaluate.write_report(out, summary, rows, about)
    if as_json:
        print_json({**summary, "default": evaluate.DEFAULT})
    else:
        click.echo(evaluate.markdown(summary, about))
        click.echo(f"report: {out}")


def _parse_ids(which: str) -> list[int] | None:
    """all → None; FIRST-LAST → a range; 1,2,3 → those ids."""
    try:
        if which == "all":
            return None
        if "-" in which:
            first, last = (int(x) for x in which.split("-", 1))
            return list(range(first, last + 1))
        return [int(x) for x in which.split(",")]
    except ValueError:
        raise click.BadParameter(f"{which!r}: use all, FIRST-LAST or 1,2,3",
                                 param_hint="--episodes") from None
