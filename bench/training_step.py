"""Benchmark: seconds per training step on real policy prompts: SFT with the shared prompt
prefix run once per batch without gradient (trainer/train.py) against the whole prompt with
gradient, and a GRPO step on the same samples (advantages ±1) against the SFT step.

The oracle plays MiniWoB++ train seeds; its steps become samples rendered with the policy's own
prompt builder, exactly as a learning cycle's teacher set. Usage: python bench/training_step.py
[--steps 6]. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from harness import header

TASKS = ["click-button", "click-link", "focus-text"]


async def samples(home: Path):
    from daemon.agent.llama_policy import LlamaPolicy
    from daemon.core.settings import load_settings
    from daemon.core.store import Store
    from daemon.tasks import miniwob
    from daemon.tasks.evaluation import EvalPlan, evaluate
    from daemon.tasks.oracle import OraclePolicy
    from trainer.config import TrainConfig
    from trainer.data import load_samples
    settings = load_settings({"db": str(home / "store.db")}).settings
    await evaluate(EvalPlan(TASKS, miniwob.seeds("train", 8), 3, source="practice"),
                   policy=OraclePolicy(), db=settings.db_path)
    policy = LlamaPolicy(settings)
    async with await Store.open(settings.db_path) as store:
        out = await load_samples(store, TrainConfig(reward="ground_truth"), ("practice",),
                                 policy.render)
    return out, policy.info.path


def main(steps: int) -> None:
    import torch

    import trainer.train as training
    from trainer.config import TrainConfig
    from trainer.model import add_lora, load_base
    header("nightloop training-step bench")
    home = Path(tempfile.mkdtemp(prefix="nightloop-step-"))
    os.environ["XDG_DATA_HOME"] = str(home)
    rows, gguf = asyncio.run(samples(home))
    model, tokenizer, _ = load_base(gguf)
    config = TrainConfig(sft_epochs=1)
    model = add_lora(model, config)
    rows = rows[:steps * config.batch_size]
    items = [training.encode(tokenizer, s, config.max_tokens) for s in rows]
    shared = training.shared_length(items, config.prefix_min_tokens)
    lengths = sorted(int(i.ids.shape[1]) for i in items)
    print(f"{len(rows)} samples, prompt+action {lengths[0]}-{lengths[-1]} tokens, "
          f"shared prefix {shared} tokens, batch {config.batch_size}, "
          f"{torch.get_num_threads()} threads\n")
    print("| phase: forward/backward over | s/step | vs SFT on the whole prompt |")
    print("|---|---|---|")
    timings = {}
    grpo_rows = [replace(s, advantage=1.0 if i % 2 else -1.0) for i, s in enumerate(rows)]
    # A prefix can never be longer than max_tokens: that setting runs every prompt whole.
    for name, arm, phase, data in (
            ("SFT: whole prompt", replace(config, prefix_min_tokens=config.max_tokens + 1),
             "sft", rows),
            ("SFT: after the shared prefix", config, "sft", rows),
            ("GRPO: after the shared prefix", config, "grpo", grpo_rows)):
        training.train(model, tokenizer, data[:config.batch_size], arm, phase)  # warm-up
        t0 = time.perf_counter()
        report = training.train(model, tokenizer, data, arm, phase)
        timings[name] = (time.perf_counter() - t0) / report.steps
        base = timings["SFT: whole prompt"]
        print(f"| {name} | {timings[name]:.2f} | {base / timings[name]:.2f}x |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    main(parser.parse_args().steps)
