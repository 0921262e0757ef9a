"""SFT warm-up and GRPO on LoRA: losses over the action tokens only, one optimiser loop.

- SFT: mean negative log-likelihood of the action tokens of good episodes' steps.
- GRPO: clipped policy gradient with the trajectory's group-relative advantage shared by its
  action tokens, asymmetric clip (clip_low / clip_high), an optional k3 KL term to the base
  (the adapter switched off) and an optional entropy bonus. Its samples are the policy's own
  draws (`Sample.sampled`), recorded while practising, but the model it trains is no longer
  that sampler (SFT ran first; earlier batches moved it). As in TRL's GRPOTrainer, the clip's
  old policy is the model itself at a sample's first use (its log-probs then, detached: a
  ratio of 1 on first use, so the clip bounds only the later epochs' steps), and the distance
  to the sampler is corrected by a separate, detached importance weight per token, capped at
  `sampler_weight_cap` (TRL's "token_truncate"; for an action practice's exploration mixed
  into, the mixture's odds, `Sampled.mixture`, divide it). Log-probs are renormalised as the
  sampler's were, over the tokens the grammar allowed at that position (free text: all but
  those it forbade; a record from before those were kept counts the whole vocabulary) and at
  the sampling temperature, as TRL divides by it. Only tokens where the grammar left a choice
  carry loss (a forced token has probability 1 either way), averaged over all such tokens of
  a batch (DAPO), so a long action weighs by its choices, not as one sample. `Report.grpo`
  says what the tokens looked like (`GrpoStats`).
- CPU: fp32 (bf16 autocast on this CPU re-compiles for every new sequence length, ~7 s a call).
- The tokens every sample of a batch starts with (the policy's system prompt, ~3/4 of each
  prompt) run once per batch and every sample goes on from their keys/values; the batch's
  losses are summed and go back through the prefix once, so losses and gradients are those of
  each sample run whole (tested), at about half the cost. The prefix is the batch's own, so
  one prompt cut to `max_tokens` (its start gone) costs only its batch the saving.
- `train` stops cleanly at a deadline and returns what it did; losses must stay finite. An
  SFT phase ends by checking up to `FIT_PROBE` of its samples: `Report.fitted` is the share
  whose every deciding action token is now the model's likeliest (a mean loss over an action's
  ~15 tokens hides the one or two that decide it). Deciding: any token but JSON's layout
  (whitespace, braces, quotes, colons, commas, the end of the output), which the grammar leaves
  open and a sample drawn at temperature 1 writes every which way; its training stops early
  enough for that check to end by the deadline too (the check's time estimated from the
  steps').
- Resumable: with `state_file`, every `save_every` steps (and at the end) the adapter weights,
  the optimiser, the steps done and the config are saved there
  (atomically); a later call with the same samples, config and file loads them and goes on
  after the last saved step (the batch order is the seeded one, so the skipped batches are
  exactly the ones done).
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from .config import TrainConfig
from .data import Sample

FIT_PROBE = 16          # samples an SFT phase checks for `Report.fitted`
_LAYOUT = re.compile(r'[\s{}\[\]":,]')   # JSON's layout: a token of these alone decides nothing


@dataclass
class Encoded:
    ids: torch.Tensor           # (1, n) prompt + action tokens
    action: torch.Tensor        # (n - 1,) bool: which next-token targets are action tokens
    sample: Sample
    # From the sampler's record (None without one), one entry per action token:
    old: torch.Tensor | None = None             # its log-probs
    allowed: list | None = None     # per token, the ids the grammar allowed (`Sampled.choices`)
    choice: torch.Tensor | None = None          # bool: more than one was allowed
    deciding: torch.Tensor | None = None        # bool, per action token: not JSON layout
    first: torch.Tensor | None = None   # GRPO: the model's log-probs at the sample's first use


@dataclass
class Report:
    phase: str
    steps: int = 0
    samples: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    total_steps: int = 0            # what the phase would take without a deadline
    resumed_at: int = 0             # steps a saved state had already done
    fitted: float | None = None     # SFT: share of probed samples the model now reproduces
    grpo: dict | None = None        # GRPO: `GrpoStats.summary()`

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


def encode(tokenizer, sample: Sample, max_tokens: int) -> Encoded:
    """Prompt and action as token ids, cut from the left to `max_tokens` (the action stays):
    the action's tokens are the ones the sampler drew when it recorded them, else the
    completion's tokens and end-of-sequence."""
    prompt = tokenizer(sample.prompt, add_special_tokens=False)["input_ids"]
    drawn = sample.sampled
    if drawn:
        action = list(drawn.tokens)
    else:
        action = tokenizer(sample.completion, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            action = action + [tokenizer.eos_token_id]      # the policy stops there
    ids = (prompt + action)[-max_tokens:]
    is_action = ([False] * len(prompt) + [True] * len(action))[-max_tokens:]
    item = Encoded(torch.tensor([ids]), torch.tensor(is_action[1:]), sample,
                   deciding=torch.tensor([bool(_LAYOUT.sub("", tokenizer.decode(
                       [t], skip_special_tokens=True))) for t in action]))
    if drawn:
        item.old = torch.tensor(drawn.logprobs, dtype=torch.float32)
        item.allowed = drawn.choices
        item.choice = torch.tensor([len(c) > 1 if isinstance(c, list) else
                                    isinstance(c, dict) or c > 1 for c in drawn.choices])
    return item


Prefix = tuple[int, object]     # (length, the key/value cache of those tokens)


def shared_length(items: list[Encoded], minimum: int = 64) -> int:
    """How many leading tokens every item shares and no action token is predicted from (0 if
    fewer than `minimum`)."""
    first = items[0].ids[0]
    n = min(int(item.action.nonzero()[0, 0]) for item in items)
    for item in items[1:]:
        differ = (item.ids[0, :n] != first[:n]).nonzero()
        if len(differ):
            n = int(differ[0, 0])
    return n if n >= minimum else 0


def prefix(model, item: Encoded, length: int) -> Prefix | None:
    """`item`'s first `length` tokens run once: their key/value cache (differentiable when
    gradients are on)."""
    if not length:
        return None
    ids = item.ids[:, :length].to(model.device)
    return length, model(ids, use_cache=True).past_key_values


def going_on(past) -> DynamicCache | None:
    """A cache that starts from `past`'s tensors (the same ones: gradients flow back into
    them) and grows on its own, leaving `past` for the next sample."""
    return DynamicCache([(keys, values) for keys, values, *_ in past]) if past else None


def _logprobs(model, item: Encoded, shared: Prefix | None = None, as_sampled: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p of each action token, entropy at each action position); with `as_sampled`,
    over the distribution the sampler drew from (the allowed tokens, at its temperature);
    with `shared`, the forward pass starts after that prefix, from its cache."""
    ids, action = item.ids.to(model.device), item.action.to(model.device)
    start, past = shared if shared else (0, None)
    logits = model(ids[:, start:], past_key_values=going_on(past)).logits[0, :-1]
    logits = logits[action[start:]].float()
    targets = ids[0, 1:][action]
    if as_sampled and item.sample.sampled:
        logits = logits / item.sample.sampled.temperature
        allowed = torch.ones_like(logits, dtype=torch.bool)
        for row, ids in enumerate(item.allowed):
            if isinstance(ids, list):
                allowed[row] = False
                allowed[row, ids] = True
            elif isinstance(ids, dict):
                allowed[row, ids["not"]] = False
        logits = logits.masked_fill(~allowed, float("-inf"))
    logp = F.log_softmax(logits, dim=-1)
    finite = logp.masked_fill(~logp.isfinite(), 0.0)       # 0 · -inf would poison the gradient
    entropy = -(logp.exp() * finite).sum(-1)
    return logp.gather(-1, targets[:, None])[:, 0], entropy


def sft_loss(model, item: Encoded, shared: Prefix | None = None) -> torch.Tensor:
    return -_logprobs(model, item, shared)[0].mean()


@dataclass
class GrpoStats:
    """GRPO's choice tokens, counted over a phase (TRL logs the like): how many the clip left
    without a gradient, by the advantage's sign (`clipped_*`: against the old policy, what the
    loss uses; `sampler_clipped_*`: had the ratio been taken against the sampler, as before),
    the mean ratio of the model to the sampler, a k3 estimate of KL(sampler || model), and
    how many importance weights hit the cap."""
    tokens: int = 0
    positive: int = 0
    negative: int = 0
    clipped_high: int = 0           # advantage > 0, ratio above 1 + clip_high
    clipped_low: int = 0            # advantage < 0, ratio below 1 - clip_low
    sampler_clipped_high: int = 0
    sampler_clipped_low: int = 0
    capped: int = 0
    sampler_ratio: float = 0.0      # sums, divided by `tokens` in the summary
    kl_to_sampler: float = 0.0

    def add(self, advantage: float, ratio: torch.Tensor, to_sampler: torch.Tensor,
            capped: torch.Tensor, config: TrainConfig) -> None:
        """One sample's choice tokens: its ratios to the old policy and to the sampler."""
        high, low = 1 + config.clip_high, 1 - config.clip_low
        self.tokens += len(ratio)
        self.sampler_ratio += float(to_sampler.sum())
        self.kl_to_sampler += float((to_sampler - 1 - to_sampler.log()).sum())   # k3
        self.capped += int(capped.sum())
        if advantage > 0:
            self.positive += len(ratio)
            self.clipped_high += int((ratio > high).sum())
            self.sampler_clipped_high += int((to_sampler > high).sum())
        elif advantage < 0:
            self.negative += len(ratio)
            self.clipped_low += int((ratio < low).sum())
            self.sampler_clipped_low += int((to_sampler < low).sum())

    def summary(self) -> dict:
        def share(count: int, of: int) -> float | None:
            return round(count / of, 4) if of else None
        return {"tokens": self.tokens,
                "clipped_high": share(self.clipped_high, self.positive),
                "clipped_low": share(self.clipped_low, self.negative),
                "sampler_clipped_high": share(self.sampler_clipped_high, self.positive),
                "sampler_clipped_low": share(self.sampler_clipped_low, self.negative),
                "sampler_ratio": share(self.sampler_ratio, self.tokens),
                "kl_to_sampler": share(self.kl_to_sampler, self.tokens),
                "capped": share(self.capped, self.tokens)}


