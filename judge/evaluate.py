"""`nightloop judge eval`: every scorer on episodes with ground truth, side by side.

Scorers (keys of the JSON summary):
- ``flip``: what the product uses (`JudgeOptions`: calibrated likelihood by default).
- ``flip_generate``: FLIP's generative form, token F1 of the inferred instruction.
- ``flip_likelihood``: the raw mean log-probability of the instruction (no calibration).
- ``flip_likelihood_z``: the raw form z-scored against the other episodes of its template
  (leave-one-out) — the other calibration we tried.
- ``direct``: the same model asked "did the agent complete the task?", p(yes).
- ``lexical``: token F1 between the task and the actions, no model.
- ``arguments``: the share of the task's own words (rare among its template's other tasks)
  that the actions name, no model (`lexical.arguments`).
- ``rules``: the progress rules alone.
- ``hybrid``: the reward the product stored before the calibration, `reward.combine(flip,
  rules)` (and still stores without one: the generate form).
- ``calibrated``: the reward the product stores (as 2p − 1): the learned combination
  (calibration.py) of the raw likelihood within its template, lexical and arguments, each
  template predicted from a fit on the others.

Each gets ROC-AUC (pooled, and the mean over templates that hold both classes), accuracy at the
best threshold, accuracy leave-task-out (the threshold found on the other templates; 0.5 for
the calibrated probability), Spearman with the ground-truth reward, n, and seconds per episode.
Pooled AUC is leave-task-out for every scorer: none is fitted, but `calibrated`, whose every
score comes from a fit that never saw its template. That mixes 32 fits in one ranking, which
costs a fitted score even when it is a monotone function of one scorer, so ``auc_unseen`` is
the fair comparison across tasks: the templates split into 4 parts (10 random splits), each
part's episodes ranked together — `calibrated` by one fit on the other parts
(`calibration.unseen_parts`), the others by their own scores — and the mean over parts. Peers
for the calibrations are the other episodes of the evaluated set, as the store would give them.
"""

from __future__ import annotations

import gzip
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from daemon.core.store import Episode, Reward, Step, Store

from . import calibration, direct, flip, lexical, metrics, rules
from .judge import RENDER_CHARS, JudgeOptions, Peers, template
from .model import JudgeModel
from .render import render
from .reward import combine

MODEL_SCORERS = ("flip", "flip_generate", "flip_likelihood", "flip_likelihood_z", "direct",
                 "hybrid", "calibrated")
SCORERS = (*MODEL_SCORERS, "lexical", "arguments", "rules")
DEFAULT = "calibrated"      # what the product's judge stores as its reward
PRECISION_AT = (0.5, 0.6, 0.7, 0.75, 0.8, 0.9)     # probabilities a fit states its precision at


@dataclass
class Labelled:
    episode: Episode
    steps: list[Step]
    truth: float                    # the ground-truth reward: success means > 0 (1 or a raw
                                    # MiniWoB++ reward in older stores)

    @property
    def success(self) -> bool:
        return self.truth > 0

    @property
    def template(self) -> str:
        return template(self.episode.start_url)


def _labelled(episode: Episode, steps: list[Step], rewards: list[Reward]) -> Labelled | None:
    """The episode with its ground truth; None without one, or without steps (the harness
    failed before the agent acted: nothing to judge)."""
    truth = [r.value for r in rewards if r.kind == "ground_truth"]
    return Labelled(episode, steps, truth[-1]) if truth and steps else None


def load_jsonl(path: Path) -> list[Labelled]:
    """Episodes exported by `nightloop episodes export` (optionally .gz) that have ground
    truth."""
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt") as f:
        for line in f:
            row = json.loads(line)
            episode = Episode(**{k: v for k, v in row.items() if k not in ("steps", "rewards")})
            item = _labelled(episode, [Step(**{"action": None, **s}) for s in row["steps"]],
                             [Reward(**r) for r in row["rewards"]])
            if item:
                out.append(item)
    return out


async def load_store(store: Store, ids: list[int] | None = None) -> list[Labelled]:
    """Episodes of the store (all, or `ids`) that have ground truth, oldest first."""
    episodes = [await store.episode(i) for i in ids] if ids else \
        list(reversed(await store.episodes()))
    out = []
    for episode in episodes:
        if episode is None or episode.status == "running":
            continue
        item = _labelled(episode, await store.steps(episode.id), await store.rewards(episode.id))
        if item:
            out.append(item)
    return out


