"""Training data for a trainer off this machine: what a cycle would learn from, as files.

``trl`` (the default) writes, in the folder given:
- ``sft.jsonl``: ``{"prompt", "completion"}`` — TRL's prompt-completion format, which
  SFTTrainer trains on the completion alone (the action), as the nightly cycle does — with
  ``episode_id``, ``step``, ``reward``, ``teacher``, ``variant``, ``relabelled`` beside it;
- ``grpo.jsonl``: every attempt of every informative group, ``{"prompt", "completion",
  "reward", "advantage", "group"}`` — the groups of trajectory trainers (OpenPipe ART-style);
  TRL's GRPOTrainer reads the ``prompt`` column and hands the others to reward functions;
- ``meta.json``: the window, the base model the prompts were rendered for, the counts.
``jsonl`` writes every field of nightloop's own samples instead (`data.Sample`).

Prompts are the exact text the policy read, its model's chat template included: train the same
model family (the base model named in meta.json), or re-render for another. Files are written
whole or not at all, 0600 like the store they come from.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from daemon.core.errors import UsageError
from daemon.core.files import write_private

from .data import Sample

FORMATS = ("trl", "jsonl")


def write(out: Path, sft: list[Sample], grpo: list[Sample], *, fmt: str, meta: dict) -> dict:
    """Write the dataset into `out` (created if missing); what was written, as meta.json says."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: {' or '.join(FORMATS)}")
    out.mkdir(parents=True, exist_ok=True)
    rows = {"sft.jsonl": [_row(s, fmt, grpo=False) for s in sft],
            "grpo.jsonl": [_row(s, fmt, grpo=True) for s in grpo]}
    for name, lines in rows.items():
        write_private(out / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))
    about = {**meta, "format": fmt, "sft": len(sft), "grpo": len(grpo),
             "groups": len({s.group for s in grpo})}
    write_private(out / "meta.json", json.dumps(about, indent=2) + "\n")
    return about


def _row(sample: Sample, fmt: str, *, grpo: bool) -> dict:
    if fmt == "jsonl":
        row = dataclasses.asdict(sample)
        row["sampled"] = sample.sampled.to_json() if sample.sampled else None
        return row
    if grpo:
        return {"prompt": sample.prompt, "completion": sample.completion,
                "reward": sample.reward, "advantage": sample.advantage, "group": str(sample.group)}
    return {"prompt": sample.prompt, "completion": sample.completion,
            "episode_id": sample.episode_id, "step": sample.index, "reward": sample.reward,
            "teacher": sample.teacher, "variant": sample.variant,
            "relabelled": sample.relabelled}
