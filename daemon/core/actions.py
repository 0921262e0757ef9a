"""The action space: one table that the validator, the prompt text, the JSON schema and the
extension all follow.

An action on the wire is a flat JSON object: ``{"action": "fill", "id": 4, "text": "Ada"}``.
Where it runs is part of its spec: ``page`` actions go to the content script, ``tab`` actions to
the service worker, ``episode`` actions end the episode (or pause) in the daemon itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal
from urllib.parse import urlsplit

from .observation import Element, Observation
from .wire import InvalidMessage

Runs = Literal["page", "tab", "episode"]
Target = Literal["any", "clickable", "editable", "select", "focusable"]
MAX_STRING = 300        # characters in any string argument (text, url, answer...)

# Which elements of a page an id parameter may name, by its `target` (the policy's grammar
# offers only these; headings and images are context, never targets).
TARGETS: dict[str, Callable[[Element], bool]] = {
    "any": lambda e: True,
    "clickable": lambda e: not e.context and not e.disabled,
    "editable": lambda e: bool(e.editable),
    "select": lambda e: e.tag == "select" and not e.disabled,
    "focusable": lambda e: not e.context and not e.disabled,
}


@dataclass(frozen=True)
class Param:
    type: Literal["id", "string", "url", "number", "enum"]
    doc: str
    required: bool = True
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    target: Target = "any"              # id parameters: the elements it may name (TARGETS)


@dataclass(frozen=True)
class ActionSpec:
    name: str
    doc: str
    runs: Runs
    params: dict[str, Param] = field(default_factory=dict)

    @property
    def ends_episode(self) -> bool:
        return self.name in ("answer", "done", "give_up")


def element(target: Target, doc: str = "the [id] of an element in the current observation",
            required: bool = True) -> Param:
    return Param("id", doc, required, target=target)


ACTIONS: dict[str, ActionSpec] = {spec.name: spec for spec in [
    ActionSpec("click", "Click an element.", "page", {"id": element("clickable")}),
    ActionSpec("fill", "Replace the text of an input, textarea or editable element.", "page",
               {"id": element("editable"), "text": Param("string", "the new text")}),
    ActionSpec("select_option", "Choose an option of a select element by its text.", "page",
               {"id": element("select"),
                "option": Param("string", "the option's text or value")}),
    ActionSpec("press", "Press a key (Enter, Tab, Escape, ArrowDown...) on the focused element "
               "or on element id.", "page",
               {"key": Param("string", "the key name"),
                "id": element("focusable", "the element to press it on", required=False)}),
    ActionSpec("scroll", "Scroll the page up or down, or bring element id into view.", "page",
               {"direction": Param("enum", "which way", required=False, choices=("up", "down")),
                "id": element("any", "an element to scroll into view", required=False)}),
    ActionSpec("hover", "Move the pointer over an element.", "page", {"id": element("clickable")}),
    ActionSpec("goto", "Open a URL in the agent's tab.", "tab",
               {"url": Param("url", "an http(s) URL")}),
    ActionSpec("go_back", "Go back to the previous page.", "tab"),
    ActionSpec("wait", "Wait for the page to change.", "episode",
               {"seconds": Param("number", "how long", minimum=0, maximum=30)}),
    ActionSpec("answer", "Finish the task with an answer.", "episode",
               {"text": Param("string", "the answer")}),
    ActionSpec("done", "Finish: the task is complete.", "episode"),
    ActionSpec("give_up", "Finish: the task cannot be done.", "episode",
               {"reason": Param("string", "why not", required=False)}),
]}


@dataclass(frozen=True)
class Action:
    """A validated action: its name and its arguments (already of the right types)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ActionSpec:
        return ACTIONS[self.name]

    @property
    def element_id(self) -> int | None:
        return self.args.get("id")

    def to_json(self) -> dict[str, Any]:
        return {"action": self.name, **self.args}

    def describe(self) -> str:
        """One short line for logs and progress, e.g. ``fill [4] "Ada"``."""
        parts = [self.name]
        for key, value in self.args.items():
            parts.append(f"[{value}]" if key == "id" else
                         f"{value!r}" if isinstance(value, str) else str(value))
        return " ".join(parts)

    @classmethod
    def parse(cls, data: Any) -> Action:
        """Validate a JSON action against ACTIONS; raise InvalidMessage naming the problem."""
        if not isinstance(data, dict):
            raise InvalidMessage(f"an action must be a JSON object, got {type(data).__name__}")
        name = data.get("action")
        if name not in ACTIONS:
            raise InvalidMessage(f"unknown action {name!r}; expected one of {', '.join(ACTIONS)}")
        spec = ACTIONS[name]
        extra = set(data) - {"action"} - set(spec.params)
        if extra:
            raise InvalidMessage(f"{name} takes no argument {', '.join(sorted(extra))}")
        args = {}
        for key, param in spec.params.items():
            if key not in data or data[key] is None:
                if param.required:
                    raise InvalidMessage(f"{name} needs the argument {key!r} ({param.doc})")
                continue
            args[key] = _check_param(name, key, param, data[key])
        return cls(name, args)


