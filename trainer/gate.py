"""The gate's verdict: both adapters' figures on what both finished, and whether the candidate
earned promotion.

Outcomes come in as `{key: value}` per adapter: a MiniWoB++ (task, seed) key holds 1.0 or 0.0
(solved or not, greedy), a user task's name holds the judge's reward for one greedy attempt.
Only keys both adapters have count (a gate cut short by the budget compares like with like).
Every practice-safe user task is measured, so the morning report can say which got better; only
the held-out ones (never trained on) weigh in the decision. `GateOutcome` is what the cycle
reports and the store keeps with the adapter and the night (as JSON: `dataclasses.asdict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.tasks.report import sign_test, won_lost

from .config import TrainConfig


@dataclass
class HeldOut:
    reward: float                   # the judge's mean reward over the held-out user tasks
    n: int


@dataclass
class Arm:
    """One adapter at the gate: MiniWoB++ success over the paired (task, seed) episodes, per
    task, its held-out user tasks, the judge's reward on each of the user's tasks, and (the
    serving adapter) how many outcomes an earlier gate had measured (`gate_results`)."""
    success: float
    n: int
    tasks: dict[str, float] = field(default_factory=dict)
    held_out: HeldOut | None = None
    known: int = 0
    yours: dict[str, float] = field(default_factory=dict)


@dataclass
class Pairs:
    won: int                        # (task, seed) pairs only the candidate solved
    lost: int                       # ... only the serving adapter solved
    p: float                        # two-sided sign test


@dataclass
class GateOutcome:
    candidate: Arm
    serving: Arm
    pairs: Pairs
    unmeasured: list[str] = field(default_factory=list)   # planned tasks with no pair
    held: list[str] = field(default_factory=list)         # which of `yours` are held out

    def summary(self) -> str:
        """One line for a person: both success rates, the pairs won and lost."""
        return (f"candidate {self.candidate.success:.3f} vs serving {self.serving.success:.3f} "
                f"on {self.candidate.n} paired episodes, won {self.pairs.won} / lost "
                f"{self.pairs.lost} (p {self.pairs.p:.4f})")


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def compare(candidate: dict, serving: dict, tasks_planned: tuple[str, ...] = (), *,
            known: int = 0, held: frozenset[str] | set[str] = frozenset()) -> GateOutcome:
    """Both adapters' figures on the keys both have; `known`: the serving adapter's outcomes
    an earlier gate measured; `held`: the user's tasks that are held out."""
    pairs = [k for k in candidate if isinstance(k, tuple) and k in serving]
    yours = [k for k in candidate if isinstance(k, str) and k in serving]
    held_out = [k for k in yours if k in held]

    def arm(seen: dict, known: int = 0) -> Arm:
        return Arm(_mean([seen[k] for k in pairs]), len(pairs),
                   {t: _mean([seen[k] for k in pairs if k[0] == t])
                    for t in dict.fromkeys(k[0] for k in pairs)},
                   HeldOut(_mean([seen[k] for k in held_out]), len(held_out))
                   if held_out else None, known, {k: seen[k] for k in yours})
    won, lost = won_lost({k: serving[k] for k in pairs}, candidate)
    measured = {k[0] for k in pairs}
    return GateOutcome(arm(candidate), arm(serving, known),
                       Pairs(won, lost, round(sign_test(won, lost), 4)),
                       [t for t in tasks_planned if t not in measured], held_out)


@dataclass(frozen=True)
class Decision:
    promote: bool
    why: str                        # one sentence for the morning report


def decide(outcome: GateOutcome, config: TrainConfig) -> Decision:
    """The gate's rule: evidence on the paired MiniWoB++ validation seeds (`gate_promote`: more
    seeds won than lost; or a tie too; or always), and no loss beyond `gate_reward_margin` in
    the judge's reward on held-out user tasks once there are `gate_min_held_out` of them."""
    if config.gate_promote == "always":
        return Decision(True, "promoted without evidence: gate_promote is \"always\"")
    if outcome.candidate.n == 0:
        return Decision(False, "not promoted: the gate measured no paired episode")
    mine, theirs = outcome.candidate.held_out, outcome.serving.held_out
    if mine and theirs and mine.n >= config.gate_min_held_out and \
            mine.reward < theirs.reward - config.gate_reward_margin:
        return Decision(False, f"not promoted: on your {mine.n} held-out tasks the judge's "
                               f"reward fell from {theirs.reward:.2f} to {mine.reward:.2f}, more "
                               f"than the margin of {config.gate_reward_margin:g}")
    won, lost = outcome.pairs.won, outcome.pairs.lost
    seeds = f"won {won} / lost {lost} paired seeds (sign test p {outcome.pairs.p:.3f})"
    if config.gate_promote == "better":
        return Decision(won > lost, f"promoted: {seeds}" if won > lost else
                        f"not promoted: {seeds}; it needs more won than lost")
    if config.gate_promote == "not_worse":
        return Decision(won >= lost, f"promoted: {seeds}" if won >= lost else
                        f"not promoted: {seeds}; it needs no more lost than won")
    raise ValueError(f"unknown gate_promote {config.gate_promote!r}")
