"""Benchmark: do nights compound? Teacher-free learning cycles from the shipped starting adapter.

Stages, each saved to ``OUT/<stage>.json`` as it finishes (a rerun skips finished stages and a
cycle cut short goes on from its last finished phase: the curve spans several sessions):

- ``base`` and ``base-again``: the shipped starting adapter (what a new user serves), greedy,
  on every `core` task x EVAL_SEEDS test seeds (160 episodes, EVAL_STEPS steps each), twice:
  the won / lost between the two is the noise floor printed beside every comparison;
  ``blind``: always click the first clickable element, on the same episodes (a gain that only
  reflects position habits would not beat it);
- ``night-1`` … ``night-4``: four consecutive cycles (`trainer.cycle.run_cycle` with the
  product's defaults, no teacher) in one store that starts, as a new user's does, from the
  starting adapter; each within ``--budget`` seconds (the product's `train_budget`, 120 min),
  practising `core` minus HELD_OUT (never practised, never trained on); after each, its
  candidate on the same 160 episodes (promoted or not: the report says which; the gate decides
  on validation seeds, never on these);
- ablations, one night each from the starting adapter on the same budget, where an item's
  effect is in doubt: ``entropy`` (the entropy bonus back on, at 0.01);
- ``confirm-base``, ``confirm-night-N``: the starting adapter and a night's candidate on the
  *next* EVAL_SEEDS test seeds of every core task: the figure of record, from seeds no
  measurement above looked at.

Every measurement is paired with its base on the same (task, seed): won / lost and a two-sided
sign test, overall, on the practised tasks and on the held-out ones. Per night the report also
gives practice throughput (episodes an hour, informative GRPO groups, the share of first-step
prompt tokens served from llama.cpp's cache) and the typing tasks practice solved.

Usage: python bench/learning.py [--out DIR] [--stages base,base-again,...] [--budget 7200]
[--report]. Runs each missing stage in a child process (its own XDG home under OUT), then
prints the table and draws OUT/learning.png; asserts nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import time
from pathlib import Path

from harness import measure, one_cycle, save_stage, staged_main, use_home

# Held out of practice entirely: every fourth `core` task (a fixed rule, chosen before any run).
HELD_OUT_EVERY = 4
EVAL_SEEDS = 5                  # test seeds per task for every measurement
EVAL_STEPS = 10                 # steps per measured episode (the README's baseline)
NIGHTS = tuple(f"night-{n}" for n in range(1, 5))
ABLATIONS = {"entropy": {"entropy_coef": 0.01}}
CONFIRM = tuple(f"confirm-{s}" for s in ("base", *NIGHTS))
STAGES = ("base", "base-again", "blind", *NIGHTS, *ABLATIONS)
# The core tasks that need text typed (the ones practice never solved before these nights).
TYPING = ("enter-text", "enter-text-2", "enter-text-dynamic", "enter-password", "enter-date",
          "enter-time", "login-user", "form-sequence-2", "search-engine", "email-inbox",
          "use-autocomplete")


def core_split() -> tuple[list[str], list[str]]:
    """(practised, held out) `core` tasks."""
    from daemon.tasks import miniwob
    core = miniwob.suite("core")
    held = core[HELD_OUT_EVERY - 1::HELD_OUT_EVERY]
    return [t for t in core if t not in held], held


def arm_of(stage: str) -> tuple[str, int]:
    """(the store a cycle stage trains in, its night): night-N share one store."""
    return ("nights", int(stage.split("-")[1])) if stage in NIGHTS else (stage, 1)


def recipe(stage: str):
    """(TrainConfig, CyclePlan) of a cycle stage: the product's defaults, teacher-free."""
    from trainer.config import CyclePlan, TrainConfig
    practised, _ = core_split()
    config = dataclasses.replace(TrainConfig(), **ABLATIONS.get(stage, {}))
    return config, CyclePlan(tasks=tuple(practised), teacher_seeds=0)


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


def greedy(settings, adapter: str):
    from daemon.agent.llama_policy import LlamaPolicy
    return LlamaPolicy(dataclasses.replace(settings, temperature=0.0, adapter=adapter))


async def run_stage(stage: str, out: Path, budget: float) -> dict:
    """Run `stage` and return what it measured (saved by the caller)."""
    from trainer.starting import starting_gguf
    t0 = time.monotonic()
    measured = stage.removeprefix("confirm-")
    if measured in ("base", "base-again", "blind"):
        settings = use_home(out / "eval-home")
        policy = FirstClickable() if stage == "blind" else greedy(settings, str(starting_gguf()))
        rows = await measure_core(policy, out / f"{stage}.db", out / f"{stage}.partial.jsonl",
                                  fresh=stage in CONFIRM)
        return {"results": rows, "seconds": round(time.monotonic() - t0)}
    if stage in CONFIRM:
        adapter = json.loads((out / f"{measured}.cycle.json").read_text())["adapter"]
        rows = await measure_core(greedy(use_home(out / "eval-home"), adapter),
                                  out / f"{stage}.db", out / f"{stage}.partial.jsonl", fresh=True)
        return {"adapter": adapter, "results": rows, "seconds": round(time.monotonic() - t0)}
    arm = arm_of(stage)[0]
    settings = use_home(out / arm, adapter="")     # a new store takes the starting adapter
    cycle_file = out / f"{stage}.cycle.json"
    if not cycle_file.exists():        # the cycle first (it resumes itself), then the measure
        config, plan = recipe(stage)
        first = _last_episode(settings.db_path)
        cycle = await one_cycle(settings, config, plan, budget, stage)
        cycle["practice"] = practice_figures(settings.db_path, first)
        cycle_file.write_text(json.dumps(cycle, indent=1))
    cycle = json.loads(cycle_file.read_text())
    rows = await measure_core(greedy(settings, cycle["adapter"]), out / f"{stage}.db",
                              out / f"{stage}.partial.jsonl")
    return {**cycle, "results": rows, "seconds": round(time.monotonic() - t0)}


