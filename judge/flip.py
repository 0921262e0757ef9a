"""FLIP, backward inference (arXiv 2602.13551): how well does what the agent did
explain the instruction it was given? Two forms, both measured by `nightloop judge eval`:

- `generate`: the judge model writes `{reasoning, inferred_instruction}` (JSON grammar); the
  score is the token F1 between inferred and real instruction, averaged over k samples (F1 on
  the raw text if the JSON does not parse).
- `likelihood`: the mean log-probability per token of the real instruction after the rendering.
  No generation. Its scale differs between task templates (short, predictable instructions score
  high whatever happened), so `margin` calibrates it: the real instruction's mean
  log-probability minus the mean of the same for other instructions (the distractors), all under
  the same rendering. An episode that did what was asked explains its own instruction better
  than its neighbours'. Distractors come from the same template first (the hard contrast: same
  task, other values), then from other tasks where a template has too few distinct
  instructions (MiniWoB's click-test always asks the same thing), so every score is a margin.
"""

from __future__ import annotations

import json
import math

from .model import JudgeModel  # or server_model.ServerJudgeModel: the same reads
from .prompts import (
    FLIP_ANSWER,
    FLIP_JSON_QUESTION,
    FLIP_QUESTION,
    FLIP_SCHEMA,
    messages,
)
from .text import normalize, token_f1

# Without any distractor (an empty store) the raw log-probability is squashed around this
# centre: the median of SmolLM2's raw scores on the labelled MiniWoB set (nats per token); with
# distractors, the contrastive margin is squashed around 0.
LIKELIHOOD_CENTRE = -4.6
LIKELIHOOD_SCALE = 0.5


def likelihood(model: JudgeModel, rendered: str, instruction: str) -> float:
    """Mean log-probability per token of `instruction` after the rendered episode."""
    context = model.format(messages(rendered, FLIP_QUESTION)) + FLIP_ANSWER
    return float(model.continuation_logprobs(context, instruction).mean())


def distractors(instruction: str, peers: list[str], limit: int) -> list[str]:
    """Up to `limit` peer instructions that differ from `instruction` (and each other) once
    normalised, in the order given (the same template's first, see the module docstring)."""
    seen = {tuple(normalize(instruction))}
    out = []
    for peer in peers:
        key = tuple(normalize(peer))
        if key not in seen and len(out) < limit:
            seen.add(key)
            out.append(peer)
    return out


def margin(model: JudgeModel, rendered: str, raw: float, others: list[str]) -> float:
    """How far `raw` (the real instruction's `likelihood`) lies above the mean likelihood of
    `others` under the same rendering; NaN without others."""
    if not others:
        return math.nan
    return raw - sum(likelihood(model, rendered, o) for o in others) / len(others)


def to_unit(raw: float, margin: float) -> float:
    """The likelihood form as a score in [0, 1]: the margin when there is one, else the raw
    log-probability against the fixed centre."""
    x = margin if not math.isnan(margin) else raw - LIKELIHOOD_CENTRE
    return 1 / (1 + math.exp(-x / LIKELIHOOD_SCALE))


def generate(model: JudgeModel, rendered: str, instruction: str, *, samples: int = 1,
             temperature: float = 0.0, seed: int = 0) -> tuple[float, list[str]]:
    """(mean token F1 over `samples` inferred instructions, the inferred instructions)."""
    asked = messages(rendered, FLIP_JSON_QUESTION)
    inferred = []
    for k in range(samples):
        text = model.generate_json(asked, FLIP_SCHEMA, temperature=temperature, seed=seed + k)
        try:
            inferred.append(str(json.loads(text)["inferred_instruction"]))
        except (ValueError, KeyError, TypeError):
            inferred.append(text)
    return sum(token_f1(i, instruction) for i in inferred) / samples, inferred
