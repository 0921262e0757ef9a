"""Every training hyperparameter in one dataclass, each field with its help text and bounds,
grouped by purpose (defaults from the measurements in the README). `nightloop train --config
FILE` overrides any of them from a TOML file whose keys are the field names; an unknown key, a
value of the wrong type or out of range is an error naming the file, so a typo never silently
trains with a default. Every checkpoint and every adapter row stores the config it was trained
with. What a cycle practises and measures on (tasks, seeds) is `CyclePlan`, set from the
command line.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.core.settings import ConfigError, check_value, setting
from judge.reward import RULES

if TYPE_CHECKING:
    from daemon.tasks.cluster import Cluster


@dataclass(frozen=True)
class TrainConfig:
    # -- data ---------------------------------------------------------------------------------
    reward: str = setting("outcome", "which stored reward an episode trains with (judge.reward."
                          "RULES): outcome (thumbs, else ground truth, else judge), judge "
                          "(thumbs, else judge) or ground_truth", choices=tuple(RULES))
    group_min: int = setting(2, "attempts of one task and start page needed to form a GRPO "
                             "group", low=2, high=1000)
    sft_threshold: float = setting(0.5, "reward at or above which an episode is good enough "
                                   "to imitate (SFT)", low=-1, high=1)
    sft_trusts_judge: bool = setting(False, "SFT may imitate episodes only the judge approved "
                                     "(off: its scores are not calibrated across tasks yet; "
                                     "they still rank attempts within a GRPO group)")
    judge_sft_precision: float = setting(0.9, "SFT may imitate episodes on the judge's "
                                         "calibrated probability alone when its calibration's "
                                         "measured precision on unseen tasks at sft_threshold "
                                         "reaches this (the shipped one: 0.56, so not yet)",
                                         low=0, high=1)
    judge_refit_episodes: int = setting(200, "the judge scores up to this many of a cycle's "
                                        "episodes with ground truth (about 0.4 s each), then "
                                        "refits its calibration on all such episodes of the "
                                        "store (judge/refit.py); 0: no refit", low=0,
                                        high=100_000)
    relabel_share: float = setting(0.25, "hindsight: at most this share of the SFT samples "
                                   "are failures relabelled as the instruction they did "
                                   "fulfil (0: none)", low=0, high=0.9)
    rft_groups: int = setting(300, "self-imitation: the newest tasks-and-seeds with a verified "
                              "practice success (this and earlier nights) whose shortest "
                              "success SFT imitates", low=0, high=1_000_000)
    rft_decay: float = setting(0.7, "self-imitation: a success n nights old stays in the buffer "
                               "with probability rft_decay^n (1: never fades), so the policy "
                               "leans on what it still solves", low=0, high=1)
    rft_id_variants: int = setting(0, "self-imitation: copies of each chosen success with the "
                                   "pages' element ids renumbered, a guard against position "
                                   "habits such as always clicking [1] (0: none)", low=0,
                                   high=10)
    sft_skip_solved: bool = setting(True, "SFT leaves out tonight's practice groups (a task "
                                    "and seed) every attempt of which succeeded (the policy "
                                    "already does them: copying them teaches only its habits), "
                                    "and practice skips the tasks every group of which was so "
                                    "last night")
    # -- LoRA (peft) on attention and MLP projections ---------------------------------------
    lora_r: int = setting(16, "LoRA rank", low=1, high=512)
    lora_alpha: int = setting(32, "LoRA alpha (llama.cpp scales by alpha / rank, like peft)",
                              low=1, high=4096)
    lora_dropout: float = setting(0.0, "dropout on the LoRA input", low=0, high=0.9)
    target_modules: tuple[str, ...] = setting(
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        "the model's projections that get LoRA weights")
    # -- optimisation -------------------------------------------------------------------------
    sft_lr: float = setting(2e-4, "AdamW learning rate of the SFT warm-up", low=1e-7, high=1e-2)
    sft_epochs: int = setting(2, "passes over the SFT samples (2: where a direct check stopped "
                              "improving)", low=0, high=100)
    demo_passes: int = setting(6, "the most passes a night makes over one demonstration, its "
                               "variants included: each gives demo_passes / sft_epochs - 1 "
                               "variants with other values and element ids", low=1, high=1000)
    demo_nights: int = setting(3, "nights a demonstration is trained on (its passes do not pile "
                               "up on the adapter beyond them; its replays go on giving new "
                               "examples)", low=1, high=1000)
    grpo_lr: float = setting(1e-4, "AdamW learning rate of GRPO (3e-4 collapsed the 135M "
                             "policy)", low=1e-7, high=1e-2)
    grpo_epochs: int = setting(1, "passes over the GRPO samples", low=0, high=100)
    weight_decay: float = setting(0.0, "AdamW weight decay (0: a night never shrinks the "
                                  "adapter it goes on from; PyTorch's default, 0.01, shrinks "
                                  "every weight each step, gradient or not)", low=0, high=1)
    batch_size: int = setting(4, "samples per optimiser step", low=1, high=1024)
    max_tokens: int = setting(1536, "prompt + action tokens per sample, cut from the prompt's "
                              "start", low=64, high=131072)
    max_grad_norm: float = setting(1.0, "gradients are clipped to this global norm",
                                   low=1e-3, high=1e3)
    prefix_min_tokens: int = setting(64, "a batch's shared prompt prefix runs once, and its "
                                     "gradient goes back through it once, when it is at "
                                     "least this long (the same gradient as running each "
                                     "sample whole)", low=1,
                                     high=131072)
    clip_low: float = setting(0.2, "GRPO ratio clip below 1 (asymmetric clip)", low=0, high=1)
    clip_high: float = setting(0.28, "GRPO ratio clip above 1 (clip-higher)", low=0, high=10)
    kl_coef: float = setting(0.0, "weight of a k3 KL term to the base model (0: none)",
                             low=0, high=10)
    sampler_weight_cap: float = setting(3.0, "GRPO: the importance weight of the trained "
                                        "model to the sampler that drew a token is capped "
                                        "here (TRL's token_truncate default)", low=1, high=100)
    entropy_coef: float = setting(0.0, "GRPO: entropy bonus (off: outside the clip, it was the "
                                  "only gradient left on clipped tokens)", low=0, high=1)
    adv_eps: float = setting(1e-4, "added to a group's reward std before dividing", low=1e-8,
                             high=1)
    seed: int = setting(0, "seed of the sample order", low=0, high=2**31 - 1)
    save_every: int = setting(10, "optimiser steps between saved training states (what an "
                              "interrupted cycle resumes from)", low=1, high=100_000)
    # -- practice and the gate ----------------------------------------------------------------
    practice_k: int = setting(8, "attempts per task and seed (or start page) in a cycle, as the "
                              "budget allows", low=1, high=64)
    practice_temperature: float = setting(1.0, "sampling temperature while practising: "
                                          "attempts must differ for a group to teach anything",
                                          low=0, high=2)
    practice_explore: float = setting(0.0, "share of practice steps whose kind of action is "
                                      "drawn at random (Settings.explore): the small model "
                                      "almost never tries `fill` by itself", low=0, high=1)
    practice_distinct_openings: bool = setting(True, "a group's attempts (one task and start "
                                               "page) open with actions not drawn before in "
                                               "the group while there are any: without "
                                               "replacement, so K attempts explore K openings")
    gate_temperature: float = setting(0.0, "the gate's temperature (0: likeliest actions, so a "
                                      "seed's outcome differs only by the adapter)", low=0,
                                      high=2)
    practice_user_tasks: int = setting(4, "newest practice-safe user tasks repeated per cycle",
                                       low=0, high=1000)
    demo_replays: int = setting(2, "replays (no model) of each practice-safe demonstration per "
                                "cycle, on fresh loads: each that finishes on its recorded "
                                "steps alone is a new positive example", low=0, high=100)
    gate_promote: str = setting("better", "when the candidate is promoted, on the MiniWoB++ "
                                "validation seeds both adapters ran: better (it solved more "
                                "of them than the serving adapter), not_worse (a tie too) or "
                                "always (benchmarks that chain cycles)",
                                choices=("better", "not_worse", "always"))
    gate_episodes: int = setting(100, "MiniWoB++ gate episodes per adapter when the budget "
                                 "allows (fewer when not, and the gate says so)", low=1,
                                 high=100_000)
    gate_min_held_out: int = setting(3, "held-out user tasks the judge's comparison needs "
                                     "before it can veto (fewer: reported only)", low=1, high=1000)
    gate_reward_margin: float = setting(0.1, "the candidate is rejected if the judge's mean "
                                        "reward on held-out user tasks is lower than the serving "
                                        "adapter's by more than this", low=0, high=2)
    # -- the cycle's time budget --------------------------------------------------------------
    practice_share: float = setting(0.3, "share of the budget for practice", low=0.01,
                                    high=0.97)
    judge_share: float = setting(0.05, "share of the budget for judging practice episodes that "
                                 "have no ground truth (the rest wait for the daemon's queue)",
                                 low=0.01, high=0.97)
    train_share: float = setting(0.45, "share of the budget for training", low=0.01, high=0.97)
    gate_share: float = setting(0.2, "share of the budget for the gate", low=0.01, high=0.97)
    sft_share: float = setting(0.6, "share of the training time SFT may use when GRPO has "
                               "groups (all of it otherwise)", low=0.01, high=1)
    miniwob_practice_share: float = setting(0.6, "share of the practice time for MiniWoB++ when "
                                            "user tasks are practised too", low=0.01, high=1)
    miniwob_gate_share: float = setting(0.7, "share of each adapter's gate time for MiniWoB++ "
                                        "when user tasks are held out too", low=0.01, high=1)

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            check_value(TrainConfig, spec.name, getattr(self, spec.name), "training config")
        shares = sum(self.shares.values())
        if abs(shares - 1) > 1e-6:
            raise ConfigError(f"training config: practice_share + judge_share + train_share + "
                              f"gate_share must be 1, got {shares:g}")

    @property
    def shares(self) -> dict[str, float]:
        """The cycle's phases in order, with their shares of the budget."""
        return {"practice": self.practice_share, "judge": self.judge_share,
                "train": self.train_share, "gate": self.gate_share}

    @classmethod
    def from_toml(cls, path: Path) -> TrainConfig:
        """The defaults overridden by a TOML file; ConfigError naming the file and the key."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read training config {path}: {exc}") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown training setting(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        checked = {name: check_value(cls, name, value, str(path)) for name, value in data.items()}
        try:
            return cls(**checked)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_json(self) -> dict:
        """The config as JSON keeps it (in an adapter row, a training checkpoint): tuples as
        lists, so a saved copy compares equal to a fresh one."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def help(self) -> str:
        """Every setting with its value and help, as `nightloop train --config-help` prints."""
        return "\n".join(f"{f.name} = {getattr(self, f.name)!r}\n    {f.metadata['help']}"
                         for f in dataclasses.fields(self))


@dataclass(frozen=True)
class CyclePlan:
    """The MiniWoB++ tasks and seeds one learning cycle practises, teaches and gates on, and
    the bundled sites' templates it practises (with their ground truth) beside them."""
    tasks: tuple[str, ...] = ()     # MiniWoB++ tasks; (): every DOM-level task (suite "all")
    sites: tuple[str, ...] | None = None    # bundled-site templates practised on the same
                                    # train seeds; None: those your demonstrations fit
    practice_seeds: int = 0         # train seeds per task, each attempted `practice_k` times,
                                    # after the last seed an earlier night practised; 0: seed
                                    # after seed (up to PRACTICE_SEEDS) while practice's time
                                    # lasts
    gate_seeds: int = 0             # validation seeds per task; 0: enough for `gate_episodes` per
                                    # adapter, as many as the gate's time fits
    max_steps: int = 10             # per episode, as the benchmarks measure
    teacher_seeds: int = 20         # train seeds per task the oracle demonstrates (0: none);
                                    # more than practice: its episodes take no model time
    screenshots: bool = False       # practice keeps a screenshot of each step
    cluster: Cluster | None = None  # where practice's and the gate's benchmark episodes run:
                                    # Ray actors (daemon.tasks.cluster); None: here
