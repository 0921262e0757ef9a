"""Hindsight relabelling: an episode that did something coherent, but not what was asked,
becomes a correct example of the instruction it did fulfil.

MiniWoB++ (rule-based, from the action log and the page's verdict): for a task whose
instruction names the one value the agent chooses — the button or link to click, the text to
type — an episode the page ended as a failure, whose last action chose another value (clicked
"Cancel" where "No" was asked; typed "abc" where "Cristin" was asked, then Submit), is a success
of the same template with that value: ``Click on the "Cancel" button.`` Its steps become SFT
samples for the relabelled instruction, rendered by the policy's own prompt builder, marked
`relabelled` (never in a GRPO group). Other MiniWoB++ tasks are not relabelled.

The user's own tasks (no ground truth): a practice episode's successful actions, written as the
instructions the scripted policy reads (``fill "Name" with "Ada"; click "Send"``), are an
instruction the episode fulfilled by construction (`as_instructions`); an episode with an action
that cannot be written so (no element name, a masked secret, a quote in a value) is not used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.core.observation import MASK
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


def as_instructions(steps: list[Step]) -> str | None:
    """The episode's successful actions as scripted-policy instructions, or None when one of
    them cannot be written so (or there are none)."""
    lines = []
    for step in steps:
        if not step.ok or not step.action:
            continue
        line = _instruction(step.action, (step.target or {}).get("name"))
        if line is None:
            return None
        if line:
            lines.append(line)
    return "; ".join(lines) or None


def _instruction(action: dict, name: str | None) -> str | None:
    """One action in the scripted policy's words; "" for one that needs none (done, wait)."""
    kind, values = action["action"], [v for k, v in action.items() if k not in ("action", "id")]
    if any(isinstance(v, str) and ('"' in v or MASK in v) for v in [*values, name or ""]):
        return None
    quoted = f'"{name.strip()}"' if name and name.strip() else None
    if kind in ("click", "hover"):
        return f"{kind} {quoted}" if quoted else None
    if kind == "fill":
        return f'fill {quoted} with "{action["text"]}"' if quoted else None
    if kind == "select_option":
        return f'select "{action["option"]}" in {quoted}' if quoted else None
    if kind == "press":
        if "id" not in action:
            return f"press {action['key']}"
        return f"press {action['key']} on {quoted}" if quoted else None
    if kind == "scroll":
        if "id" in action:
            return f"scroll to {quoted}" if quoted else None
        return f"scroll {action.get('direction', 'down')}"
    if kind == "goto":
        return f"goto {action['url']}"
    if kind == "go_back":
        return "go back"
    if kind == "answer":
        return f"answer {action['text']}"
    if kind in ("done", "wait"):
        return ""
    return None                         # give_up: nothing fulfilled