def _last_episode(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM episodes").fetchone()[0]


def practice_figures(db: Path, after: int) -> dict:
    """A night's practice (the model's episodes above `after`): how many, the share of its
    first steps' prompt tokens llama.cpp's cache served, and the tasks it solved."""
    with sqlite3.connect(db) as conn:
        first = conn.execute(
            "SELECT sum(s.cached_tokens), sum(s.prompt_tokens) FROM steps s JOIN episodes e "
            "ON e.id = s.episode_id WHERE e.id > ? AND e.source = 'practice' "
            "AND s.\"index\" = 0 AND s.prompt_tokens IS NOT NULL",
            (after,)).fetchone()
        solved = conn.execute(
            "SELECT json_extract(r.details, '$.task'), count(*) FROM rewards r JOIN episodes e "
            "ON e.id = r.episode_id WHERE e.id > ? AND e.source = 'practice' "
            "AND r.kind = 'ground_truth' AND r.value > 0 GROUP BY 1", (after,)).fetchall()
        episodes = conn.execute("SELECT count(*) FROM episodes WHERE id > ? AND source = "
                                "'practice'", (after,)).fetchone()[0]
    cached, prompt = first
    return {"episodes": episodes, "first_prompt_cached": round(cached / prompt, 3)
            if prompt else None, "solved": dict(solved)}


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
          f"{EVAL_STEPS} steps; from the shipped starting adapter; held out of practice: "
          f"{', '.join(held)}; {budget / 60:g} min budget per night\n")
    everything = practised + held

    def rows(runs: dict, base_stage: str) -> None:
        print("| stage | success (all) | practised | held out | won / lost vs "
              f"{base_stage} (all) | practised | held out | SFT / GRPO steps | promoted | "
              "cycle s | peak MiB | commit |")
        print("|---" * 12 + "|")
        base = outcomes(runs[base_stage])
        for stage, run in runs.items():
            outcome, cycle = outcomes(run), run.get("cycle", {})
            cells = [stage, rate(outcome, everything), rate(outcome, practised),
                     rate(outcome, held)]
            cells += ["-"] * 3 if stage == base_stage else \
                [paired(outcome, t, base) for t in (everything, practised, held)]
            cells += [f"{cycle['sft_steps']} / {cycle['grpo_steps']}", cycle["promoted"],
                      cycle["seconds"].get("total")] if cycle else ["-"] * 3
            cells += [run["peak_mib"], run["commit"]]
            print("| " + " | ".join(str(c) for c in cells) + " |")
    rows(runs, "base")
    nights = {s: r for s, r in runs.items() if r.get("cycle")}
    if nights:
        print("\n| night | practice episodes | an hour | informative groups | first prompts "
              "cached | typing tasks solved in practice | GRPO tokens |\n" + "|---" * 7 + "|")
        for stage, run in nights.items():
            cycle, practice = run["cycle"], run.get("practice", {})
            hours = cycle["seconds"].get("practice", 0) / 3600
            typing = sorted(t for t in practice.get("solved", {}) if t in TYPING)
            grpo = next((r.get("grpo") for r in cycle["training"] if r["phase"] == "grpo"), None)
            print(f"| {stage} | {cycle['practice_episodes']} | "
                  f"{cycle['practice_episodes'] / hours:.0f} | {cycle.get('groups', '-')} | "
                  f"{practice.get('first_prompt_cached', '-')} | {len(typing)}: "
                  f"{', '.join(typing) or '-'} | {grpo or '-'} |" if hours else f"| {stage} |")
    if "confirm-base" in confirmed:
        print(f"\nconfirmation on the next {EVAL_SEEDS} test seeds (never measured nor gated "
              "on):\n")
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
    curve = [(0, success("base"))] + [(arm_of(s)[1], success(s)) for s in NIGHTS if s in runs]
    ax.plot(*zip(*curve), marker="o", label="nights from the starting adapter")
    if "base-again" in runs:
        ax.scatter([0], [success("base-again")], marker="+", label="base again (noise)")
    for stage in ABLATIONS:
        if stage in runs:
            ax.scatter([1], [success(stage)], marker="x", label=stage)
    if "blind" in runs:
        ax.axhline(success("blind"), linestyle="--", color="grey", label="text-blind")
    ax.set_xlabel("night")
    ax.set_ylabel("success, core test seeds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    staged_main(__file__, __doc__, "learning", (*STAGES, *CONFIRM), 120 * 60, child, report,
                default=("base", "base-again", "blind", *NIGHTS))
