"""Benchmark: what a training step costs and how exact it is, on the policy's own draws.

The shipped model practises MiniWoB++ train seeds as a cycle does (temperature 1, no top-k /
top-p / min-p cut, the sampler's record kept); its steps are the samples. Three tables:

1. seconds per step: SFT over the whole prompt with gradient, SFT after the batch's shared
   prompt prefix (run once without gradient, trainer/train.py), and GRPO after the prefix
   (advantages ±1), on the same samples;
2. the sampler against the trainer: per chosen token (the grammar allowed more than one), the
   log-prob llama.cpp recorded (Q4_1) against the trainer's (dequantized fp32) before any
   update, and how many of GRPO's first-step ratios already fall outside the clip;
3. the shared prefix against each sample run whole: cosine and norm ratio of a batch's GRPO
   gradient both ways (1 and 1: the prefix runs once, and the batch's loss goes back through
   it once).

Usage: python bench/training_step.py [--steps 6]. Prints the tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from harness import header

TASKS = ["click-button", "click-link", "focus-text", "click-tab", "enter-text", "click-widget"]


async def practice(home: Path, episodes: int):
    """The policy's own steps on train seeds, sampled as practice samples them."""
    from daemon.agent.llama_policy import LlamaPolicy
    from daemon.core.settings import load_settings
    from daemon.core.store import Store
    from daemon.tasks import splits
    from daemon.tasks.evaluation import EvalPlan, evaluate
    from trainer.config import TrainConfig
    from trainer.data import load_samples
    settings = load_settings({"db": str(home / "store.db"), "seed": 7}).settings
    policy = LlamaPolicy(dataclasses.replace(settings, temperature=1.0, top_k=0, top_p=1.0,
                                             min_p=0.0))
    seeds = splits.seeds("train", max(1, episodes // len(TASKS)))
    await evaluate(EvalPlan(TASKS, seeds, 4, source="practice", by_seed=True), policy=policy,
                   db=settings.db_path)
    async with await Store.open(settings.db_path) as store:
        samples = await load_samples(store, TrainConfig(reward="ground_truth"), ("practice",))
    return samples, policy.info.path


def gradient(model, batch, config, phase: str):
    import torch

    import trainer.train as training
    model.zero_grad()
    training.backward(model, batch, config, phase)
    flat = torch.cat([p.grad.flatten() for p in model.parameters()
                      if p.requires_grad and p.grad is not None])
    model.zero_grad()
    return flat


def main(steps: int) -> None:
    import torch

    import trainer.train as training
    from trainer.config import TrainConfig
    from trainer.model import add_lora, load_base
    header("nightloop training-step bench")
    home = Path(tempfile.mkdtemp(prefix="nightloop-step-"))
    os.environ["XDG_DATA_HOME"] = str(home)
    config = TrainConfig(sft_epochs=1)
    wanted = steps * config.batch_size
    rows, gguf = asyncio.run(practice(home, 2 * wanted))
    model, tokenizer, _ = load_base(gguf)
    model = add_lora(model, config)
    rows = [dataclasses.replace(s, advantage=1.0 if i % 2 else -1.0)
            for i, s in enumerate(r for r in rows if r.sampled)][:wanted]
    items = [training.encode(tokenizer, s, config.max_tokens) for s in rows]
    shared = training.shared_length(items[:config.batch_size], config.prefix_min_tokens)
    lengths = sorted(int(i.ids.shape[1]) for i in items)
    print(f"{len(rows)} samples of the policy's own practice steps, prompt+action "
          f"{lengths[0]}-{lengths[-1]} tokens, shared prefix of the first batch {shared} "
          f"tokens, batch {config.batch_size}, {torch.get_num_threads()} threads\n")

    with torch.no_grad(), model.disable_adapter():
        gaps, outside = [], 0
        for item in items:
            mine = training._logprobs(model, item, as_sampled=True)[0]      # noqa: SLF001
            chosen = item.choice
            gap = (mine[chosen] - item.old[chosen])
            gaps += gap.abs().tolist()
            outside += int(((gap.exp() < 1 - config.clip_low) |
                            (gap.exp() > 1 + config.clip_high)).sum())
    gaps.sort()
    choices = sum(int(i.choice.sum()) for i in items)
    tokens = sum(len(i.sample.sampled.tokens) for i in items)
    print("| chosen tokens (of all drawn) | mean abs log-prob gap, sampler vs trainer | "
          "median | 95th pct | max | first-step ratios outside the clip |")
    print("|---|---|---|---|---|---|")
    print(f"| {choices} ({tokens}) | {sum(gaps) / len(gaps):.4f} | {gaps[len(gaps) // 2]:.4f} "
          f"| {gaps[int(0.95 * (len(gaps) - 1))]:.4f} | {gaps[-1]:.4f} | "
          f"{outside} ({outside / len(gaps):.1%}) |\n", flush=True)

    print("| phase: forward/backward over | s/step | vs SFT on the whole prompt |")
    print("|---|---|---|")
    whole = dataclasses.replace(config, prefix_min_tokens=config.max_tokens + 1)
    timings = {}
    # A prefix can never be longer than max_tokens: that setting runs every prompt whole.
    for name, arm, phase in (("SFT: whole prompt", whole, "sft"),
                             ("SFT: after the shared prefix", config, "sft"),
                             ("GRPO: after the shared prefix", config, "grpo")):
        training.train(model, tokenizer, rows[:config.batch_size], arm, phase)  # warm-up
        t0 = time.perf_counter()
        report = training.train(model, tokenizer, rows, arm, phase)
        timings[name] = (time.perf_counter() - t0) / report.steps
        base = timings["SFT: whole prompt"]
        print(f"| {name} | {timings[name]:.2f} | {base / timings[name]:.2f}x |", flush=True)

    print("\n| batch | GRPO gradient: shared prefix vs every sample whole | cosine | norm ratio |")
    print("|---|---|---|---|")
    model.train()
    for n in range(min(3, len(items) // config.batch_size)):
        batch = items[n * config.batch_size:(n + 1) * config.batch_size]
        cut = gradient(model, batch, config, "grpo")
        exact = gradient(model, batch, whole, "grpo")
        cosine = torch.nn.functional.cosine_similarity(cut.double(), exact.double(), dim=0).item()
        print(f"| {n + 1} | shared prefix "
              f"{training.shared_length(batch, config.prefix_min_tokens)} tokens | "
              f"{cosine:.4f} | {cut.norm().item() / exact.norm().item():.3f} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    main(parser.parse_args().steps)
