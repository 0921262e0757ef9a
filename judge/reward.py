"""One episode reward from the judge's parts, and which reward counts.

    reward = clip(W_FLIP * (2 * flip - 1) + W_PROGRESS * progress, -1, 1)

with `flip` in [0, 1] (FLIP's score, see flip.py) and `progress` in [-1, 1] (rules.py). The
weights live here and nowhere else; every judge reward row stores the components and the
weights it used, so it can be recomputed. Reward kinds in the store:

- ``judge``: this module's output, written by the daemon's background queue and `nightloop
  judge`.
- ``user``: the user's thumbs up (1) / down (-1) from the popup; it overrides the judge.
- ``ground_truth``: an eval benchmark's own reward; kept apart and never mixed into the judge's.
"""

from __future__ import annotations

from daemon.store import Reward

WEIGHTS = {"flip": 0.7, "progress": 0.3}
RANGE = (-1.0, 1.0)


def combine(flip: float, progress: float, weights: dict[str, float] = WEIGHTS) -> float:
    value = weights["flip"] * (2 * flip - 1) + weights["progress"] * progress
    return round(max(RANGE[0], min(RANGE[1], value)), 4)


def outcome(rewards: list[Reward]) -> Reward | None:
    """The reward that counts for training: the user's latest thumbs if any, else the latest
    judge score; None if neither exists (ground truth is an evaluation label, not an outcome)."""
    for kind in ("user", "judge"):
        rows = [r for r in rewards if r.kind == kind]
        if rows:
            return rows[-1]
    return None