def score_all(items: list[Labelled], model: JudgeModel | None, options: JudgeOptions,
              scorers: tuple[str, ...] = SCORERS,
              progress: Callable[[int, int], None] = lambda done, total: None) -> list[dict]:
    """Per episode: {scorer: score} plus {"seconds": {scorer: s}}. Model scorers need `model`."""
    if model is None and set(scorers) & set(MODEL_SCORERS):
        raise ValueError("the model scorers need a judge model")
    rows = []
    for n, item in enumerate(items, 1):
        rows.append(_score_one(item, peers(item, items), model, options, scorers))
        progress(n, len(items))
    if {"flip_likelihood_z", "calibrated"} & set(scorers):
        # each against its template's other episodes (the store gives the judge those that
        # came before)
        raw = [row["flip_likelihood"] for row in rows]
        for row, z in zip(rows, leave_one_out_z(raw, [i.template for i in items])):
            row["flip_likelihood_z"] = z
            row["seconds"]["flip_likelihood_z"] = row["seconds"]["flip_likelihood"]
    if "calibrated" in scorers:
        predicted = calibration.leave_task_out(rows, [i.success for i in items],
                                               [i.template for i in items])
        for row, p in zip(rows, predicted):
            row["calibrated"] = p
            row["seconds"]["calibrated"] = sum(row["seconds"][part] for part in (
                "flip_likelihood", "rules", "lexical", "arguments"))
    return rows


def peers(item: Labelled, items: list[Labelled]) -> Peers:
    """The tasks of the other `items` as the store gives them to the judge: newest first, the
    template's own apart."""
    return Peers.among(item.template, [(i.episode.task, i.template) for i in reversed(items)
                                       if i is not item])


def _score_one(item: Labelled, peers: Peers, model: JudgeModel | None,
               options: JudgeOptions, scorers: tuple[str, ...]) -> dict:
    episode, steps = item.episode, item.steps
    row: dict = {"episode": episode.id, "template": item.template, "truth": item.truth,
                 "seconds": {}}

    def timed(name: str, fn: Callable[[], float]) -> None:
        t0 = time.perf_counter()
        row[name] = fn()
        row["seconds"][name] = time.perf_counter() - t0

    rendered = render(episode, steps, RENDER_CHARS)
    product = {"flip", "hybrid"} & set(scorers)
    if {"flip_likelihood", "flip_likelihood_z", "calibrated"} & set(scorers) or \
            (product and options.form == "likelihood"):
        timed("flip_likelihood", lambda: flip.likelihood(model, rendered, episode.task))
    if product and options.form == "likelihood":
        # the calibrated score is the raw one plus its margin: time both parts
        others = flip.distractors(episode.task, peers.tasks, options.distractors)
        timed("flip", lambda: flip.to_unit(row["flip_likelihood"], flip.margin(
            model, rendered, row["flip_likelihood"], others)))
        row["seconds"]["flip"] += row["seconds"]["flip_likelihood"]
    if "direct" in scorers:
        timed("direct", lambda: direct.p_yes(model, rendered, episode.task))
    if "flip_generate" in scorers or (product and options.form == "generate"):
        timed("flip_generate", lambda: flip.generate(
            model, rendered, episode.task, samples=options.samples,
            temperature=options.sampling_temperature)[0])
        if options.form == "generate":
            row["flip"], row["seconds"]["flip"] = row["flip_generate"], \
                row["seconds"]["flip_generate"]
    timed("rules", lambda: rules.score(episode, steps))
    progress = row["rules"]                     # the value is the score; the counts are facts
    row["rules"], row["facts"] = progress.value, {**progress.counts, "steps": len(steps)}
    timed("lexical", lambda: lexical.score(episode, steps))
    timed("arguments", lambda: lexical.arguments(episode, steps, list(peers.template_tasks)))
    if "hybrid" in scorers:
        row["hybrid"] = combine(row["flip"], row["rules"])
        row["seconds"]["hybrid"] = row["seconds"]["flip"] + row["seconds"]["rules"]
    kept = set(scorers) | ({"flip_likelihood", "lexical", "arguments", "rules"}
                           if "calibrated" in scorers else set())
    return {k: v for k, v in row.items() if k not in SCORERS or k in kept}


def leave_one_out_z(raw: list[float], groups: list[str]) -> list[float]:
    """Each value against the others of its group (`calibration.z_score`)."""
    return [calibration.z_score(value, [r for j, (r, g) in enumerate(zip(raw, groups))
                                        if g == group and j != i])
            for i, (value, group) in enumerate(zip(raw, groups))]


def summarize(rows: list[dict], scorers: tuple[str, ...] = SCORERS) -> dict[str, dict]:
    labels = [row["truth"] > 0 for row in rows]
    truth = [row["truth"] for row in rows]
    groups = [row["template"] for row in rows]
    refittable = "calibrated" in scorers and all(
        name in row for row in rows for name in calibration.FEATURES)
    parts = calibration.unseen_parts(rows, labels, groups) if refittable else []
    out = {}
    for name in scorers:
        scored = [i for i, row in enumerate(rows) if row.get(name) is not None]
        scores = [rows[i][name] for i in scored]
        ys, gs = [labels[i] for i in scored], [groups[i] for i in scored]
        seconds = [rows[i]["seconds"].get(name, 0.0) for i in scored]
        out[name] = {"auc": _round(metrics.auc(scores, ys)),
                     "auc_per_task": _round(metrics.per_group_auc(scores, ys, gs)),
                     "auc_unseen": _round(_unseen_auc(name, rows, labels, parts)),
                     "accuracy": _round(metrics.best_accuracy(scores, ys)),
                     "accuracy_leave_task_out": _round(metrics.leave_group_out_accuracy(
                         scores, ys, gs, 0.5 if name == "calibrated" else None)),
                     "spearman": _round(metrics.spearman(scores, [truth[i] for i in scored])),
                     "n": len(scored),
                     "seconds_per_episode": round(statistics.mean(seconds), 3) if seconds
                     else None}
        if name == "calibrated":        # a probability: what taking p >= t would select
            out[name]["precision_leave_task_out"] = {
                f"{t:g}": _round(metrics.precision(scores, ys, t)) for t in PRECISION_AT}
    return out


