"""Evaluation reports: results.json, report.md and a bar chart per run, and comparing two runs.

A run folder holds ``results.json`` ({"meta": ..., "episodes": [EpisodeResult as JSON]}),
``report.md`` (per task: success rate with a Wilson 95% interval, mean steps, invalid-action
rate, time) and ``success.png``. `compare` reads two run folders.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from daemon.core.errors import MissingFile, UsageError

from .evaluation import EpisodeResult

RESULTS = "results.json"


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a success rate (95% by default). Its ends are exactly 0
    with no success and 1 with every one (the formula's floats miss them: 6 of 6 gave an
    upper end below the rate, and the report's chart a negative error bar)."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if successes == 0 else max(0.0, centre - half),
            1.0 if successes == n else min(1.0, centre + half))


@dataclass(frozen=True)
class TaskSummary:
    task: str
    episodes: int
    successes: int
    mean_steps: float
    invalid_rate: float         # invalid actions per step
    mean_seconds: float
    errors: int                 # episodes that failed to run (hung page, browser error)

    @property
    def rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.successes, self.episodes)


def summarize(results: list[EpisodeResult]) -> list[TaskSummary]:
    """One summary per task (in first-seen order) and a final one named "all"."""
    groups: dict[str, list[EpisodeResult]] = {}
    for r in results:
        groups.setdefault(r.task, []).append(r)
    if results:
        groups["all"] = results
    return [_summary(task, rs) for task, rs in groups.items()]


def _summary(task: str, rs: list[EpisodeResult]) -> TaskSummary:
    steps = sum(r.steps for r in rs)
    return TaskSummary(task, len(rs), sum(r.success for r in rs),
                       statistics.mean(r.steps for r in rs),
                       sum(r.invalid for r in rs) / steps if steps else 0.0,
                       statistics.mean(r.seconds for r in rs), sum(r.error is not None for r in rs))


def write_run(out: Path, results: list[EpisodeResult], meta: dict) -> None:
    """Write results.json, report.md and success.png into `out` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "episodes": [dataclasses.asdict(r) for r in results]}
    _atomic_write(out / RESULTS, json.dumps(data, indent=1, ensure_ascii=False))
    summaries = summarize(results)
    _atomic_write(out / "report.md", markdown(summaries, meta))
    if results:
        _plot([s for s in summaries if s.task != "all"], out / "success.png",
              f"{_title(meta)} success per task — {meta.get('policy', '')}")


def _title(meta: dict) -> str:
    titles = {"sites": "Bundled sites", "skills": "Skills"}
    return titles.get(meta.get("benchmark", "miniwob"), "MiniWoB++")


def markdown(summaries: list[TaskSummary], meta: dict) -> str:
    lines = [f"# {_title(meta)} evaluation: {meta.get('policy', '?')}", "",
             ", ".join(f"{k}: {v}" for k, v in meta.items() if k not in ("policy", "benchmark")),
             "",
             "| task | episodes | success | 95% interval | mean steps | invalid actions/step "
             "| mean time (s) | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        low, high = s.interval
        name = f"**{s.task}**" if s.task == "all" else s.task
        lines.append(f"| {name} | {s.episodes} | {s.rate:.2f} | {low:.2f}–{high:.2f} | "
                     f"{s.mean_steps:.1f} | {s.invalid_rate:.3f} | {s.mean_seconds:.1f} | "
                     f"{s.errors} |")
    return "\n".join(lines) + "\n"


def load_run(folder: Path) -> tuple[dict, list[EpisodeResult]]:
    path = folder / RESULTS
    try:
        data = json.loads(path.read_text())
        return data["meta"], [EpisodeResult(**e) for e in data["episodes"]]
    except FileNotFoundError:
        raise MissingFile(f"{path} does not exist: give the --out folder of an "
                                "evaluation run") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} is not an evaluation result ({exc})") from None


@dataclass(frozen=True)
class TaskDiff:
    task: str
    rate_a: float | None
    rate_b: float | None
    won: int = 0                    # seeds run in both that B solved and A did not
    lost: int = 0                   # ... that A solved and B did not

    @property
    def diff(self) -> float | None:
        if self.rate_a is None or self.rate_b is None:
            return None
        return self.rate_b - self.rate_a

    @property
    def p_value(self) -> float:
        """Two-sided exact sign test on the paired seeds that differ (1.0 when none do)."""
        return sign_test(self.won, self.lost)


def sign_test(won: int, lost: int) -> float:
    """Two-sided exact binomial (sign) test of `won` against `lost`, ties left out."""
    n, k = won + lost, min(won, lost)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def won_lost(before: dict, after: dict) -> tuple[int, int]:
    """Paired outcomes: (the keys both have where `after` did better, where it did worse)."""
    keys = before.keys() & after.keys()
    return sum(after[k] > before[k] for k in keys), sum(after[k] < before[k] for k in keys)


def compare(a: list[EpisodeResult], b: list[EpisodeResult]) -> list[TaskDiff]:
    """Per task (and "all"): both success rates, and the (task, seed) pairs run in both that
    only one of them solved."""
    rates_a = {s.task: s.rate for s in summarize(a)}
    rates_b = {s.task: s.rate for s in summarize(b)}
    tasks = [t for t in rates_a if t != "all"] + \
        [t for t in rates_b if t not in rates_a and t != "all"] + ["all"]
    solved_a = {(r.task, r.seed): r.success for r in a}
    solved_b = {(r.task, r.seed): r.success for r in b}

    def diff(task: str) -> TaskDiff:
        won, lost = won_lost({k: v for k, v in solved_a.items() if task in ("all", k[0])},
                             solved_b)
        return TaskDiff(task, rates_a.get(task), rates_b.get(task), won=won, lost=lost)
    return [diff(t) for t in tasks]


def plot_compare(diffs: list[TaskDiff], path: Path, label_a: str, label_b: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [d for d in diffs if d.diff is not None and d.task != "all"]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.5))
    ax.barh([d.task for d in rows], [d.diff for d in rows],
            color=["#3a7" if d.diff >= 0 else "#c44" for d in rows])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(-1, 1)
    ax.invert_yaxis()
    ax.set_xlabel(f"success rate: {label_b} minus {label_a}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot(summaries: list[TaskSummary], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.3 * len(summaries) + 1.5))
    rates = [s.rate for s in summaries]
    errors = [[s.rate - s.interval[0] for s in summaries],
              [s.interval[1] - s.rate for s in summaries]]
    ax.barh([s.task for s in summaries], rates, xerr=errors, color="#48c", capsize=2)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("success rate (bars: 95% Wilson interval)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