def _check_param(action: str, key: str, param: Param, value: Any) -> Any:
    where = f"{action}.{key}"
    if param.type == "id":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidMessage(f"{where} must be an element id (a non-negative integer)")
        return value
    if param.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            raise InvalidMessage(f"{where} must be a finite number")
        if param.minimum is not None and value < param.minimum or \
                param.maximum is not None and value > param.maximum:
            raise InvalidMessage(f"{where} must be between {param.minimum} and {param.maximum}")
        return value
    if not isinstance(value, str):
        raise InvalidMessage(f"{where} must be a string")
    if len(value) > MAX_STRING:
        raise InvalidMessage(f"{where} is longer than {MAX_STRING} characters")
    if param.type == "enum" and value not in param.choices:
        raise InvalidMessage(f"{where} must be one of {', '.join(param.choices)}")
    if param.type == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidMessage(f"{where} must be an http(s) URL, got {value[:80]!r}")
    return value


Blocked = frozenset[tuple[str, int | None]]       # (action name, element id or None)


def json_schema(page: Observation | None = None, blocked: Blocked = frozenset(),
                urls: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12 subset) accepting exactly the valid actions.

    With `page`, every id is restricted to the page's elements its parameter may target
    (`Param.target`): the policy's grammar cannot name an element that is not there, click a
    heading or fill a button. An action whose required id has no element to name is left out.
    `blocked` pairs take an element out of one action's choices (``(name, None)``: the action
    itself), e.g. an action repeated on a page it did not change. With `urls`, a URL
    parameter may be only one of them (none: `goto` is not offered).
    """
    variants = []
    for spec in ACTIONS.values():
        if (spec.name, None) in blocked:
            continue
        props: dict[str, Any] = {"action": {"const": spec.name}}
        for key, param in spec.params.items():
            if param.type == "id" and page is not None:
                ids = sorted({e.id for e in page.elements if TARGETS[param.target](e)}
                             - {i for name, i in blocked if name == spec.name})
                if ids:
                    props[key] = {"enum": ids}
                elif param.required:
                    break               # nothing this action could act on
                # else: an optional id with nothing to name is left out
            elif param.type == "id":
                props[key] = {"type": "integer", "minimum": 0}
            elif param.type == "number":
                props[key] = {"type": "number", "minimum": param.minimum,
                              "maximum": param.maximum}
            elif param.type == "enum":
                props[key] = {"enum": list(param.choices)}
            elif param.type == "url" and urls is not None:
                if not urls:
                    break
                props[key] = {"enum": list(urls)}
            else:
                props[key] = {"type": "string", "maxLength": MAX_STRING}
        else:
            required = ["action", *(k for k, p in spec.params.items() if p.required)]
            variants.append({"type": "object", "properties": props, "required": required,
                             "additionalProperties": False})
    return {"oneOf": variants}


def violation(action: Action, schema: dict[str, Any]) -> str | None:
    """Why a parsed `action` is not one `json_schema` allows (its variants' consts and enums),
    None when it is: for answers no grammar constrained, e.g. a server's."""
    variant = next((v for v in schema["oneOf"]
                    if v["properties"]["action"]["const"] == action.name), None)
    if variant is None:
        return f"{action.name} is not possible on this page now"
    for key, value in action.args.items():
        rule = variant["properties"].get(key)
        if rule is None:
            return f"{action.name} takes no {key} on this page"
        if "enum" in rule and value not in rule["enum"]:
            allowed = ", ".join(map(str, rule["enum"][:30]))
            return f"{action.name}.{key} {value!r} is not one of {allowed}"
    return None


_URL = re.compile(r"""https?://[^\s"'<>]+""")


def urls_in(text: str) -> tuple[str, ...]:
    """The http(s) URLs written in `text`, in order, without trailing punctuation."""
    found = (u.rstrip(".,;:!?)]}") for u in _URL.findall(text))
    return tuple(dict.fromkeys(u for u in found if len(u) <= MAX_STRING))


def describe_actions() -> str:
    """The action space as prompt/docs text, one line per action."""
    lines = []
    for spec in ACTIONS.values():
        args = ", ".join(f'"{k}": {_placeholder(p)}' + ("" if p.required else " (optional)")
                         for k, p in spec.params.items())
        example = '{"action": "%s"%s}' % (spec.name, ", " + args if args else "")
        lines.append(f"- {example}: {spec.doc}")
    return "\n".join(lines)


def _placeholder(param: Param) -> str:
    if param.type == "enum":
        return "|".join(f'"{c}"' for c in param.choices)
    return f"<{param.type}>"
