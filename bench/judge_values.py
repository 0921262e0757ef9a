"""Benchmark: can the judge tell a replay that wrote the task's values from one that wrote
another task's?

Stages, each saved to ``OUT/<stage>.json`` as it finishes (a rerun skips finished stages):

- ``demos``: Playwright, acting as the user, records two demonstrations per bundled-site
  template on train seeds through the real popup and recorder (bench/sites.py's stage);
- ``replay``: the newest demonstration each task fits, replayed with its values (no model, no
  fallback) on every template x TEST_SEEDS test seeds; the site's ground truth is stored;
- ``judge``: the judge (SmolLM2, the shipped calibration) scores each replay against its own
  task (*right*: labelled by the site's ground truth) and against tasks it did not fulfil
  (*wrong*, three kinds: `wrong_twins`).

The report, per kind of wrong: ROC-AUC of the right successes against the wrong, the mean
score of each, and how many wrong ones score at or above the lowest right one — for the
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
    """Each replay judged against tasks it did not fulfil, labelled failures, by kind:

    - ``other task``: the task of the next test seed of its template (cyclic) whose text
      differs — every value another;
    - ``one value``: its own task with one value (the last it typed or chose) taken from that
      other task — the replay kept a recorded value where the task asked for a new one;
    - ``one value, failed step``: the same, with a failed step that tried the asked value
      before the last step (what replays did before they stopped at a failed step: `select
      "Paris"` failed, then Save)."""
    from daemon.agent.values import Unmatched, template_of, values_of
    from daemon.core.store import Step
    from judge.evaluate import Labelled
    by_template: dict[str, list] = {}
    for item in items:
        by_template.setdefault(item.template, []).append(item)
    twins = []
    for group in by_template.values():
        for i, item in enumerate(group):
            other = next((o for o in group[i + 1:] + group[:i]
                          if o.episode.task != item.episode.task), None)
            if other is None:
                continue
            twins.append(("other task", Labelled(dataclasses.replace(
                item.episode, task=other.episode.task), item.steps, 0.0)))
            typed = [s for s in item.steps if (s.action or {}).get("action") in
                     ("fill", "select_option")]
            template = template_of(item.episode.task, values_of(item.steps, item.episode.task))
            try:
                bound = template.bind(other.episode.task)
            except Unmatched:
                continue
            kept = next((v for s in reversed(typed) for v in template.values
                         if v in (s.action.get("text"), s.action.get("option"))
                         and bound[v] != v), None)
            if kept is None:
                continue
            task = template.fill({kept: bound[kept]})
            twins.append(("one value", Labelled(dataclasses.replace(item.episode, task=task),
                                                item.steps, 0.0)))
            last = next(s for s in reversed(typed) if kept in s.action.values())
            tried = Step(last.episode_id, last.index, {
                **last.action, ("text" if "text" in last.action else "option"): bound[kept]},
                False, url=last.url, observation=last.observation,
                error="the page did not take it")
            steps = [*item.steps[:-1], tried, item.steps[-1]]
            twins.append(("one value, failed step", Labelled(
                dataclasses.replace(item.episode, task=task), steps, 0.0)))
    return [(kind, dataclasses.replace(twin, episode=dataclasses.replace(
        twin.episode, id=-n))) for n, (kind, twin) in enumerate(twins, 1)]


async def judged(out: Path) -> dict:
    from daemon.core.store import Store
    from judge import calibration, evaluate
    from judge.judge import JudgeOptions
    from judge.model import JudgeModel
    settings = use_home(out / "home")
    async with await Store.open(out / "replay.db", recover=False) as store:
        right = await evaluate.load_store(store)
    twins = wrong_twins(right)
    items = right + [twin for _, twin in twins]
    kinds = ["right"] * len(right) + [kind for kind, _ in twins]
    model = JudgeModel(settings.judge_model, threads=settings.threads)
    rows = evaluate.score_all(items, model, JudgeOptions.from_settings(settings),
                              ("flip_likelihood", "lexical", "arguments"))
    raw = [row["flip_likelihood"] for row in rows]
    shipped = calibration.Calibration.load(calibration.SHIPPED)
    for row, z, item, kind in zip(rows, evaluate.leave_one_out_z(
            raw, [i.template for i in items]), items, kinds):
        row["flip_likelihood_z"] = z
        row["calibrated"] = shipped.probability(row)
        row["arguments_before"] = arguments_before(
            item.episode, item.steps, list(evaluate.peers(item, items).template_tasks))
        row["kind"] = kind
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
    good = [r for r in rows if r["kind"] == "right" and r["truth"] > 0]
    kinds = sorted({r["kind"] for r in rows} - {"right"})
    print(f"{sum(r['kind'] == 'right' for r in rows)} replays with values on the bundled "
          f"sites' test seeds ({len(good)} right by the site's ground truth), each judged "
          f"against its own task and against tasks it did not fulfil (wrong: "
          + ", ".join(f"{sum(r['kind'] == k for r in rows)} {k}" for k in kinds)
          + f"); calibration {result['calibration']}\n")
    print("| scorer | wrong kind | AUC (right vs wrong) | mean right | mean wrong | "
          "wrong above the lowest right |")
    print("|---|---|---|---|---|---|")
    for name in SCORERS:
        lowest = min(r[name] for r in good)
        for kind in kinds:
            wrong = [r for r in rows if r["kind"] == kind]
            area = auc([r[name] for r in good + wrong], [True] * len(good) + [False] * len(wrong))
            print(f"| {name} | {kind} | {area:.3f} | "
                  f"{statistics.mean(r[name] for r in good):.2f} | "
                  f"{statistics.mean(r[name] for r in wrong):.2f} | "
                  f"{sum(r[name] >= lowest for r in wrong)} of {len(wrong)} |")


if __name__ == "__main__":
    staged_main(__file__, __doc__, "judge-values", STAGES, 0, child, report)