def grpo_loss(model, item: Encoded, config: TrainConfig, shared: Prefix | None = None,
              stats: GrpoStats | None = None) -> torch.Tensor:
    """The loss of each action token, shape (n,), zero where the grammar left no choice: the
    clipped ratio to the old policy (the model at the sample's first use) times the capped,
    detached importance weight of that policy to the sampler. The caller averages over the
    choice tokens of the batch (DAPO's token-level mean), not per sample."""
    if item.old is None:
        raise ValueError(f"episode {item.sample.episode_id}: GRPO needs the sampler's "
                         "recorded log-probs")
    logp, entropy = _logprobs(model, item, shared, as_sampled=True)     # (n,), (n,)
    if item.first is None:
        item.first = logp.detach()
    ratio = (logp - item.first).exp()
    to_sampler = (item.first - item.old).exp()
    uncapped = to_sampler * math.exp(-item.sample.sampled.mixture)  # exploring: the mixture drew it
    weight = uncapped.clamp(max=config.sampler_weight_cap)
    advantage = item.sample.advantage
    clipped = ratio.clamp(1 - config.clip_low, 1 + config.clip_high)
    per_token = -torch.minimum(ratio * advantage, clipped * advantage) * weight
    if config.kl_coef:
        with torch.no_grad(), model.disable_adapter():
            ref = _logprobs(model, item, as_sampled=True)[0]
        per_token = per_token + config.kl_coef * ((ref - logp).exp() - (ref - logp) - 1)
    if stats is not None:
        chosen = item.choice
        stats.add(advantage, ratio.detach()[chosen], to_sampler[chosen],
                  (uncapped > config.sampler_weight_cap)[chosen], config)
    return torch.where(item.choice, per_token - config.entropy_coef * entropy, 0.0)


