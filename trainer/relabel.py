"""Hindsight relabelling: an episode that did something coherent, but not what was asked,
becomes a correct example of the instruction it did fulfil.

Benchmarks with ground truth (MiniWoB++, the bundled sites, the skills pages), any template,
by value substitution (daemon/agent/values.py): a success of the same task (any seed) shows
which of its actions carry the values its instruction names (the text typed, the option
chosen, the name clicked) and cuts its template; a failure the page ended (``done``) whose
actions take the same steps on the same elements, but with other values, fulfilled the failed
task's instruction with those values put in (typed "abc" where "Cristin" was asked, then
Submit: ``Enter "abc" into the text field and press Submit.``). Its steps become SFT samples
for the relabelled instruction, rendered by the policy's own prompt builder, marked
`relabelled` (never in a GRPO group).

The user's own tasks (no ground truth): a practice episode's successful actions, written as the
instructions the scripted policy reads (``fill "Name" with "Ada"; click "Send"``), are an
instruction the episode fulfilled by construction (`as_instructions`); an episode with an action
that cannot be written so (no element name, a masked secret, a quote in a value) is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.agent.values import Unmatched, template_of, values_of
from daemon.core.observation import MASK
from daemon.core.store import Episode, Reward, Step

Example = tuple[str, list[Step]]        # a success: its task and its steps
_VALUE_ARGS = ("text", "option")


@dataclass(frozen=True)
class Relabelled:
    task: str                           # the instruction the episode did fulfil
    done_by: str                        # the values it chose instead of those asked for


def relabel(episode: Episode, steps: list[Step], rewards: list[Reward],
            successes: list[Example]) -> Relabelled | None:
    """The instruction a failed benchmark episode fulfilled instead, by the first of
    `successes` (of the same task) whose steps it follows with other values; None when it
    does not qualify (see the module docstring)."""
    truth = next((r for r in reversed(rewards) if r.kind == "ground_truth"), None)
    details = (truth.details or {}) if truth else {}
    if truth is None or truth.value > 0 or not details.get("done"):
        return None
    acted = [s for s in steps if s.ok and s.action]
    for task, example in successes:
        found = _substituted(episode.task, acted, task, [s for s in example if s.ok and s.action])
        if found:
            return found
    return None


def _substituted(asked: str, acted: list[Step], task: str, example: list[Step]
                 ) -> Relabelled | None:
    """`asked` with the values `acted` chose where `example` (a success of `task`) chose its
    own, when `acted` takes `example`'s steps on the same elements; else None."""
    values = values_of(example, task)
    if not values or len(acted) != len(example):
        return None
    template = template_of(task, values)
    try:
        wanted = template.bind(asked)            # the example's value → the asked one
    except Unmatched:
        return None
    chosen: dict[str, str] = {}
    for mine, theirs in zip(acted, example):
        pairs = _choices(mine, theirs, set(values))
        if pairs is None:
            return None
        for value, done in pairs:
            if chosen.setdefault(value, done) != done:
                return None
    done = {v: chosen.get(v, wanted[v]) for v in template.values}
    if any('"' in v or MASK in v or not v.strip() for v in done.values()) or \
            all(done[v] == wanted[v] for v in done):
        return None
    return Relabelled(template.fill(done), ", ".join(
        dict.fromkeys(done[v] for v in done if done[v] != wanted[v])))


def _choices(mine: Step, theirs: Step, values: set[str]) -> list[tuple[str, str]] | None:
    """(the example's value, the one `mine` chose in its place) for one step; None when the
    two steps differ other than in their values (another action, another element)."""
    a, b = mine.action or {}, theirs.action or {}
    if a.get("action") != b.get("action") or set(a) != set(b):
        return None
    pairs = []
    for key in _VALUE_ARGS:
        if key in b and b[key].strip() in values:
            pairs.append((b[key].strip(), str(a[key]).strip()))
        elif a.get(key) != b.get(key):
            return None
    name, named = (((t.target or {}).get("name") or "").strip() for t in (mine, theirs))
    if b.get("action") == "click" and named in values:
        pairs.append((named, name))
    elif name != named or (not named and a.get("id") != b.get("id")):
        return None
    return pairs


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
