"""Benchmark: does a LoRA adapter on the judge rank episodes of tasks it never saw better?

The labelled episodes' task templates are dealt into FOLDS folds. Stage ``fold-K`` trains a
judge adapter (trainer/judge_adapter.py) on the other folds' episodes, within ``--budget``
seconds, then scores every episode of fold K with the shipped judge model in llama.cpp, with
and without that adapter: FLIP's raw likelihood and its margin over DISTRACTORS other
instructions (its own template's first, from the whole set, as the store would give them).
The report pools the folds, so every figure is on templates the adapter never trained on:
pooled AUC, AUC per task and accuracy on unseen tasks of the margin, of the likelihood's z
within its template, and of the calibrated combination (z + lexical, leave-task-out), each
without and with the adapter, beside the lexical baseline of the same episodes.

Usage: python bench/judge_adapter.py [--out DIR] [--budget 900] [--report] (on LABELLED).
Prints a table and asserts nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness import REPO, save_stage, staged_main

FOLDS = 4
DISTRACTORS = 2
EPOCHS = 2
STAGES = tuple(f"fold-{k}" for k in range(FOLDS))
LABELLED = REPO / "tests" / "data" / "miniwob-core-labelled.jsonl.gz"


def labelled(path: Path) -> list:
    from judge.evaluate import load_jsonl
    return load_jsonl(path)


def fold_of(items: list) -> dict[str, int]:
    """Each template's fold: templates in sorted order, dealt round robin."""
    return {t: n % FOLDS for n, t in enumerate(sorted({i.template for i in items}))}


def score(judge, items: list, peers: list) -> list[dict]:
    """FLIP's raw likelihood and margin of each of `items` under `judge`."""
    from judge import flip
    from judge.judge import RENDER_CHARS
    from judge.render import render
    rows = []
    for item in items:
        rendered = render(item.episode, item.steps, RENDER_CHARS)
        task = item.episode.task
        ordered = [p.episode.task for p in peers if p.template == item.template] + \
            [p.episode.task for p in peers if p.template != item.template]
        raw = flip.likelihood(judge, rendered, task)
        rows.append({"likelihood": raw, "margin": flip.margin(
            judge, rendered, raw, flip.distractors(task, ordered, DISTRACTORS))})
    return rows


def run_fold(k: int, out: Path, budget: float) -> dict:
    from daemon.core.models import shipped_model
    from judge import lexical
    from judge.evaluate import peers
    from judge.model import JudgeModel
    from trainer.judge_adapter import flip_items, train_adapter
    t0 = time.monotonic()
    items = labelled(LABELLED)
    folds = fold_of(items)
    train = [i for i in items if folds[i.template] != k]
    held = [i for i in items if folds[i.template] == k]
    base = JudgeModel()
    trained = train_adapter(shipped_model(), flip_items(train, base, DISTRACTORS),
                            out / f"fold-{k}-adapter", epochs=EPOCHS,
                            deadline=time.monotonic() + budget)
    print(f"  fold {k}: {len(train)} episodes, {trained.steps} steps in {trained.seconds} s, "
          f"loss {trained.losses[0]:.3f} → {trained.losses[-1]:.3f}", flush=True)
    adapted = JudgeModel(adapter=trained.adapter)
    rows = [{"template": i.template, "truth": i.truth,
             "lexical": lexical.score(i.episode, i.steps),
             "arguments": lexical.arguments(i.episode, i.steps,
                                            list(peers(i, items).template_tasks)),
             "base": b, "adapter": a}
            for i, b, a in zip(held, score(base, held, items), score(adapted, held, items))]
    return {"rows": rows, "train_episodes": len(train), "steps": trained.steps,
            "losses": trained.losses, "budget": budget, "seconds": round(time.monotonic() - t0)}


def summary(rows: list[dict]) -> dict[str, dict]:
    """Every scorer's figures over `rows` (all folds: every template unseen by its adapter)."""
    from judge import calibration, evaluate
    groups, labels = [r["template"] for r in rows], [r["truth"] > 0 for r in rows]
    scored = [{"template": r["template"], "truth": r["truth"], "seconds": {},
               "lexical": r["lexical"]} for r in rows]
    for judge in ("base", "adapter"):
        z = evaluate.leave_one_out_z([r[judge]["likelihood"] for r in rows], groups)
        p = calibration.leave_task_out([{**r, "flip_likelihood_z": zr}
                                        for r, zr in zip(rows, z)], labels, groups)
        for row, r, zr, pr in zip(scored, rows, z, p):
            row.update({f"margin ({judge})": r[judge]["margin"],
                        f"likelihood z ({judge})": zr, f"calibrated ({judge})": pr})
    names = tuple(n for n in scored[0] if n not in ("template", "truth", "seconds"))
    return evaluate.summarize(scored, names)


def child(stage: str, out: Path, budget: float) -> None:
    save_stage(out, stage, run_fold(int(stage.split("-")[1]), out, budget))


def report(out: Path, budget: float) -> None:
    done = [json.loads((out / f"{s}.json").read_text()) for s in STAGES
            if (out / f"{s}.json").exists()]
    if not done:
        print("nothing measured yet")
        return
    rows = [r for fold in done for r in fold["rows"]]
    steps = ", ".join(f"{fold['steps']} steps ({fold['train_episodes']} episodes, "
                      f"{fold.get('budget', budget) / 60:g} min)" for fold in done)
    print(f"{len(done)} of {FOLDS} folds, {len(rows)} held-out episodes "
          f"({sum(r['truth'] > 0 for r in rows)} successes); each adapter trained on the other "
          f"folds for at most {EPOCHS} epochs (batches of 4): {steps}\n")
    print("| scorer | AUC pooled | AUC per task | accuracy, unseen tasks |")
    print("|---|---|---|---|")
    for name, m in summary(rows).items():
        print(f"| {name} | {m['auc']} | {m['auc_per_task']} | {m['accuracy_leave_task_out']} |")


if __name__ == "__main__":
    staged_main(__file__, __doc__, "judge-adapter", STAGES, 15 * 60, child, report)
