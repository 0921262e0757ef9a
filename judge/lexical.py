"""Model-free text matches between the task and what the agent did.

`score` is the baseline every judge must beat: token F1 between the task and the actions.
`arguments` asks the narrower question a wrong attempt usually fails: did the actions name what
*this* task asks for ("No" in `Click on the "No" button.`, "abc" in `Enter "abc" into the box`),
rather than the template's words every attempt repeats?
"""

from __future__ import annotations

from daemon.core.store import Episode, Step

from .render import describe_action, observation_of
from .text import normalize, token_f1

MIN_TEMPLATE_TASKS = 3      # fewer other tasks of the template: every word of the task counts


def actions_text(steps: list[Step]) -> str:
    return " ".join(describe_action(s, observation_of(s)) for s in steps)


def score(episode: Episode, steps: list[Step]) -> float:
    return token_f1(actions_text(steps), episode.task)


def arguments(episode: Episode, steps: list[Step], template_tasks: list[str]) -> float:
    """How much of what the task asks for the actions name, against what they typed or chose
    that the template's other tasks ask for instead: the weight of the task's words the actions
    name, over the weight of the task's words plus that of the *foreign* words — words typed or
    chosen that this task lacks and another task of its template holds (`Lagos` chosen where
    this task says `Paris`). Labels clicked are never foreign: the page's own words ("Add to
    cart") are often another task's.

    A word weighs how rare it is among `template_tasks` (the other tasks of its template: 1 −
    the share of them that contain it); with fewer than MIN_TEMPLATE_TASKS of them every word
    of the task weighs 1 and none is foreign. Only steps that succeeded name anything (a failed
    `select "Paris"` chose nothing). 1.0 when no word weighs anything: the task asks for
    nothing an attempt could get wrong by name."""
    words = set(normalize(episode.task))
    others = [set(normalize(t)) for t in template_tasks]
    if len(others) < MIN_TEMPLATE_TASKS:
        others = []

    def weight(word: str) -> float:
        return 1 - sum(word in o for o in others) / len(others) if others else 1.0
    done = [s for s in steps if s.ok]
    named = set(normalize(actions_text(done)))
    typed = set(normalize(" ".join(str(v) for s in done for k, v in (s.action or {}).items()
                                   if k in ("text", "option"))))
    foreign = {w for w in typed - words if any(w in o for o in others)}
    total = sum(map(weight, words)) + sum(map(weight, foreign))
    if total == 0:
        return 1.0
    return sum(map(weight, words & named)) / total
