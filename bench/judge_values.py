"""Benchmark: can the judge tell a replay that wrote the task's values from one that wrote
another task's?

Stages, each saved to ``OUT/<stage>.json`` as it finishes (a rerun skips finished stages):

- ``demos``: Playwright, acting as the user, records two demonstrations per bundled-site
  template on train seeds through the real popup and recorder (bench/sites.py's stage);
- ``replay``: the newest demonstration each task fits, replayed with its values (no model, no
  fallback) on every template x TEST_SEEDS test seeds; the site's ground truth is stored;
- ``judge``: the judge (SmolLM2, the shipped calibration) scores each replay twice: against
  its own task (*right*: labelled by the site's ground truth) and against the task of the
  next test seed of its template (*wrong*: the replay wrote other values than that task asks
  for, as a replay that kept a recorded value or typed a value into the wrong field does).

The report: ROC-AUC of right successes against everything else, the mean probability of the
right and the wrong, and how many wrong replays score above the median right one — for the
calibrated probability, `arguments`, `lexical` and, as the baseline measured in the same run,
`arguments` as it was before it weighed foreign values (the task's words the actions name,
failed steps included). Usage: python bench/judge_values.py [--out DIR] [--stages ...]
[--report]; asserts nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import statistics
import time
from pathlib import Path

from harness import measure, save_stage, staged_main, use_home

TEST_SEEDS = 10
MAX_STEPS = 15
STAGES = ("demos", "replay", "judge")
SCORERS = ("calibrated", "arguments", "lexical", "arguments_before")


def arguments_before(episode, steps, template_tasks: list[str]) -> float:
    """`judge.lexical.arguments` as it was before 2026-12-05: the share of the task's
    (rarity-weighted) words the actions name, failed steps included, nothing foreign."""
    from judge.lexical import MIN_TEMPLATE_TASKS, actions_text
    from judge.text import normalize
    words = set(normalize(episode.task))
    others = [set(normalize(t)) for t in template_tasks]
    others = others if len(others) >= MIN_TEMPLATE_TASKS else []
    weight = {w: 1 - sum(w in o for o in others) / len(others) if others else 1.0
              for w in words}
    total = sum(weight.values())
    named = set(normalize(actions_text(steps)))
    return sum(weight[w] for w in words & named) / total if total else 1.0


def wrong_twins(items: list) -> list:
    """Each replay against the task of the next test seed of its template (cyclic) whose text
    differs: labelled failures."""
    from judge.evaluate import Labelled
    by_template: dict[str, list] = {}
    for item in items:
        by_template.setdefault(item.template, []).append(item)
    twins = []
    for group in by_template.values():
        for i, item in enumerate(group):
            other = next((o for o in group[i + 1:] + group[:i]
                          if o.episode.task != item.episode.task), None)
            if other is not None:
                twins.append(Labelled(dataclasses.replace(
                    item.episode, id=-item.episode.id, task=other.episode.task), item.steps, 0.0))
    return twins


async def judged(out: Path) -> dict:
    from daemon.core.store import Store
    from judge import calibration, evaluate
    from judge.judge import JudgeOptions
    from judge.model import JudgeModel
    settings = use_home(out / "home")
    async with await Store.open(out / "replay.db", recover=False) as store:
        right = await evaluate.load_store(store)
    items = right + wrong_twins(right)
    model = JudgeModel(settings.judge_model, threads=settings.threads)
    rows = evaluate.score_all(items, model, JudgeOptions.from_settings(settings),
                              ("flip_likelihood", "lexical", "arguments"))
    raw = [row["flip_likelihood"] for row in rows]
    shipped = calibration.Calibration.load(calibration.SHIPPED)
    for row, z, item in zip(rows, evaluate.leave_one_out_z(raw, [i.template for i in items]),
                            items):
        row["flip_likelihood_z"] = z
        row["calibrated"] = shipped.probability(row)
        row["arguments_before"] = arguments_before(
            item.episode, item.steps, list(evaluate.peers(item, items).template_tasks))
        row["kind"] = "right" if item.episode.id > 0 else "wrong"
        row["task"] = item.episode.task
    return {"rows": rows, "calibration": shipped.version}


def child(stage: str, out: Path, budget: float) -> None:
    t0 = time.monotonic()
    if stage == "demos":
        from sites import record_demos
        result = record_demos(out)
    elif stage == "replay":
        from sites import demonstrations

        from daemon.agent.replay import DemonstrationReplay
        from daemon.tasks import splits
        from daemon.tasks.sites import Sites
        from daemon.tasks.sites.templates import TEMPLATES
        settings = use_home(out / "home")
        policy = DemonstrationReplay(asyncio.run(demonstrations(settings.db_path)))
        result = {"results": asyncio.run(measure(
            list(TEMPLATES), splits.seeds("test", TEST_SEEDS), policy, out / "replay.db",
            out / "replay.partial.jsonl", max_steps=MAX_STEPS, benchmark=Sites()))}
    else:
        result = asyncio.run(judged(out))
    save_stage(out, stage, {**result, "seconds": round(time.monotonic() - t0)})


def report(out: Path, budget: float) -> None:
    from judge.metrics import auc
    path = out / "judge.json"
    if not path.exists():
        print("nothing judged yet")
        return
    result = json.loads(path.read_text())
    rows = result["rows"]
    right = [r for r in rows if r["kind"] == "right"]
    good = [r for r in right if r["truth"] > 0]
    wrong = [r for r in rows if r["kind"] == "wrong"]
    print(f"{len(right)} replays with values on the bundled sites' test seeds "
          f"({len(good)} right by the site's ground truth), each judged against its own task "
          f"and against another seed's ({len(wrong)} wrong); calibration "
          f"{result['calibration']}\n")
    print("| scorer | AUC (right successes vs the rest) | mean right | mean wrong | "
          "wrong above the median right |")
    print("|---|---|---|---|---|")
    for name in SCORERS:
        median = statistics.median(r[name] for r in good)
        area = auc([r[name] for r in rows],
                   [r["kind"] == "right" and r["truth"] > 0 for r in rows])
        print(f"| {name} | {area:.3f} | {statistics.mean(r[name] for r in good):.2f} | "
              f"{statistics.mean(r[name] for r in wrong):.2f} | "
              f"{sum(r[name] > median for r in wrong)} of {len(wrong)} |")


if __name__ == "__main__":
    staged_main(__file__, __doc__, "judge-values", STAGES, 0, child, report)
