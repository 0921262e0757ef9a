"""One episode reward from the judge's parts, how a row says what it was made of, and which
reward counts.

The judge's reward is one of two, by what the judge has (judge.py):

- with a calibration (FLIP's likelihood form, the default): ``2 * p - 1``, `p` the learned
  combination's probability of success (calibration.py);
- otherwise (the generate form, or no calibration file) the hybrid
  ``clip(W_FLIP * (2 * flip - 1) + W_PROGRESS * progress, -1, 1)`` with `flip` in [0, 1]
  (flip.py) and `progress` in [-1, 1] (rules.py).

Every judge reward row stores its components (and the hybrid's weights), so it can be
recomputed; `explain` says it in one line. Reward kinds in the store:

- ``judge``: this module's output, written by the daemon's background queue and `nightloop
  judge`.
- ``user``: the user's thumbs up (1) / down (-1) from the popup; it overrides the judge.
- ``ground_truth``: a benchmark page's own reward (MiniWoB++, the bundled sites); never mixed
  into the judge's score, it outranks the judge for training where it exists (`RULES`).
- ``replay``: a practice replay of a good demonstration on a fresh load: 1 when it finished
  without needing anything but its recorded steps (a new example of a task the user showed).
"""

from __future__ import annotations

from daemon.core.errors import UsageError
from daemon.core.store import Reward

WEIGHTS = {"flip": 0.7, "progress": 0.3}
RANGE = (-1.0, 1.0)


def combine(flip: float, progress: float, weights: dict[str, float] = WEIGHTS) -> float:
    value = weights["flip"] * (2 * flip - 1) + weights["progress"] * progress
    return round(max(RANGE[0], min(RANGE[1], value)), 4)


def from_probability(p: float) -> float:
    """A probability of success as a reward on RANGE."""
    return round(2 * p - 1, 4)


def explain(details: dict) -> str:
    """How a judge row's value was made, in one line ('' for a row with no components):
    ``= 2 × p(success) 0.83 − 1 (likelihood z +1.20, lexical 0.41, arguments 0.67)`` or
    ``= 0.7 × (2 × FLIP 0.81 − 1) + 0.3 × progress +0.20``."""
    parts = details.get("components") or {}
    if "calibrated" in parts:
        read = (details.get("calibrated") or {}).get("features") or {}
        shown = ", ".join(f"likelihood z {value:+.2f}" if name == "flip_likelihood_z"
                          else f"{name} {value:.2f}" for name, value in read.items())
        return f"= 2 × p(success) {parts['calibrated']:.2f} − 1" + (f" ({shown})" if shown
                                                                    else "")
    if "flip" in parts:
        weights = details.get("weights") or WEIGHTS
        return (f"= {weights['flip']:g} × (2 × FLIP {parts['flip']:.2f} − 1) "
                f"+ {weights['progress']:g} × progress {parts['progress']:+.2f}")
    return ""


# Which stored reward counts for training, by rule (TrainConfig.reward): the first kind in the
# list that an episode has, its latest row of that kind.
RULES = {
    "outcome": ("user", "ground_truth", "replay", "judge"),   # thumbs, the page's truth, a
                                                              # clean replay, else the judge
    "judge": ("user", "replay", "judge"),           # how a user's own task is learned
    "ground_truth": ("ground_truth",),              # benchmarks only
}


def reward_that_counts(rewards: list[Reward], rule: str = "outcome") -> Reward | None:
    """The one reward of an episode that training uses under `rule` (see RULES); None when
    it has none of the rule's kinds. `rewards` in the order they were stored."""
    if rule not in RULES:
        raise UsageError(f"unknown reward rule {rule!r}; choose one of {', '.join(RULES)}")
    for kind in RULES[rule]:
        rows = [r for r in rewards if r.kind == kind]
        if rows:
            return rows[-1]
    return None
