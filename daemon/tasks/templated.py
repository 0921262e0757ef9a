"""The words a templated task source gave one of its episodes, rebuilt from its template and
seed: the bundled sites and the skills pages draw a task's text from (template, seed) alone, so
what the store masked in it (a password the task asked for) is known again without the store
ever keeping it. MiniWoB++ pages draw their own utterance: not rebuilt.
"""

from __future__ import annotations

import re

from .sites import TEMPLATES
from .skills import SKILLS


def task_text(benchmark: str, task: str, seed: int) -> str | None:
    """The task text `benchmark` gave `task` for `seed`; None for a source or a template this
    version does not have."""
    templates = {"sites": TEMPLATES, "skills": SKILLS}.get(benchmark, {})
    return templates[task].task(seed).task if task in templates else None


def unmasked(masked: str, original: str, mask: str) -> str | None:
    """The one secret that `mask` stands for in `masked`, a copy of `original` with it masked;
    None where `masked` is no such copy or its masks stand for different texts."""
    parts = [re.escape(p) for p in masked.split(mask)]
    if len(parts) < 2:
        return None
    found = re.fullmatch("(.+?)".join(parts), original)
    secrets = set(found.groups()) if found else set()
    return secrets.pop() if len(secrets) == 1 else None
