"""Benchmark: a night of learning from a few demonstrations, on the bundled sites.

Stages, each saved to ``OUT/<stage>.json`` as it finishes (a rerun skips finished stages; a
measurement cut short goes on from its last episode):

- ``demos``: Playwright, acting as the user, records DEMOS demonstrations per template on train
  seeds through the real popup and recorder, into one store (OUT/home);
- ``base``: the shipped SmolLM2 alone, no adapter, greedy, on every template x TEST_SEEDS test
  seeds (new values, fresh loads);
- ``replay``: the newest demonstration each test task fits, replayed with its values
  (agent/values.py, as `nightloop run --replay auto` does), no model, no fallback;
- ``cycle``: one learning cycle (`trainer.cycle.run_cycle`) in that store, practising the
  sites on PRACTICE_SEEDS train seeds: first the demonstrations replayed with the values of
  each seed's task they fit (daemon/tasks/sites/replays.py; each success verified by the
  site's ground truth), then the model once per task as the practice share allows; SFT on
  the demonstrations, their variants (trainer/augment.py) and those verified replays, no GRPO,
  most of the budget for training, promoted whatever its short MiniWoB++ gate says (it
  measures MiniWoB, not these sites);
- ``after``: the model with that adapter alone on the same test episodes as ``base``.

Usage: python bench/sites.py [--out DIR] [--stages ...] [--budget 7200] [--report]. Prints a
table per template (success of base, replay with values, the model after one night; won / lost
vs base with a sign test) and asserts nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import time
from pathlib import Path

from harness import NIGHTLOOP, free_port, measure, one_cycle, save_stage, staged_main, use_home

DEMOS = 2                       # demonstrations per template, on the first train seeds
PRACTICE_SEEDS = 10             # train seeds whose site tasks the night practises
TEST_SEEDS = 5
MAX_STEPS = 15
STAGES = ("demos", "base", "replay", "cycle", "after")


def record_demos(out: Path) -> dict:
    """Every template's DEMOS demonstrations, recorded by hand through the popup."""
    from playwright.sync_api import sync_playwright

    from daemon.bridge.launch import launch_with_playwright
    from daemon.bridge.pairing import extension_id, load_or_create_token
    from daemon.core.settings import config_dir
    from daemon.tasks import splits
    from daemon.tasks.sites import serve_sites
    from daemon.tasks.sites.templates import TEMPLATES
    from daemon.tasks.sites.user import act_out, record_by_hand
    settings = use_home(out / "home")
    port = free_port()
    daemon = subprocess.Popen([NIGHTLOOP, "daemon", "--port", str(port), "--db",
                               str(settings.db_path), "--policy", "scripted", "--judge", "off"],
                              stdout=subprocess.PIPE, text=True)
    try:
        if "listening" not in daemon.stdout.readline():
            raise SystemExit("the daemon did not start")
        with serve_sites() as url, sync_playwright() as pw:
            context = launch_with_playwright(pw.chromium, out / "home" / "profile", port=port,
                                             token=load_or_create_token(config_dir()))
            for _ in range(100):                        # until the extension connects
                status = subprocess.run([NIGHTLOOP, "status", "--json", "--port", str(port)],
                                        capture_output=True, text=True, check=False).stdout
                if '"browser_connected": true' in status:
                    break
                time.sleep(0.2)
            recorded = {}
            for name, template in TEMPLATES.items():
                for seed in splits.seeds("train", DEMOS):
                    task = template.task(seed)
                    record_by_hand(context, extension_id(), task.url(url), task.task,
                                   lambda page, t=task: act_out(page, t))
                    recorded.setdefault(name, []).append(seed)
                    print(f"  recorded {name} seed {seed}", flush=True)
            context.close()
    finally:
        daemon.terminate()
        daemon.wait()
    return {"recorded": recorded}


async def demonstrations(db: Path) -> list:
    """Every good demonstration with its steps, newest first (as `run --replay auto` looks)."""
    from daemon.agent.replay import recorded_demonstrations
    from daemon.core.store import Store
    async with await Store.open(db, recover=False) as store:
        return await recorded_demonstrations(store)


