"""Benchmark and recipe: the starting adapter nightloop ships, learnt from the skills curriculum.

Stages, each saved to ``OUT/<stage>.json`` as it finishes (a rerun skips finished stages; the
training stage saves its state every few steps and goes on from there when cut short):

- ``record``: the scripted solutions (no model) of every skills template but the held-out ones
  (`daemon.tasks.skills.HELD_OUT`) on SKILLS_SEEDS train seeds each, and the MiniWoB++ oracle on
  MINIWOB_SEEDS train seeds of the tasks it knows (each after the seeds the round before used),
  through the real extension, into ``OUT/demos.db``: verified examples, ground truth for every
  one; the passwords the store masks are rebuilt from template and seed for training
  (`trainer.data.restored`);
- ``train``: SFT (the product's trainer and defaults but `TRAIN`'s changes) from the adapter
  shipped before it (`trainer/starting_adapter/`) on every step of those examples, rendered as
  today's prompt renders them; within ``--budget`` seconds a session, going on where the last
  stopped; writes ``OUT/adapter/`` (peft) and ``OUT/adapter.gguf``;
- ``ship`` (not run by default): this adapter's weights, in float16, become the shipped ones
  (`trainer/starting_adapter/`); RECIPE.md beside them is written by hand from the report;
- measurements, greedy, the same episodes for every arm: ``held-{bare,old,new}`` the held-out
  skills templates on HELD_SEEDS test seeds; ``skills-{bare,old,new}`` every skills template on
  SKILL_TEST_SEEDS test seeds; ``everyday-{bare,old,new,teacher}`` the hand-written everyday
  pages (everyday_tasks.py: never generated, never trained on; ``teacher`` runs their scripts,
  the check that each is solvable). ``old`` is the adapter shipped before (its peft weights and
  GGUF are copied to OUT/old-peft and OUT/old.gguf on first use, so neither a rerun of
  ``train`` nor a measurement after ``ship`` takes the new one for it), ``new`` this one;
  ``sites-{bare,old,new}`` the bundled sites' templates on SITES_TEST_SEEDS test seeds, with no
  demonstration of any; ``core-{bare,old,new}`` MiniWoB++ `core` on CORE_SEEDS,
  ``coretest-…`` on its first CORE_TEST_SEEDS test seeds, ``corefresh-…`` on as many after
  the first CORE_FRESH_SKIP (seeds no earlier look used: the figure of record);
  ``<part>-{nochange,anyoption,nounused}`` the new adapter with one change to the action
  space or the prompt undone (`undo`), each change measured alone; ``<part>-again`` the new
  adapter once more on the same episodes (its won / lost against ``new`` is the noise floor).

Usage: python bench/starting_adapter.py [--out DIR] [--stages record,train,...]
[--budget 5400] [--report]. Prints per-arm success, won / lost against the bare model and the
old adapter with a two-sided sign test, steps per solved episode, and of the solved episodes
(the page is as asked) how many the agent ended with `done`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

from harness import measure, save_stage, staged_main, use_home

SKILLS_SEEDS = 30               # train seeds per trained skills template ...
SKILLS_SKIP = 60                # ... after the first 60 (the round before this one's)
MINIWOB_SEEDS = 15              # train seeds per MiniWoB++ task the oracle knows ...
MINIWOB_SKIP = 30               # ... after the first 30 (the round before)
HELD_SEEDS = 10                 # test seeds per held-out template
SKILL_TEST_SEEDS = 5            # test seeds per skills template
SITES_TEST_SEEDS = 5            # test seeds per bundled-site template (no demonstration)
CORE_SEEDS = [30]               # MiniWoB++ core: a `confirm` seed no earlier look used
CORE_TEST_SEEDS = 5             # ... and (part ``coretest``) its first test seeds
CORE_FRESH_SKIP = 10            # ... and (part ``corefresh``) as many after the first 10
STEPS = 10                      # steps per measured episode (the bundled sites: SITE_STEPS)
SITE_STEPS = 15
TRAIN = {"sft_epochs": 1}       # the recipe's changes to the product's training defaults
ARMS = ("bare", "old", "new")
ABLATIONS = ("nochange", "anyoption", "nounused")   # the new adapter, one change undone
AGAIN = "again"                         # the new adapter measured a second time: the noise floor
PARTS = ("held", "skills", "everyday", "sites", "core", "coretest", "corefresh")
MEASURES = (*(f"{m}-{a}" for m in PARTS for a in (*ARMS, AGAIN)), "everyday-teacher",
            *(f"{m}-{a}" for m in PARTS for a in ABLATIONS))
STAGES = ("record", "train", *MEASURES, "ship")


def old_adapter(out: Path) -> tuple[Path, Path]:
    """(peft folder, GGUF) of the adapter shipped before this one: copied from the shipped
    one on first use (before `ship` replaces it)."""
    import shutil

    from trainer.starting import FOLDER, starting_gguf
    peft, gguf = out / "old-peft", out / "old.gguf"
    if not peft.is_dir():
        shutil.copytree(FOLDER, peft)
    if not gguf.is_file():
        shutil.copy(starting_gguf(), gguf)
    return peft, gguf


def trained_templates() -> list[str]:
    from daemon.tasks.skills import HELD_OUT, SKILLS
    return [t for t in SKILLS if t not in HELD_OUT]


async def record(out: Path) -> dict:
    """The scripted examples, into OUT/demos.db (resumable: each part is run to the end)."""
    from daemon.tasks import splits
    from daemon.tasks.oracle import SOLVERS, OraclePolicy
    from daemon.tasks.sites.teacher import SiteTeacher
    from daemon.tasks.skills import SKILLS, skills_benchmark
    use_home(out / "home")
    names, seeds = trained_templates(), splits.seeds("train", SKILLS_SEEDS, SKILLS_SKIP)
    teacher = SiteTeacher(SKILLS[t].task(s) for t in names for s in seeds)
    skills = await measure(names, seeds, teacher, out / "demos.db", out / "record-skills.jsonl",
                           max_steps=STEPS, parallel=2, benchmark=skills_benchmark(),
                           source="practice")
    tasks, seeds = list(SOLVERS), splits.seeds("train", MINIWOB_SEEDS, MINIWOB_SKIP)
    miniwob = await measure(tasks, seeds, OraclePolicy(), out / "demos.db",
                            out / "record-miniwob.jsonl", max_steps=STEPS, parallel=2,
                            source="practice")
    return {"skills": _summary(skills), "miniwob": _summary(miniwob)}


def _summary(rows: list[dict]) -> dict:
    return {"episodes": len(rows), "solved": sum(r["success"] for r in rows)}


def train(out: Path, budget: float) -> dict:
    """SFT from the old starting adapter on the recorded examples; SystemExit(3) when the
    budget ran out first (the state is saved: run again to go on)."""
    import torch

    from daemon.agent.llama_policy import LlamaPolicy
    from daemon.core.models import shipped_model
    from daemon.core.store import Store
    from trainer.config import TrainConfig
    from trainer.data import load_samples
    from trainer.export import export_adapter
    from trainer.model import load_base, load_lora
    from trainer.train import train as run_train

    settings = use_home(out / "home")
    config = dataclasses.replace(TrainConfig(), **TRAIN)
    render = LlamaPolicy(dataclasses.replace(settings, adapter="")).render

    async def samples():
        async with await Store.open(out / "demos.db", recover=False) as store:
            return await load_samples(store, config, render_prompt=render, successes_only=True)
    found = asyncio.run(samples())
    torch.set_num_threads(settings.threads or 2)
    model, tokenizer, arch = load_base(shipped_model())
    model = load_lora(model, old_adapter(out)[0])
    t0 = time.monotonic()

    def progress(report) -> None:
        if report.steps % 10 == 0:
            print(f"  step {report.steps}/{report.total_steps}, loss {report.losses[-1]:.4f}, "
                  f"{time.monotonic() - t0:.0f} s", flush=True)
    report = run_train(model, tokenizer, found, config, "sft", deadline=t0 + budget,
                       progress=progress, state_file=out / "sft.state")
    if report.stopped_early:
        raise SystemExit(3)
    model.save_pretrained(out / "adapter")
    export_adapter(model, out / "adapter.gguf", arch)
    return {"samples": len(found), "steps": report.steps, "fitted": report.fitted,
            "loss_first": report.losses[:10], "loss_last": report.losses[-10:],
            "seconds_this_session": report.seconds, "config": config.to_json()}


def undo(change: str) -> None:
    """Take one action-space or prompt change out, in this stage's process only: ``nochange``,
    a past step's line says whether the page changed but not what (`StepContext.changes`);
    ``anyoption``, `select_option` takes any text, not only the select's own options;
    ``nounused``, the prompt does not list the elements the task names that no step used yet
    (`StepContext.unused`)."""
    from daemon.agent.policy import StepContext
    from daemon.core.observation import Element
    if change == "nochange":
        StepContext.changes = lambda self, i: [] if self.changed(i) is False else None
    elif change == "anyoption":
        Element.choices = property(lambda self: None)
    else:
        StepContext.unused = property(lambda self: [])


async def measured(stage: str, out: Path) -> dict:
    from everyday_tasks import TEMPLATES, everyday_benchmark

    from daemon.agent.llama_policy import LlamaPolicy
    from daemon.tasks import splits
    from daemon.tasks.miniwob import CORE, MiniWoB
    from daemon.tasks.sites import TEMPLATES as SITES
    from daemon.tasks.sites import Sites
    from daemon.tasks.sites.teacher import SiteTeacher
    from daemon.tasks.skills import HELD_OUT, SKILLS, skills_benchmark
    part, arm = stage.split("-")
    settings = use_home(out / "home")
    steps = SITE_STEPS if part == "sites" else STEPS
    if part == "everyday":
        tasks, seeds, benchmark = list(TEMPLATES), [0], everyday_benchmark()
    elif part == "sites":
        tasks, seeds, benchmark = list(SITES), splits.seeds("test", SITES_TEST_SEEDS), Sites()
    elif part in ("core", "coretest", "corefresh"):
        seeds = {"core": CORE_SEEDS, "coretest": splits.seeds("test", CORE_TEST_SEEDS),
                 "corefresh": splits.seeds("test", CORE_TEST_SEEDS, CORE_FRESH_SKIP)}[part]
        tasks, benchmark = list(CORE), MiniWoB()
    else:
        tasks = list(HELD_OUT) if part == "held" else list(SKILLS)
        seeds = splits.seeds("test", HELD_SEEDS if part == "held" else SKILL_TEST_SEEDS)
        benchmark = skills_benchmark()
    if arm == "teacher":
        adapter = None
        policy = SiteTeacher(benchmark.templates[t].task(s) for t in tasks for s in seeds)
    else:
        if arm in ABLATIONS:
            undo(arm)
        adapter = {"bare": "", "old": str(old_adapter(out)[1])}.get(arm, str(out / "adapter.gguf"))
        policy = LlamaPolicy(dataclasses.replace(settings, temperature=0.0, adapter=adapter))
    t0 = time.monotonic()
    rows = await measure(tasks, seeds, policy, out / f"{stage}.db", out / f"{stage}.partial.jsonl",
                         max_steps=steps, benchmark=benchmark)
    return {"adapter": adapter, "results": rows, "seconds": round(time.monotonic() - t0)}


def ship(out: Path) -> dict:
    """This adapter's weights, as float16, in place of the shipped ones."""
    import shutil

    from safetensors.torch import load_file, save_file

    from trainer.starting import FOLDER, WEIGHTS
    old_adapter(out)
    weights = load_file(str(out / "adapter" / WEIGHTS))
    save_file({k: v.half().contiguous() for k, v in weights.items()}, str(FOLDER / WEIGHTS))
    shutil.copy(out / "adapter" / "adapter_config.json", FOLDER / "adapter_config.json")
    return {"tensors": len(weights)}


