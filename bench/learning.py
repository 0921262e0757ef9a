"""Benchmark: does a night of learning help, without the teacher? Core test seeds after real cycles.

Stages, each saved to ``OUT/<stage>.json`` as it finishes (a rerun skips finished stages and a
cycle cut short goes on from its last finished phase: the curve spans several sessions):

- ``base``: the shipped SmolLM2, no adapter, greedy, on every `core` task x 5 test seeds
  (160 episodes, 10 steps each), and ``blind``: always click the first clickable element, on the
  same episodes (a gain that only reflects position habits would not beat it);
- ``curve-1`` … ``curve-4``: four consecutive teacher-free cycles (`trainer.cycle.run_cycle`,
  the product's defaults: self-imitation of verified successes, hindsight relabelling, GRPO, the
  gate promoting on evidence) in one store, practising on `core` minus HELD_OUT (never practised,
  never trained on), each within ``--budget`` seconds; after each, its candidate adapter on the
  same 160 episodes as the base;
- ablations, one cycle each from the base on the same budget: ``rft`` (self-imitation only),
  ``rft+relabel``, ``rft+grpo``, ``teacher`` (the oracle's demonstrations on the tasks it knows
  plus self-imitation, no GRPO: the old arm, for reference), ``rft+ids`` (self-imitation with
  two id-renumbered copies of each success: against position habits), ``rft+unsolved``
  (self-imitation without the groups every attempt of which succeeded: what is left is what
  the policy does not do yet), ``explore+passes`` (the product's defaults with a quarter of
  the practice steps' kinds of action drawn at random — the small model almost never tries
  `fill` — and SFT passing over its samples until its time share ends, up to 8 times, where 2
  passes used 8 of the 20 training minutes).

Every measurement is paired with the base on the same (task, seed): won / lost and a two-sided
sign test, overall, on the practised tasks and on the held-out ones.

- ``confirm-base``, ``confirm-curve-N`` (not run by default): the base and a stage's candidate
  on the *next* EVAL_SEEDS test seeds of every core task, which neither the measurements above
  nor any gate (it takes the first test seeds) ever used. Picking the best stage by the figures
  above, and promoting by a gate on those same seeds, is selection on them; this is the
  measurement that decides whether a stage ships as the default starting adapter.

Usage: python bench/learning.py [--out DIR] [--stages base,blind,...] [--budget 2700]
[--report]. Runs each missing stage in a child process (its own XDG home under OUT), then
prints the table and draws OUT/learning.png; asserts nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

from harness import measure, one_cycle, save_stage, staged_main, use_home

# Held out of practice entirely: every fourth `core` task (a fixed rule, chosen before any run).
HELD_OUT_EVERY = 4
EVAL_SEEDS = 5                  # test seeds per task for every measurement
EVAL_STEPS = 10                 # steps per measured episode (the README's baseline)
CURVE = tuple(f"curve-{n}" for n in range(1, 5))
ABLATIONS = ("rft", "rft+relabel", "rft+grpo", "teacher", "rft+ids", "rft+unsolved",
             "explore+passes")
CONFIRM = tuple(f"confirm-{s}" for s in ("base", *CURVE))
STAGES = ("base", "blind", *CURVE, *ABLATIONS)


def core_split() -> tuple[list[str], list[str]]:
    """(practised, held out) `core` tasks."""
    from daemon.tasks import miniwob
    core = miniwob.suite("core")
    held = core[HELD_OUT_EVERY - 1::HELD_OUT_EVERY]
    return [t for t in core if t not in held], held


def arm_of(stage: str) -> tuple[str, int]:
    """(the store a cycle stage trains in, its cycle number): curve-N share one store."""
    return ("curve", int(stage.split("-")[1])) if stage in CURVE else (stage, 1)


def recipe(stage: str):
    """(TrainConfig, CyclePlan) of a cycle stage."""
    from trainer.config import CyclePlan, TrainConfig
    practised, _ = core_split()
    plan, config = CyclePlan(tasks=tuple(practised), teacher_seeds=0), TrainConfig()
    no_grpo, no_relabel = {"grpo_epochs": 0}, {"relabel_share": 0.0}
    changes = {"rft": {**no_grpo, **no_relabel}, "rft+relabel": no_grpo,
               "rft+grpo": no_relabel, "teacher": {**no_grpo, **no_relabel},
               "rft+ids": {**no_grpo, **no_relabel, "rft_id_variants": 2},
               "rft+unsolved": {**no_grpo, **no_relabel, "sft_skip_solved": True},
               "explore+passes": {"practice_explore": 0.25, "sft_epochs": 8}}
    config = dataclasses.replace(config, **changes.get(stage, {}))
    if stage == "teacher":
        plan = dataclasses.replace(plan, teacher_seeds=CyclePlan().teacher_seeds)
    return config, plan


# -- one stage, in a child process ------------------------------------------------------------

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


async def measure_core(policy, db: Path, partial: Path, fresh: bool = False) -> list[dict]:
    """Every core task x EVAL_SEEDS test seeds with `policy`, resumable (harness.measure); the
    next EVAL_SEEDS test seeds when `fresh` (the confirmation)."""
    from daemon.tasks import miniwob, splits
    seeds = splits.seeds("test", EVAL_SEEDS, skip=EVAL_SEEDS if fresh else 0)
    return await measure(miniwob.suite("core"), seeds, policy, db,
                         partial, max_steps=EVAL_STEPS)


async def run_stage(stage: str, out: Path, budget: float) -> dict:
    """Run `stage` and return what it measured (saved by the caller)."""
    from daemon.agent.llama_policy import LlamaPolicy
    t0 = time.monotonic()
    if stage in ("base", "blind"):
        settings = use_home(out / "eval-home")
        policy = FirstClickable() if stage == "blind" else \
            LlamaPolicy(dataclasses.replace(settings, temperature=0.0, adapter=""))
        rows = await measure_core(policy, out / f"{stage}.db", out / f"{stage}.partial.jsonl")
        return {"results": rows, "seconds": round(time.monotonic() - t0)}
    if stage in CONFIRM:
        measured = stage.removeprefix("confirm-")
        adapter = "" if measured == "base" else \
            json.loads((out / f"{measured}.cycle.json").read_text())["adapter"]
        policy = LlamaPolicy(dataclasses.replace(use_home(out / "eval-home"), temperature=0.0,
                                                 adapter=adapter))
        rows = await measure_core(policy, out / f"{stage}.db", out / f"{stage}.partial.jsonl",
                                  fresh=True)
        return {"adapter": adapter, "results": rows, "seconds": round(time.monotonic() - t0)}
    arm = arm_of(stage)[0]
    settings = use_home(out / arm)
    cycle_file = out / f"{stage}.cycle.json"
    if not cycle_file.exists():        # the cycle first (it resumes itself), then the measure
        config, plan = recipe(stage)
        cycle_file.write_text(json.dumps(await one_cycle(settings, config, plan, budget, stage),
                                         indent=1))
    cycle = json.loads(cycle_file.read_text())
    policy = LlamaPolicy(dataclasses.replace(settings, temperature=0.0,
                                             adapter=cycle["adapter"]))
    rows = await measure_core(policy, out / f"{stage}.db", out / f"{stage}.partial.jsonl")
    return {**cycle, "results": rows, "seconds": round(time.monotonic() - t0)}


def child(stage: str, out: Path, budget: float) -> None:
    save_stage(out, stage, {**asyncio.run(run_stage(stage, out, budget)), "budget": budget})


# -- the report -------------------------------------------------------------------------------

def report(out: Path, budget: float) -> None:
    from daemon.tasks.report import sign_test, won_lost
    practised, held = core_split()
    measured = {s: json.loads((out / f"{s}.json").read_text()) for s in (*STAGES, *CONFIRM)
                if (out / f"{s}.json").exists()}
    if "base" not in measured:
        print("no base measurement yet")
        return
    runs = {s: r for s, r in measured.items() if s in STAGES}
    confirmed = {s: r for s, r in measured.items() if s in CONFIRM}

    def rate(outcome: dict, tasks: list[str]) -> str:
        keys = [k for k in outcome if k[0] in tasks]
        return f"{sum(outcome[k] for k in keys) / len(keys):.3f}" if keys else "-"

    def paired(outcome: dict, tasks: list[str], base: dict) -> str:
        won, lost = won_lost({k: v for k, v in base.items() if k[0] in tasks}, outcome)
        return f"{won} / {lost} (p {sign_test(won, lost):.2f})"

    print(f"core: {len(practised) + len(held)} tasks x {EVAL_SEEDS} test seeds, greedy, "
          f"{EVAL_STEPS} steps; held out of practice: {', '.join(held)}; "
          f"{budget / 60:g} min budget per cycle\n")
    print("| stage | success (all) | practised | held out | won / lost vs base (all) | "
          "practised | held out | SFT / GRPO steps | practice episodes | promoted | "
          "cycle s | peak MiB | commit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    everything = practised + held

    def rows(runs: dict, base_stage: str) -> None:
        base = outcomes(runs[base_stage])
        for stage, run in runs.items():
            outcome, cycle = outcomes(run), run.get("cycle", {})
            cells = [stage, rate(outcome, everything), rate(outcome, practised),
                     rate(outcome, held)]
            cells += ["-"] * 3 if stage == base_stage else \
                [paired(outcome, t, base) for t in (everything, practised, held)]
            cells += [f"{cycle['sft_steps']} / {cycle['grpo_steps']}", cycle["practice_episodes"],
                      cycle["promoted"], cycle["seconds"].get("total")] if cycle else ["-"] * 4
            cells += [run["peak_mib"], run["commit"]]
            print("| " + " | ".join(str(c) for c in cells) + " |")
    rows(runs, "base")
    if "confirm-base" in confirmed:
        print(f"\nconfirmation on the next {EVAL_SEEDS} test seeds (never measured nor gated "
              "on):\n\n| stage | success (all) | practised | held out | won / lost vs "
              "confirm-base (all) | practised | held out | | | | | peak MiB | commit |\n"
              + "|---" * 13 + "|")
        rows(confirmed, "confirm-base")
    _plot(runs, out / "learning.png")


def outcomes(run: dict) -> dict:
    return {(r["task"], r["seed"]): r["success"] for r in run["results"]}


def _plot(runs: dict, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def success(stage: str) -> float:
        rows = runs[stage]["results"]
        return sum(r["success"] for r in rows) / len(rows)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    curve = [(0, success("base"))] + [(arm_of(s)[1], success(s)) for s in CURVE if s in runs]
    ax.plot(*zip(*curve), marker="o", label="teacher-free cycles")
    for stage in ABLATIONS:
        if stage in runs:
            ax.scatter([1], [success(stage)], marker="x", label=stage)
    if "blind" in runs:
        ax.axhline(success("blind"), linestyle="--", color="grey", label="text-blind")
    ax.set_xlabel("learning cycle")
    ax.set_ylabel("success, core test seeds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    staged_main(__file__, __doc__, "learning", (*STAGES, *CONFIRM), 45 * 60, child, report,
                default=STAGES)
