"""One episode reward from the judge's parts, and which reward counts.

    reward = clip(W_FLIP * (2 * flip - 1) + W_PROGRESS * progress, -1, 1)

with `flip` in [0, 1] (FLIP's score, see flip.py) and `progress` in [-1, 1] (rules.py). The
weights live here and nowhere else; every judge reward row stores the components and the
weights it used, so it can be recomputed. Reward kinds in the store:

- ``judge``: this module's output, written by the daemon's background queue and `nightloop
  judge`.
- ``user``: the user's thumbs up (1) / down (-1) from the popup; it overrides the judge.
- ``ground_truth``: a benchmark page's own reward (MiniWoB++, the bundled sites); never mixed
  into the judge's score, it outranks the judge for training where it exists (`RULES`).
- ``replay``: a practice replay of a good demonstration on a fresh load: 1 when it finished
  without needing anything but its recorded steps (a new example of a task the user showed).
"""

from __future__ import annotations

from daemon.core.store import Reward

WEIGHTS = {"flip": 0.7, "progress": 0.3}
RANGE = (-1.0, 1.0)


def combine(flip: float, progress: float, weights: dict[str, float] = WEIGHTS) -> float:
    value = weights["flip"] * (2 * flip - 1) + weights["progress"] * progress
    return round(max(RANGE[0], min(RANGE[1], value)), 4)


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
        raise ValueError(f"unknown reward rule {rule!r}; choose one of {', '.join(RULES)}")
    for kind in RULES[rule]:
        rows = [r for r in rewards if r.kind == kind]
        if rows:
            return rows[-1]
    return None
