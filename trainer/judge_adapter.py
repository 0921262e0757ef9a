"""A LoRA adapter for the judge: FLIP's likelihood of the real instruction trained to stand
above its distractors' where an episode succeeded, and not where it failed.

Each labelled episode (judge.evaluate.Labelled) gives the prompt FLIP's likelihood form reads
(`FlipItem`: the context's tokens, the real instruction's, and `distractors` other
instructions, those of its own template first, as flip.distractors picks them) and its label.
The margin is the real instruction's mean log-probability per token minus the distractors'
mean of the same; the loss is the logistic loss of ``scale · margin + shift`` against the
label, the two scalars learnt beside the LoRA. The context runs once per episode and every
instruction goes on from its keys and values (train.py's shared prefix). The adapter is saved
as a peft folder and exported to GGUF (export.py), which the judge loads like the policy loads
its own (`JudgeModel(adapter=...)`).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from daemon.core.errors import UsageError
from judge.evaluate import Labelled
from judge.flip import distractors
from judge.judge import RENDER_CHARS
from judge.model import JudgeModel
from judge.prompts import FLIP_ANSWER, FLIP_QUESTION, messages
from judge.render import render

from .config import TrainConfig
from .export import export_adapter
from .model import add_lora, load_base
from .train import going_on


@dataclass
class FlipItem:
    context: list[int]              # the FLIP prompt up to the instruction
    instructions: list[list[int]]   # the real one first, then the distractors
    success: bool


def flip_items(labelled: list[Labelled], judge: JudgeModel, n_distractors: int = 2
               ) -> list[FlipItem]:
    """The episodes as the likelihood form reads them, tokenised by the judge model itself;
    each episode's distractors from the others' instructions, its own template's first."""
    out = []
    for item in labelled:
        peers = [i.episode.task for i in labelled if i.template == item.template] + \
            [i.episode.task for i in labelled if i.template != item.template]
        context = judge.format(messages(render(item.episode, item.steps, RENDER_CHARS),
                                        FLIP_QUESTION)) + FLIP_ANSWER
        real = item.episode.task
        out.append(FlipItem(judge.tokens(context), [
            judge.tokens(text, special=False)
            for text in [real, *distractors(real, peers, n_distractors)]], item.success))
    return out


def margin(model, item: FlipItem) -> torch.Tensor:
    """Mean log p(real instruction) minus the distractors' mean, under `model`."""
    context = torch.tensor([item.context])
    past = model(context[:, :-1], use_cache=True).past_key_values
    means = []
    for tokens in item.instructions:
        ids = torch.tensor([[item.context[-1], *tokens]])
        logits = model(ids, past_key_values=going_on(past)).logits[0, :-1].float()
        logp = F.log_softmax(logits, dim=-1).gather(-1, ids[0, 1:, None])[:, 0]
        means.append(logp.mean())
    return means[0] - torch.stack(means[1:]).mean()


@dataclass
class Trained:
    adapter: Path               # the GGUF for llama.cpp
    steps: int
    losses: list[float]
    seconds: float


def train_adapter(gguf: Path, items: list[FlipItem], out: Path, *, epochs: int = 2,
                  lr: float = 1e-4, batch: int = 4, deadline: float = math.inf,
                  config: TrainConfig = TrainConfig(), seed: int = 0) -> Trained:
    """A LoRA for `gguf` trained on `items` (shuffled, `epochs` passes, `batch` per step,
    stopping at `deadline`, time.monotonic); saved to `out` (peft) and `out`/adapter.gguf."""
    items = [i for i in items if len(i.instructions) > 1]       # a margin needs a distractor
    if not items or len({i.success for i in items}) < 2:
        raise UsageError("training the judge needs successes and failures, with distractors")
    t0 = time.monotonic()
    torch.manual_seed(seed)
    base, _, arch = load_base(gguf)
    model = add_lora(base, config)
    scale, shift = (torch.nn.Parameter(torch.tensor(v)) for v in (1.0, 0.0))
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=0.0)
    heads = torch.optim.AdamW([scale, shift], lr=1e-2)      # two scalars: faster
    order = [i for _ in range(epochs) for i in random.Random(seed).sample(items, len(items))]
    losses: list[float] = []
    model.train()
    for start in range(0, len(order), batch):
        if time.monotonic() >= deadline:
            break
        chunk = order[start:start + batch]
        loss = sum(F.binary_cross_entropy_with_logits(
            scale * margin(model, i) + shift, torch.tensor(float(i.success)))
            for i in chunk) / len(chunk)
        loss.backward()
        optimiser.step()
        heads.step()
        optimiser.zero_grad()
        heads.zero_grad()
        losses.append(loss.item())
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    path = export_adapter(model, out / "adapter.gguf", arch)
    return Trained(path, len(losses), losses, round(time.monotonic() - t0, 1))