def _unseen_auc(name: str, rows: list[dict], labels: list[bool],
                parts: list[tuple[list[int], list[float]]]) -> float | None:
    """The mean over `parts` of the AUC within each part: `calibrated` by the part's own fit,
    any other scorer by its scores (None without parts: no calibrated scorer was run, or the
    rows lack the features its fits read — probabilities alone cannot be refitted per part)."""
    values = [metrics.auc(fitted if name == "calibrated" else [rows[i].get(name) for i in inside],
                          [labels[i] for i in inside])
              for inside, fitted in parts
              if name == "calibrated" or all(rows[i].get(name) is not None for i in inside)]
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def stated(figures: dict) -> dict:
    """The `calibrated` scorer's summary as the figures a fit states (`Calibration.measured`):
    every one of them from fits that never saw the template scored."""
    return {"auc_leave_task_out": figures["auc"], "auc_unseen": figures["auc_unseen"],
            "auc_per_task": figures["auc_per_task"],
            "accuracy_leave_task_out": figures["accuracy_leave_task_out"],
            "precision_leave_task_out": figures["precision_leave_task_out"]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def write_report(out: Path, summary: dict, rows: list[dict], about: dict) -> None:
    """results.json (summary, per-episode scores, what was run), report.md, scores.png (the
    score distributions), calibration.png (reliability of the scores that are probabilities,
    when any was run)
    and, with the calibrated scorer, calibration.json: a fit on every episode here, its
    leave-task-out figures as its `measured` (the file the judge ships)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"about": about, "summary": summary, "episodes": rows}, indent=1, default=float))
    (out / "report.md").write_text(markdown(summary, about))
    _plot(out / "scores.png", summary, rows)
    if set(PROBABILITIES) & set(summary):
        _reliability_plot(out / "calibration.png", summary, rows)
    if "calibrated" in summary:
        fitted = calibration.fit(rows, [row["truth"] > 0 for row in rows])
        fitted.measured = {
            "set": f"{about.get('source')} ({about.get('episodes')} episodes, "
                   f"{about.get('successes')} successes)",
            "judge": f"{about.get('model')}, likelihood form", **stated(summary["calibrated"])}
        fitted.save(out / "calibration.json")


def markdown(summary: dict, about: dict) -> str:
    n = next(iter(summary.values()))["n"] if summary else 0
    lines = [f"# Judge evaluation: {about.get('model', 'no model')}", "",
             f"{n} episodes with ground truth ({about.get('successes', '?')} successes). "
             "AUC per task: mean over templates with both classes. AUC, unseen tasks "
             "together: templates in 4 parts (10 splits), each part ranked together "
             "(calibrated: by one fit on the other parts), mean over parts.", "",
             "| scorer | AUC | AUC, unseen tasks together | AUC per task | accuracy "
             "| accuracy, unseen tasks | Spearman | s/episode |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in summary.items():
        cells = [m["auc"], m["auc_unseen"], m["auc_per_task"], m["accuracy"],
                 m["accuracy_leave_task_out"], m["spearman"], m["seconds_per_episode"]]
        lines.append(f"| {name} | " + " | ".join("—" if c is None else f"{c:g}" for c in cells)
                     + " |")
    return "\n".join(lines) + "\n"


PROBABILITIES = ("calibrated", "flip", "direct")     # scorers whose score is meant as one


def _reliability_plot(path: Path, summary: dict, rows: list[dict]) -> None:
    """Predicted probability against the observed success rate, per bin (the diagonal is a
    perfectly calibrated scorer)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1)
    for name in [n for n in PROBABILITIES if n in summary]:
        kept = [row for row in rows if row.get(name) is not None]
        bins = metrics.reliability([row[name] for row in kept],
                                   [row["truth"] > 0 for row in kept])
        ax.plot([b[0] for b in bins], [b[1] for b in bins], marker="o", label=name)
    ax.set_xlabel("predicted probability of success")
    ax.set_ylabel("observed success rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot(path: Path, summary: dict, rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(summary)
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        wins = [row[name] for row in rows if row["truth"] > 0 and row.get(name) is not None]
        losses = [row[name] for row in rows if row["truth"] <= 0 and row.get(name) is not None]
        ax.hist([losses, wins], bins=15, label=["failure", "success"], stacked=False,
                density=True, color=["#c0504d", "#4f81bd"], alpha=0.8)
        ax.set_title(f"{name}\nAUC {summary[name]['auc']}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
