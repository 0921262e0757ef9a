"""Benchmark: the learning curve — success on MiniWoB++ test seeds after real learning cycles.

Arms, each in its own fresh home and store, on the same tasks and seeds:
- base: the shipped SmolLM2 with no adapter (the first cycle's gate measures it);
- text-blind: always click the first clickable element (a gain that only reflects position
  habits would not beat it);
- SFT only (oracle teacher + good episodes, no GRPO), GRPO from the base (no teacher, no SFT),
  and SFT + GRPO for several cycles in a row (each starts from the adapter the last promoted).

Each cycle is `trainer.cycle.run_cycle` (practice → judge → train → export → gate); the figure
per cycle is its candidate's success on the test seeds, with wall time and peak memory.

Usage: python bench/learning.py [--cycles 2] [--seeds 3] [--gate-seeds 10] [--budget SECONDS]
[--arms sft,grpo,sft+grpo] [--png PATH]. Prints a table and draws the curve (bench/learning.png
unless --png); asserts nothing. "serving" is the adapter the cycle started from, measured again
on the same test seeds in the same cycle (run-to-run noise is visible there).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import tempfile
import time
from pathlib import Path

from harness import header

TASKS = ("click-button", "click-link", "focus-text")


class FirstClickable:
    """The text-blind baseline: click the first button, link or clickable element."""
    name, adapter = "text-blind", None

    async def decide(self, context):
        from daemon.agent.policy import Decision
        from daemon.core.actions import Action
        for element in context.observation.elements:
            if element.role in ("button", "link", "clickable", "textbox", "checkbox"):
                return Decision(Action("click", {"id": element.id}))
        return Decision(Action("done"))


def peak_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 0)


def fresh_home(name: str) -> Path:
    home = Path(tempfile.mkdtemp(prefix=f"nightloop-learn-{name}-"))
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    return home


async def arm(name: str, config, plan, cycles: int, budget: float) -> list[dict]:
    from daemon.core.settings import load_settings
    from trainer.cycle import run_cycle
    home = fresh_home(name)
    settings = load_settings({"db": str(home / "store.db")}).settings
    rows = []
    for n in range(1, cycles + 1):
        t0 = time.monotonic()
        result = await run_cycle(settings, config, plan, budget=budget,
                                 say=lambda line: print(f"  [{name} {n}] {line}", flush=True))
        rows.append({"arm": name, "cycle": n, "gate": result.gate, "error": result.error,
                     "promoted": result.promoted, "seconds": round(time.monotonic() - t0),
                     "peak_mib": peak_mib(),
                     "steps": " / ".join(str(r["steps"]) for r in result.training)})
    return rows


async def main(cycles: int, n_seeds: int, gate_seeds: int, budget: float, names: list[str],
               png: Path) -> None:
    from daemon.tasks import miniwob
    from daemon.tasks.evaluation import EvalPlan, evaluate
    from trainer.config import CyclePlan, TrainConfig

    header("nightloop learning-curve bench")
    plan = CyclePlan(tasks=TASKS, practice_seeds=n_seeds, gate_seeds=gate_seeds, max_steps=3)
    config = TrainConfig(practice_k=4, gate_promote="always")   # chain cycles: always continue
    arms = {
        "sft": ("SFT only", dataclasses.replace(config, grpo_epochs=0), plan, 1),
        "grpo": ("GRPO from base", dataclasses.replace(config, sft_epochs=0),
                 dataclasses.replace(plan, teacher_seeds=0), 1),
        "sft+grpo": ("SFT + GRPO", config, plan, cycles),
    }
    home = fresh_home("blind")
    blind = await evaluate(EvalPlan(list(TASKS), miniwob.seeds("test", gate_seeds), 3),
                           policy=FirstClickable(), db=home / "blind.db")
    rows = []
    for name, arm_config, arm_plan, n in (arms[key] for key in names):
        rows += await arm(name, arm_config, arm_plan, n, budget)
    report(rows, blind, config, plan, budget, png)


def report(rows: list[dict], blind: list, config, plan, budget: float, png: Path) -> None:
    """Print the table and draw the curve into `png`."""
    base = rows[0]["gate"].get("serving", {})
    base_rate, blind_rate = base.get("success"), _rate(blind)
    n_seeds, gate_seeds = plan.practice_seeds, plan.gate_seeds
    n_test = len(TASKS) * gate_seeds
    print(f"\n{len(TASKS)} tasks ({', '.join(TASKS)}), practice {n_seeds} train seeds x "
          f"{config.practice_k} attempts at temperature {config.practice_temperature:g}, teacher "
          f"{plan.teacher_seeds} train seeds per task, gate {gate_seeds} test seeds per task "
          f"({n_test} episodes) at temperature {config.gate_temperature:g}, "
          f"{budget / 60:g} min budget per cycle\n")
    print(f"| arm | cycle | test success (n) | vs base | {' / '.join(TASKS)} | serving then | "
          "seeds won / lost vs serving | SFT / GRPO steps | promoted | wall s | peak MiB so far |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    blind_tasks = " / ".join(f"{_rate([r for r in blind if r.task == t]):.2f}" for t in TASKS)
    print(f"| base (no adapter) | - | {base_rate:.2f} ({base.get('n')}) | 1.00x | "
          f"{_tasks(base)} | - | - | - | - | - | - |")
    print(f"| text-blind (first clickable) | - | {blind_rate:.2f} ({len(blind)}) | "
          f"{blind_rate / base_rate:.2f}x | {blind_tasks} | - | - | - | - | - | - |")
    for r in rows:
        candidate, serving = r["gate"].get("candidate", {}), r["gate"].get("serving", {})
        rate, pairs = candidate.get("success", 0.0), r["gate"].get("pairs", {})
        ratio = f"{rate / base_rate:.2f}x" if base_rate else "-"
        print(f"| {r['arm']} | {r['cycle']} | {rate:.2f} ({candidate.get('n')}) | {ratio} | "
              f"{_tasks(candidate)} | {serving.get('success', 0):.2f} | "
              f"{pairs.get('won')} / {pairs.get('lost')} | {r['steps']} | {r['promoted']} | "
              f"{r['seconds']} | {r['peak_mib']:.0f} |"
              + (f" error: {r['error']}" if r["error"] else ""))
    _plot(rows, base_rate, blind_rate, png)


def _rate(results) -> float:
    return sum(r.success for r in results) / len(results) if results else 0.0


def _tasks(rates: dict) -> str:
    """Per-task success from a gate's figures, in TASKS order."""
    return " / ".join(f"{rates.get('tasks', {}).get(t, 0):.2f}" for t in TASKS)


def _plot(rows: list[dict], base_rate, blind_rate, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name in dict.fromkeys(r["arm"] for r in rows):
        points = [(0, base_rate)] + [(r["cycle"], r["gate"].get("candidate", {}).get("success"))
                                     for r in rows if r["arm"] == name]
        ax.plot(*zip(*points), marker="o", label=name)
    ax.axhline(blind_rate, linestyle="--", color="grey", label="text-blind")
    ax.set_xlabel("learning cycle")
    ax.set_ylabel("success on test seeds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--gate-seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, default=16 * 60, help="seconds per cycle")
    parser.add_argument("--arms", default="sft,grpo,sft+grpo",
                        help="comma-separated, in order: sft, grpo, sft+grpo (the first one's "
                             "first cycle measures the base)")
    parser.add_argument("--png", type=Path, default=Path(__file__).with_name("learning.png"))
    args = parser.parse_args()
    names = [a.strip() for a in args.arms.split(",")]
    if set(names) - {"sft", "grpo", "sft+grpo"}:
        parser.error(f"--arms: choose from sft, grpo, sft+grpo; got {args.arms!r}")
    asyncio.run(main(args.cycles, args.seeds, args.gate_seeds, args.budget, names, args.png))
