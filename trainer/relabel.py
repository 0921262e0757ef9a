"""Hindsight relabelling: an episode that did something coherent, but not what was asked,
becomes a correct example of the instruction it did fulfil.

MiniWoB++ (rule-based, from the action log and the page's verdict): for a task whose
instruction names the one value the agent chooses — the button or link to click, the text to
type — an episode the page ended as a failure, whose last action chose another value (clicked
"Cancel" where "No" was asked; typed "abc" where "Cristin" was asked, then Submit), is a success
of the same template with that value: ``Click on the "Cancel" button.`` Its steps become SFT
samples for the relabelled instruction, rendered by the policy's own prompt builder, marked
`relabelled` (never in a GRPO group). Other tasks, and the user's own tasks, are not relabelled
yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.core.store import Episode, Reward, Step

# MiniWoB++ task → its instruction, with the chosen value as the group `v`, and what chooses it:
# "click" (the last action clicked an element named v) or "fill" (the last fill typed v, then a
# click on Submit ended the episode).
RULES: dict[str, tuple[re.Pattern, str]] = {
    "click-button": (re.compile(r'^Click on the "(?P<v>[^"]+)" button\.$'), "click"),
    "click-link": (re.compile(r'^Click on the link "(?P<v>[^"]+)"\.$'), "click"),
    "click-dialog-2": (re.compile(r'^Click the button in the dialog box labeled '
                                  r'"(?P<v>[^"]+)"\.$'), "click"),
    "enter-text": (re.compile(r'^Enter "(?P<v>[^"]+)" into the text field and press '
                              r'Submit\.$'), "fill"),
}


@dataclass(frozen=True)
class Relabelled:
    task: str                           # the instruction the episode did fulfil
    done_by: str                        # the value it chose instead of the one asked for


def relabel(episode: Episode, steps: list[Step], rewards: list[Reward]) -> Relabelled | None:
    """The instruction a failed MiniWoB++ episode fulfilled instead, or None (see the module
    docstring for which episodes qualify)."""
    truth = next((r for r in reversed(rewards) if r.kind == "ground_truth"), None)
    details = (truth.details or {}) if truth else {}
    if truth is None or truth.value > 0 or details.get("benchmark") != "miniwob" \
            or not details.get("done") or details.get("task") not in RULES:
        return None
    pattern, chooser = RULES[details["task"]]
    match = pattern.match(episode.task)
    acted = [s for s in steps if s.ok and s.action]
    if not match or not acted or acted[-1].action["action"] != "click":
        return None
    if chooser == "click":
        chosen = ((acted[-1].target or {}).get("name") or "").strip()
    else:
        fills = [s.action.get("text", "") for s in acted if s.action["action"] == "fill"]
        submitted = ((acted[-1].target or {}).get("name") or "").strip() == "Submit"
        chosen = fills[-1].strip() if fills and submitted else ""
    if not chosen or '"' in chosen or chosen == match["v"]:
        return None
    start, end = match.span("v")
    return Relabelled(episode.task[:start] + chosen + episode.task[end:], chosen)
