"""The no-model baseline every judge must beat: token F1 between the task and the actions."""

from __future__ import annotations

from daemon.core.store import Episode, Step

from .render import describe_action, observation_of
from .text import token_f1


def score(episode: Episode, steps: list[Step]) -> float:
    actions = " ".join(describe_action(s, observation_of(s)) for s in steps)
    return token_f1(actions, episode.task)
