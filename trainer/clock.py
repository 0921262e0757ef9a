"""The night's time, planned up front: each phase of a cycle ends at a deadline set by its share
of the budget.

Contract:
- `Clock(budget, shares)`: `shares` are the phases in the order they run with their shares of
  `budget` seconds (TrainConfig.shares: practice, judge, train, gate).
- `plan(first)` sets the deadlines from now for phase `first` and those after it; the phases
  before it get none (a resumed cycle spends only the shares of the phases it has left).
  With `gate_seconds` (what the gate's episodes need), the gate's share is no more than that
  and practice gets what it leaves.
- `left(phase)`: seconds until the phase's deadline (negative once it passed).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    def __init__(self, budget: float, shares: dict[str, float],
                 now: Callable[[], float] = time.monotonic):
        self.budget, self.shares, self.now = budget, dict(shares), now
        self.deadline: dict[str, float] = {}

    def plan(self, first: str, gate_seconds: float | None = None) -> None:
        shares = dict(self.shares)
        if gate_seconds is not None:
            gate = min(shares["gate"], gate_seconds / self.budget)
            shares["practice"] += shares["gate"] - gate
            shares["gate"] = gate
        phases = list(shares)
        end = self.now()
        self.deadline = dict.fromkeys(phases, end)
        for name in phases[phases.index(first):]:
            end += self.budget * shares[name]
            self.deadline[name] = end

    def left(self, phase: str) -> float:
        return self.deadline[phase] - self.now()
