"""Rule-based progress rewards: step-level credit from what the store recorded, no model.

Every rule and its weight is in RULES, the one place to change them. A step earns the sum of the
weights of the rules it meets; the episode's progress is the mean step score plus its ending
bonus, clipped to [-1, 1]. `score` returns the total and every part, so the reward row can keep
them and be recomputed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from daemon.agent.policy import PastStep
from daemon.core.store import Episode, Step

# name → weight. Step rules first, then the ending rules (applied once per episode).
RULES: dict[str, float] = {
    "executed": 0.3,            # a page action ran without error
    "page_changed": 0.3,        # the observation after it differs from the one before
    "copied_from_task": 0.0,    # a fill typing text the task contains: not credited by itself
                                # (neither executed nor page_changed counts for it)
    "repeated": -0.5,           # the same action on the same page state as an earlier step
                                # (its element by label, the state blind to ids and order)
    "invalid": -0.5,            # rejected before the browser (no action / unknown element)
    "ended_by_agent": 0.4,      # the agent ended the episode (done / answer) after changing
                                # the page
    "ended_at_once": -0.3,      # the agent ended it without ever changing the page
    "gave_up": -0.2,            # the agent gave up
    "step_limit": -0.4,         # the episode ran out of steps
}
# How a step is read: 2 since page states are `Observation.state_key` (blind to ids and order)
# and repeats are `PastStep.doing` (an element by its label), 2026-12-01.
REVISION = 2
# The rules' identity in a reward row: a change of any weight or of the reading gives another.
VERSION = hashlib.sha256(json.dumps([RULES, REVISION], sort_keys=True).encode()).hexdigest()[:12]
# Actions that end or pause an episode are judged by the ending rules, not as page steps.
NOT_PAGE_STEPS = ("done", "answer", "give_up", "wait")


@dataclass(frozen=True)
class Progress:
    value: float                        # in [-1, 1]
    counts: dict[str, int]              # how often each rule fired
    weights: dict[str, float]           # RULES as used

    def details(self) -> dict:
        return {"counts": self.counts, "weights": self.weights}


def _copied(step: Step, task: str) -> bool:
    text = (step.action or {}).get("text")
    return (step.action or {}).get("action") == "fill" and bool(text) and \
        text.strip().lower() in task.lower()


def score(episode: Episode, steps: list[Step]) -> Progress:
    """Mean credit of the page steps (0 without any) plus the ending's: stopping at once earns
    nothing, ending without having changed the page costs, typing the task's own words earns
    nothing by itself. An episode the page ended (a benchmark's own end) gets no ending rule."""
    counts = dict.fromkeys(RULES, 0)
    step_total, page_steps = 0.0, 0
    read = [PastStep.stored(step) for step in steps]
    seen: set[tuple[str | None, str | None]] = set()
    for i, step in enumerate(steps):
        if (step.action or {}).get("action") in NOT_PAGE_STEPS and not step.invalid:
            continue
        page_steps += 1
        fired = []
        if step.invalid:
            fired.append("invalid")
        elif _copied(step, episode.task):
            fired.append("copied_from_task")
        else:
            if step.ok:
                fired.append("executed")
            if i + 1 < len(steps) and read[i + 1].seen != read[i].seen:
                fired.append("page_changed")
        key = (read[i].seen, read[i].doing)
        if key in seen:
            fired.append("repeated")
        seen.add(key)
        for rule in fired:
            counts[rule] += 1
        step_total += sum(RULES[r] for r in fired)
    value = step_total / page_steps if page_steps else 0.0
    by_agent = bool(steps) and (steps[-1].action or {}).get("action") in ("done", "answer")
    ending = {"gave_up": "gave_up", "step_limit": "step_limit"}.get(episode.status)
    if episode.status == "done" and by_agent:      # not when the page ended it (a benchmark)
        ending = "ended_by_agent" if counts["page_changed"] else "ended_at_once"
    if ending:
        counts[ending] += 1
        value += RULES[ending]
    return Progress(max(-1.0, min(1.0, round(value, 4))), counts, dict(RULES))
