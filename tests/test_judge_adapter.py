"""The judge's LoRA adapter against the real thing: the shipped GGUF in transformers + peft for
training, llama.cpp with the exported adapter for judging, episodes of the labelled set."""

from __future__ import annotations

import statistics

import numpy
import pytest
import torch
from test_judge_parts import LABELLED

from daemon.core.models import shipped_model
from judge import flip
from judge.evaluate import load_jsonl
from judge.judge import RENDER_CHARS
from judge.model import JudgeModel
from judge.render import render
from trainer.judge_adapter import flip_items, margin, train_adapter
from trainer.model import load_base

pytestmark = pytest.mark.model


TEMPLATES = ("click-button", "click-tab")   # both hold successes and failures


@pytest.fixture(scope="module")
def episodes():
    """Two successes and two failures of each template."""
    chosen, seen = [], {}
    for item in load_jsonl(LABELLED):
        name = item.template.rsplit("/", 1)[-1][:-5]
        key = (name, item.success)
        if name in TEMPLATES and seen.get(key, 0) < 2:
            seen[key] = seen.get(key, 0) + 1
            chosen.append(item)
    assert len(chosen) == 8
    return chosen


def llama_margins(judge: JudgeModel, episodes, items) -> list[float]:
    """FLIP's margin as the product's judge computes it, on each item's own distractors."""
    out = []
    for episode, item in zip(episodes, items):
        rendered = render(episode.episode, episode.steps, RENDER_CHARS)
        others = [judge.llm.detokenize(t).decode() for t in item.instructions[1:]]
        raw = flip.likelihood(judge, rendered, episode.episode.task)
        out.append(flip.margin(judge, rendered, raw, others))
    return out


def separation(margins: list[float], episodes) -> float:
    return statistics.mean(m for m, e in zip(margins, episodes) if e.success) - \
        statistics.mean(m for m, e in zip(margins, episodes) if not e.success)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_judge_adapter_trains_exports_and_moves_llama_cpps_margins(episodes, tmp_path):
    judge = JudgeModel()
    items = flip_items(episodes, judge, n_distractors=2)
    assert all(len(i.instructions) == 3 for i in items)
    before = llama_margins(judge, episodes, items)
    # the trainer's margin is the judge's: the same tokens through the dequantized weights
    # (llama.cpp's quantized arithmetic moves a mean log-prob by a few hundredths)
    base, _, _ = load_base(shipped_model())
    with torch.no_grad():
        mine = [margin(base, item).item() for item in items]
    assert max(abs(a - b) for a, b in zip(mine, before)) < 0.1, (mine, before)
    assert numpy.corrcoef(mine, before)[0, 1] > 0.95

    trained = train_adapter(shipped_model(), items, tmp_path / "judge-lora", epochs=4,
                            lr=1e-3, batch=4)
    assert trained.steps == 8 and trained.adapter.exists()
    assert statistics.mean(trained.losses[-3:]) < statistics.mean(trained.losses[:3])
    adapted = JudgeModel(adapter=trained.adapter)
    assert adapted.version.startswith(judge.version + "+adapter.gguf:")
    after = llama_margins(adapted, episodes, items)
    # on what it was trained on, successes now stand further above failures
    assert separation(after, episodes) > separation(before, episodes) + 0.1, (before, after)
