"""An episode as the judge reads it: what the agent did and what came of it, never what it was
asked.

The rendering holds, in order: the pages visited (title and URL), the actions with the labels of
the elements they touched and the text typed, the final answer if any, and the visible text that
appeared by the end. The task text is removed wherever the page repeats it (MiniWoB shows its
instruction on the page), since it would hand the judge the answer. Within `max_chars` the action
list is kept whole first; the page text is cut before it.
"""

from __future__ import annotations

import difflib

from daemon.core.observation import Observation
from daemon.core.store import Episode, Step

MAX_CHARS = 1500        # ~400-500 tokens for the shipped models' tokenizers
MAX_ACTIONS = 15


def observation_of(step: Step) -> Observation | None:
    return Observation.from_json(step.observation) if step.observation else None


def describe_action(step: Step, obs: Observation | None) -> str:
    """`click "Submit"`, `fill "Name" with "Ada"`, `answer "42"`: labels, not ids."""
    action = dict(step.action or {})
    name = action.pop("action", "(none)")
    target = obs.element(action.pop("id")) if obs and "id" in action else None
    parts = [name]
    if target is not None:
        parts.append(f'"{target.name}"' if target.name else f"a {target.role}")
    for key in ("text", "option", "key", "url", "direction", "reason"):
        if key in action:
            parts.append(("with " if key in ("text", "option") else "") + repr(action[key]))
    line = " ".join(parts)
    return line if step.ok else f"{line} (failed: {step.error})"


def render(episode: Episode, steps: list[Step], max_chars: int = MAX_CHARS) -> str:
    """The judge's view of `episode`; see the module docstring."""
    observations = [observation_of(s) for s in steps]
    pages: list[str] = []
    for obs in observations:
        if obs and (not pages or pages[-1] != f"{obs.title} ({obs.url})"):
            pages.append(f"{obs.title} ({obs.url})")
    actions = [describe_action(s, o) for s, o in zip(steps, observations)][:MAX_ACTIONS]
    lines = ["Pages visited:", *([f"- {p}" for p in pages] or ["- (none)"]),
             "Actions:", *([f"{i}. {a}" for i, a in enumerate(actions, 1)] or ["(none)"])]
    if episode.final_answer and episode.status == "done":
        lines.append(f"Final answer: {episode.final_answer}")
    head = "\n".join(lines)
    text = _new_text(observations, episode.task)
    room = max_chars - len(head) - len("\nPage text at the end: ")
    if text and room > 40:
        head += "\nPage text at the end: " + (text if len(text) <= room else text[:room - 1] + "…")
    return head[:max_chars]


def _new_text(observations: list[Observation | None], task: str) -> str:
    """The final page text, without the task and without the runs of words the first page
    already showed (a word-level diff)."""
    present = [o for o in observations if o]
    if not present:
        return ""
    last = present[-1].text.replace(task, " ").split()
    if len(present) == 1:
        return " ".join(last)
    first = present[0].text.replace(task, " ").split()
    matcher = difflib.SequenceMatcher(a=first, b=last, autojunk=False)
    return " ".join(w for op, _, _, j1, j2 in matcher.get_opcodes() if op in ("insert", "replace")
                    for w in last[j1:j2])