def child(stage: str, out: Path, budget: float) -> None:
    if stage == "record":
        result = asyncio.run(record(out))
    elif stage == "train":
        result = train(out, budget)
    elif stage == "ship":
        result = ship(out)
    else:
        result = asyncio.run(measured(stage, out))
    save_stage(out, stage, result)


def report(out: Path, budget: float) -> None:
    from daemon.tasks.report import sign_test, won_lost
    runs = {s: json.loads((out / f"{s}.json").read_text()) for s in STAGES
            if (out / f"{s}.json").exists()}
    if "record" in runs:
        print(f"recorded: {runs['record']}")
    if "train" in runs:
        t = runs["train"]
        print(f"trained: {t['samples']} samples, {t['steps']} steps, fitted {t['fitted']}")
    print("\n| measure | arm | success | won / lost vs bare | vs old | vs new | steps per solved "
          "| solved and said done |")
    print("|---|---|---|---|---|---|---|---|")
    for part in PARTS:
        arms = [a for a in (*ARMS, AGAIN, *ABLATIONS, "teacher") if f"{part}-{a}" in runs]
        outcome = {a: {(r["task"], r["seed"]): r["success"]
                       for r in runs[f"{part}-{a}"]["results"]} for a in arms}
        for arm in arms:
            got = outcome[arm]
            solved = [r for r in runs[f"{part}-{arm}"]["results"] if r["success"]]
            cells = [part, arm, f"{sum(got.values()) / len(got):.3f}"]
            for other in ARMS:
                if other in outcome and other != arm:
                    won, lost = won_lost(outcome[other], got)
                    cells.append(f"{won} / {lost} (p {sign_test(won, lost):.3f})")
                else:
                    cells.append("-")
            steps = sum(r["steps"] for r in solved) / len(solved) if solved else None
            said = sum(r.get("status") == "done" for r in solved)
            cells += [f"{steps:.1f}" if steps else "-", f"{said} / {len(solved)}"]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    staged_main(__file__, __doc__, "starting-adapter", STAGES, 90 * 60, child, report,
                default=STAGES[:-1])
