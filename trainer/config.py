"""Every training hyperparameter in one dataclass, with defaults from the references
(../shared/reference.md §2-3, §7, §9). `nightloop train --config FILE` overrides any of them
from a TOML file; unknown keys are an error, so a typo never silently trains with a default.
What a cycle practises and measures on (tasks, seeds) is `CyclePlan`, set from the command line.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainConfig:
    # -- data ---------------------------------------------------------------------------------
    reward: str = "outcome"         # outcome | judge | ground_truth (trainer/data.py)
    group_min: int = 2              # attempts of one task needed to form a GRPO group
    sft_threshold: float = 0.5      # outcome reward at or above which an episode is "good"
    # -- LoRA (peft) on attention and MLP projections --------------------------------------------
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                       "up_proj", "down_proj")
    # -- optimisation -------------------------------------------------------------------------
    sft_lr: float = 2e-4
    sft_epochs: int = 2
    grpo_lr: float = 1e-4           # 3e-4 collapsed the 135M policy (§9)
    grpo_epochs: int = 1
    batch_size: int = 4
    max_tokens: int = 1536          # prompt + action, left-truncated (the prompt's start)
    clip_low: float = 0.2           # asymmetric clip (§7)
    clip_high: float = 0.28
    kl_coef: float = 0.0            # no KL term by default (§7); > 0 adds k3 KL to the base
    entropy_coef: float = 0.01      # keeps groups informative (§9)
    adv_eps: float = 1e-4
    seed: int = 0
    # -- practice ------------------------------------------------------------------------------
    practice_k: int = 4             # attempts per task in a nightly cycle
    practice_temperature: float = 1.0   # sampling while practising: attempts must differ for
                                        # a group to teach anything (at 0.25 most agree, §9)
    gate_temperature: float = 0.0   # the gate compares likeliest actions: a seed's outcome
                                    # then differs only by the adapter, not by sampling luck
    practice_user_tasks: int = 4    # newest practice-safe user tasks repeated per cycle
    gate_margin: float = 0.02       # promote only if not worse than the current by more
    gate_reward_margin: float = 0.1  # ... and the judge's mean reward on held-out user tasks

    @classmethod
    def from_toml(cls, path: Path) -> TrainConfig:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read training config {path}: {exc}") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown training setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        if data.get("reward", "outcome") not in ("outcome", "judge", "ground_truth"):
            raise ValueError(f"{path}: reward must be outcome, judge or ground_truth, "
                             f"got {data['reward']!r}")
        if "target_modules" in data:
            data["target_modules"] = tuple(data["target_modules"])
        return dataclasses.replace(cls(), **data)


@dataclass(frozen=True)
class CyclePlan:
    """The MiniWoB++ tasks and seeds one learning cycle practises, teaches and gates on."""
    tasks: tuple[str, ...] = ("click-button", "click-link", "click-checkboxes", "click-dialog",
                              "enter-text", "focus-text")     # the oracle can teach these
    practice_seeds: int = 3         # train seeds per task; each attempted `practice_k` times
    gate_seeds: int = 5             # test seeds per task: 30 episodes, as many as showed
                                    # bench/learning.py's rise (0.40 -> 0.63, 8 won / 1 lost)
    max_steps: int = 6
    teacher_seeds: int = 20         # train seeds per task the oracle demonstrates (0: none);
                                    # more than practice: its episodes take no model time