async def measure_sites(policy, db: Path, partial: Path) -> list[dict]:
    """Every template x TEST_SEEDS test seeds with `policy`, resumable (harness.measure)."""
    from daemon.tasks import splits
    from daemon.tasks.sites import Sites
    from daemon.tasks.sites.templates import TEMPLATES
    return await measure(list(TEMPLATES), splits.seeds("test", TEST_SEEDS), policy, db, partial,
                         max_steps=MAX_STEPS, benchmark=Sites())


async def run_stage(stage: str, out: Path, budget: float) -> dict:
    from daemon.agent.llama_policy import LlamaPolicy
    settings = use_home(out / "home")
    t0 = time.monotonic()
    if stage == "cycle":
        from daemon.tasks.sites.templates import TEMPLATES
        from trainer.config import CyclePlan, TrainConfig
        # The night is about the demonstrations: their replays with the practice seeds'
        # values, no GRPO, most of the budget for SFT, a short MiniWoB++ practice and gate
        # (they measure MiniWoB, not these sites).
        config = TrainConfig(gate_promote="always", grpo_epochs=0, practice_k=1,
                             practice_share=0.3, judge_share=0.05, train_share=0.55,
                             gate_share=0.1)
        plan = CyclePlan(tasks=("click-button",), sites=tuple(TEMPLATES),
                         practice_seeds=PRACTICE_SEEDS, teacher_seeds=0, gate_seeds=1)
        return {**await one_cycle(settings, config, plan, budget, "cycle"),
                "seconds": round(time.monotonic() - t0)}
    if stage == "replay":
        from daemon.agent.replay import DemonstrationReplay
        policy = DemonstrationReplay(await demonstrations(settings.db_path))
    else:
        adapter = json.loads((out / "cycle.json").read_text())["adapter"] \
            if stage == "after" else ""
        policy = LlamaPolicy(dataclasses.replace(settings, temperature=0.0, adapter=adapter))
    rows = await measure_sites(policy, out / f"{stage}.db", out / f"{stage}.partial.jsonl")
    return {"results": rows, "seconds": round(time.monotonic() - t0)}


def child(stage: str, out: Path, budget: float) -> None:
    t0 = time.monotonic()                   # the recording drives Playwright's sync API: no loop
    result = {**record_demos(out), "seconds": round(time.monotonic() - t0)} \
        if stage == "demos" else asyncio.run(run_stage(stage, out, budget))
    save_stage(out, stage, {**result, "budget": budget})


def report(out: Path, budget: float) -> None:
    from daemon.tasks.report import sign_test, won_lost
    from daemon.tasks.sites.templates import TEMPLATES
    runs = {s: {(r["task"], r["seed"]): r["success"]
                for r in json.loads((out / f"{s}.json").read_text())["results"]}
            for s in ("base", "replay", "after") if (out / f"{s}.json").exists()}
    if not runs:
        print("nothing measured yet")
        return
    print(f"{len(TEMPLATES)} templates x {TEST_SEEDS} test seeds (new values, fresh loads), "
          f"greedy, {MAX_STEPS} steps; {DEMOS} demonstrations per template on train seeds; "
          f"{budget / 60:g} min for the cycle\n")
    print("| template | " + " | ".join(runs) + " | after: won / lost vs base |")
    print("|---|" + "---|" * len(runs) + "---|")
    for name in [*TEMPLATES, "all"]:
        cells = [name]
        for outcome in runs.values():
            keys = [k for k in outcome if name in ("all", k[0])]
            cells.append(f"{sum(outcome[k] for k in keys) / len(keys):.2f}" if keys else "-")
        if "after" in runs and "base" in runs:
            won, lost = won_lost({k: v for k, v in runs["base"].items() if name in ("all", k[0])},
                                 runs["after"])
            cells.append(f"{won} / {lost} (p {sign_test(won, lost):.2f})")
        else:
            cells.append("-")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    staged_main(__file__, __doc__, "sites", STAGES, 120 * 60, child, report)