def backward(model, batch: list[Encoded], config: TrainConfig, phase: str,
             stats: GrpoStats | None = None) -> float:
    """Accumulate the gradient of one batch's loss; the loss. The batch's shared prompt prefix
    runs once (when it is at least `prefix_min_tokens` long) and the summed loss goes back
    through it once."""
    shared = prefix(model, batch[0], shared_length(batch, config.prefix_min_tokens))
    choices = sum(int(item.choice.sum()) for item in batch if item.choice is not None)
    if phase == "sft":
        loss = sum(sft_loss(model, item, shared) for item in batch) / len(batch)
    else:               # DAPO: the mean over every choice token of the batch
        loss = sum(grpo_loss(model, item, config, shared, stats).sum() for item in batch) / \
            max(1, choices)
    loss.backward()
    return loss.item()


def train(model, tokenizer, samples: list[Sample], config: TrainConfig, phase: str,
          deadline: float = math.inf, progress=lambda report: None,
          state_file: Path | None = None) -> Report:
    """Run `phase` ("sft" or "grpo") over `samples`; stop at `deadline` (time.monotonic).
    With `state_file`, the state is saved there every `config.save_every` steps (with the
    config), and a saved state of the same phase and config is gone on from."""
    report = Report(phase)
    if not samples:
        return report
    lr, epochs = (config.sft_lr, config.sft_epochs) if phase == "sft" else \
        (config.grpo_lr, config.grpo_epochs)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    items = [encode(tokenizer, s, config.max_tokens) for s in samples]
    items = [i for i in items if i.action.any()]
    if not items:
        return report
    report.total_steps = epochs * math.ceil(len(items) / config.batch_size)
    probe = random.Random(config.seed).sample(items, min(FIT_PROBE, len(items))) \
        if phase == "sft" else []
    order = random.Random(config.seed)
    stats = GrpoStats() if phase == "grpo" else None
    t0 = time.monotonic()
    stepping = 0.0                          # seconds this call's steps took
    saved = _load_state(state_file, phase, config, model, optimiser)
    if saved:
        report.losses = saved["losses"]
        report.steps = report.resumed_at = len(report.losses)
    model.train()
    step = 0
    for _ in range(epochs):
        order.shuffle(items)
        for start in range(0, len(items), config.batch_size):
            step += 1
            if step <= report.resumed_at:
                continue                    # done before the state was saved
            done = report.steps - report.resumed_at
            if time.monotonic() + _probe_seconds(probe, stepping, done, config) >= deadline:
                report.stopped_early = True
                break
            batch = items[start:start + config.batch_size]
            began = time.monotonic()
            optimiser.zero_grad()
            total = backward(model, batch, config, phase, stats)
            if not math.isfinite(total):
                raise FloatingPointError(f"{phase} loss became {total} at step {report.steps}")
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimiser.step()
            stepping += time.monotonic() - began
            report.steps += 1
            report.samples += len(batch)
            report.losses.append(round(total, 5))
            if state_file and report.steps % config.save_every == 0:
                _save_state(state_file, phase, config, model, optimiser, report)
            progress(report)
    if state_file and report.steps > report.resumed_at:
        _save_state(state_file, phase, config, model, optimiser, report)
    model.eval()
    if probe:
        report.fitted = round(fitted(model, probe), 3)
    if stats is not None:
        report.grpo = stats.summary()
    report.seconds = round(time.monotonic() - t0, 2)
    return report


