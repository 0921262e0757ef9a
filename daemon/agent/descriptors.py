"""Element descriptors: how the target of a recorded or executed action is found again on a
fresh load of the page, where element ids differ.

A descriptor holds what the observation says of the element — role, accessible name, tag,
input type — and `nth`, its rank among the page's elements with the same role, tag and name;
the content script adds its visible text, a short structural path and a nearby label, which
`nightloop episodes show` displays.

Matching (`find`): an element matches when role, tag and normalised name agree (a renamed
element is not found: the name is what the user pointed at). One match is the answer; among
several, the one at the same `nth`. A descriptor rebound to a new task's values (values.py)
says which of them its name holds (`holds`); where no name matches whole — the rest of the name
was the old page's own, a message's subject beside its sender — the first element of the same
kind whose name holds them all is the answer (so "archive every message from X" works through
X's messages from the top).
"""

from __future__ import annotations

from daemon.core.observation import Element, Observation

KEYS = ("role", "name", "tag", "type")


def normalized(text: str | None) -> str:
    """`text` as names are compared: lower case, runs of whitespace as one space."""
    return " ".join((text or "").lower().split())


def _same(element: Element, descriptor: dict) -> bool:
    return (element.role == descriptor.get("role") and element.tag == descriptor.get("tag")
            and normalized(element.name) == normalized(descriptor.get("name")))


def describe(obs: Observation, element_id: int, extra: dict | None = None) -> dict | None:
    """The descriptor of element `element_id` of `obs` (None if it is not there), with the
    content script's `extra` (text, path, label) merged in."""
    element = obs.element(element_id)
    if element is None:
        return None
    descriptor = {k: getattr(element, k) for k in KEYS if getattr(element, k) is not None}
    twins = [e.id for e in obs.elements if _same(e, descriptor)]
    descriptor["nth"] = twins.index(element_id)
    return {**descriptor, **{k: v for k, v in (extra or {}).items() if v}}


def find(obs: Observation, descriptor: dict) -> Element | None:
    """The element of `obs` that `descriptor` names, or None; see the module docstring."""
    matches = [e for e in obs.elements if _same(e, descriptor)]
    if not matches and descriptor.get("holds"):
        return next((e for e in obs.elements if _same(e, {**descriptor, "name": e.name}) and
                     all(normalized(v) in normalized(e.name) for v in descriptor["holds"])), None)
    if len(matches) <= 1:
        return matches[0] if matches else None
    nth = descriptor.get("nth", 0)
    return matches[nth] if nth < len(matches) else None


def label(descriptor: dict | None) -> str:
    """`button "Send"` — how people read a descriptor."""
    if not descriptor:
        return "(no element)"
    return f'{descriptor.get("role", "?")} "{descriptor.get("name", "")}"'


def in_words(action: dict | None, target: dict | None = None) -> str:
    """An action as a person says it, its element by `target`'s label where there is one:
    `type "Ada" into textbox "Name"`, `click button "Send"`, `open https://…`."""
    if not action:
        return "(no action)"
    name, args = action.get("action"), action
    element = label(target) if target else f"[{args['id']}]" if "id" in args else ""
    text = {
        "click": f"click {element}",
        "fill": f'type "{args.get("text", "")}" into {element}',
        "select_option": f'choose "{args.get("option", "")}" in {element}',
        "press": f"press {args.get('key')}" + (f" on {element}" if element else ""),
        "scroll": f"scroll to {element}" if element else f"scroll {args.get('direction', 'down')}",
        "hover": f"point at {element}",
        "goto": f"open {args.get('url')}",
        "go_back": "go back",
        "wait": f"wait {args.get('seconds', 0):g} s",
        "answer": f'answer "{args.get("text", "")}"',
        "done": "say the task is done",
        "give_up": "give up" + (f": {args['reason']}" if args.get("reason") else ""),
    }
    return text.get(name, str(name))
