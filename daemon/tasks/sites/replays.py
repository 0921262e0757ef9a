"""Your demonstrations replayed with the values of the bundled sites' tasks (no model).

A demonstration of one seed's task, replayed with another seed's values (agent/values.py) on a
fresh load, either fulfils that task — the site's ground truth says so — or not: a success is a
verified example of a task shown once, with other values on another page, for the night's
training (the cycle practises this way before the model practises).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from daemon.agent.replay import DemonstrationReplay, fitting
from daemon.core.store import Episode, Step

from .. import splits
from ..evaluation import EpisodeResult, EvalPlan, evaluate
from . import Sites
from .templates import TEMPLATES

Recorded = list[tuple[Episode, list[Step]]]


def demonstrated(recorded: Recorded, seeds: int = 10) -> tuple[str, ...]:
    """The templates whose task on one of the first `seeds` train seeds a `recorded`
    demonstration fits: the sites a night practises unless told otherwise."""
    return tuple(fitting_seeds(recorded, list(TEMPLATES), splits.seeds("train", seeds)))


def fitting_seeds(recorded: Recorded, templates: list[str],
                  seeds: list[int]) -> dict[str, list[int]]:
    """Per template, the seeds whose task one of the `recorded` demonstrations fits."""
    fits = {name: [s for s in seeds if fitting(recorded, TEMPLATES[name].task(s).task)]
            for name in templates}
    return {name: chosen for name, chosen in fits.items() if chosen}


async def replay_with_values(recorded: Recorded, fits: dict[str, list[int]], *, db: Path,
                             max_steps: int, screenshots: bool = False,
                             on_result: Callable[[EpisodeResult], None] = lambda r: None
                             ) -> list[EpisodeResult]:
    """Each task of `fits` (template → seeds) done by replaying the demonstration it fits with
    its values, as practice (source ``practice``, the site's ground truth stored)."""
    results = []
    for name, seeds in fits.items():
        results += await evaluate(EvalPlan([name], seeds, max_steps, source="practice",
                                           benchmark=Sites(), screenshots=screenshots),
                                  policy=DemonstrationReplay(recorded), db=db,
                                  on_result=on_result)
    return results