def _probe_seconds(probe: list[Encoded], stepping: float, steps: int,
                   config: TrainConfig) -> float:
    """What the fit probe will take, from the steps so far: one forward pass per probed
    sample, about a third of a sample's share of a training step (forward and backward)."""
    return len(probe) * stepping / steps / (3 * config.batch_size) if steps else 0.0


def fitted(model, items: list[Encoded]) -> float:
    """The share of `items` whose every deciding action token is the model's likeliest next
    token (teacher-forced: a layout token it would write otherwise changes nothing)."""
    hits = 0
    with torch.no_grad():
        for item in items:
            ids, action = item.ids.to(model.device), item.action.to(model.device)
            likeliest = model(ids).logits[0, :-1][action].argmax(-1)
            right = likeliest == ids[0, 1:][action]
            hits += bool(right[item.deciding.to(right.device)].all())
    return hits / len(items) if items else 0.0


def _save_state(path: Path, phase: str, config: TrainConfig, model, optimiser,
                report: Report) -> None:
    """A plain dict, like nanoGPT's checkpoint: the config it was trained with included."""
    from peft import get_peft_model_state_dict
    tmp = path.with_suffix(".partial")
    torch.save({"phase": phase, "config": config.to_json(),
                "adapter": get_peft_model_state_dict(model),
                "optimiser": optimiser.state_dict(), "losses": report.losses}, tmp)
    tmp.replace(path)


def _load_state(path: Path | None, phase: str, config: TrainConfig, model,
                optimiser) -> dict | None:
    """The saved state of `phase` loaded into model and optimiser; None if there is none, or
    if it was trained with another config (going on from it would mix two runs)."""
    if not path or not path.exists():
        return None
    from peft import set_peft_model_state_dict
    state = torch.load(path, weights_only=True)
    if state["phase"] != phase or state.get("config") != config.to_json():
        return None
    set_peft_model_state_dict(model, state["adapter"])
    optimiser.load_state_dict(state["optimiser"])
    return state
