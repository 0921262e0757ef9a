"""Everyday web skills, generated: pages with every kind of control under changing labels,
layouts and distractors (pages.py), and tasks phrased the many ways people ask for them
(templates.py), each with a scripted solution and a ground truth read from the page's recorded
state. They teach the starting adapter to type, choose, tick and press before a user's first
task; MiniWoB++ and the bundled sites stay the measurements. Seeds split train/test by the
project's rule (splits.py), and the `HELD_OUT` templates are never trained on.

Served on 127.0.0.1 like the sites: ``/index.html?template=T&seed=N`` renders the page
of ``/api/skill?template=T&seed=N``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..sites import Sites
from ..static import serve_directory
from .templates import HELD_OUT, SKILLS, SkillTemplate

__all__ = ["HELD_OUT", "SKILLS", "SkillTemplate", "serve_skills", "skills_benchmark"]

WWW = Path(__file__).with_name("www")


@contextlib.contextmanager
def serve_skills(port: int = 0) -> Iterator[str]:
    """Serve the skills pages on `port` (0: a free one); yields the base URL."""
    api = {"/api/skill": lambda q: SKILLS[q["template"]].page(int(q["seed"])).to_json()}
    with serve_directory(WWW, api, port) as url:
        yield url


def skills_benchmark() -> Sites:
    """The skills templates as a task source for the evaluation runner."""
    return Sites("skills", SKILLS, serve_skills)
