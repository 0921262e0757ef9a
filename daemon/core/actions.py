"""The action space: one table that the validator, the prompt text, the JSON schema and the
extension all follow.

An action on the wire is a flat JSON object: ``{"action": "fill", "id": 4, "text": "Ada"}``.
Where it runs is part of its spec: ``page`` actions go to the content script, ``tab`` actions to
the service worker, ``episode`` actions end the episode (or pause) in the daemon itself.

The policy writes an action on an element with the element's label first (`written`):
``{"action": "fill", "target": "Your name", "id": 4, "text": "Ada"}``. Its grammar offers one
variant per element, so the label it picks fixes the id: it chooses by the words a task shares
with the page, which stay the same from load to load where ids do not. ``target`` is not part of
the action (`Action.parse` reads past it).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal
from urllib.parse import urlsplit

from .errors import InvalidMessage
from .observation import Element, Observation

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
    typed: bool = False                 # text a user types: held to the task's spans (spans.py)
    chosen: bool = False                # one of the target element's own choices, where the
                                        # observation lists them all (Element.choices)


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
               {"id": element("editable"),
                "text": Param("string", "the new text", typed=True)}),
    ActionSpec("select_option", "Choose an option of a select element by its text.", "page",
               {"id": element("select"),
                "option": Param("string", "the option's text or value", chosen=True)}),
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
        extra = set(data) - {"action"} - set(spec.params) - ({"target"} if _id_key(spec) else set())
        if extra:
            raise InvalidMessage(f"{name} takes no argument {', '.join(sorted(extra))}")
        args = {}
        for key, param in spec.params.items():
            if key not in data or data[key] is None:
                if param.required:
                    raise InvalidMessage(f"{name} needs the argument {key!r} ({param.doc})")
                continue
            args[key] = _check_param(name, key, param, data[key])
        if not isinstance(data.get("target", ""), str):
            raise InvalidMessage(f"{name}.target must be a string (the element's label)")
        return cls(name, args)

    @classmethod
    def stored(cls, data: dict[str, Any]) -> Action:
        """An action as a store row holds it, not validated again: it was when it ran, and a
        rule tightened since (goto's URL, say) must not make old rows unreadable."""
        return cls(data["action"], {k: v for k, v in data.items() if k not in ("action", "target")})


def _id_key(spec: ActionSpec) -> str | None:
    """The parameter of `spec` that names an element, if any."""
    return next((k for k, p in spec.params.items() if p.type == "id"), None)


def written(action: Action, page: Observation | None) -> str:
    """`action` as the policy writes it (the form its grammar accepts): the label of the
    element it acts on, read from `page`, before the element's id."""
    data: dict[str, Any] = {"action": action.name}
    label = page.labels().get(action.element_id) if page else None
    if label is not None:
        data["target"] = label
    data.update(sorted(action.args.items(), key=lambda kv: kv[0] != "id"))
    return json.dumps(data, ensure_ascii=False)


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
                urls: tuple[str, ...] | None = None,
                texts: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12 subset) accepting exactly the valid actions, as the policy
    writes them (`written`).

    With `page`, an action on an element has one variant per element its parameter may target
    (`Param.target`), its label (`Observation.labels`: one element's) and id fixed: the policy's
    grammar cannot name an element that is not there, click a heading or fill a button, and the
    label it writes decides the id. An action whose required id has no element to name is left out.
    `blocked` pairs take an element out of one action's choices (``(name, None)``: the action
    itself), e.g. an action repeated on a page it did not change. With `urls`, a URL
    parameter may be only one of them (none: `goto` is not offered). With `texts` (not empty),
    text a user types (`fill`'s) may be only one of them (spans.py). A select's option may be
    only one of its own, where the page lists them all (`Element.choices`).
    """
    variants = []
    labels = page.labels() if page is not None else {}
    for spec in ACTIONS.values():
        if (spec.name, None) in blocked:
            continue
        rest: dict[str, Any] = {}
        required = ["action"]
        for key, param in spec.params.items():
            if param.type == "id":
                continue
            rule = _rule(param, urls, texts)
            if rule is None:
                break                   # a URL parameter with no URL it may name
            rest[key] = rule
            required += [key] if param.required else []
        else:
            variants += _variants(spec, page, labels, blocked, rest, required)
    return {"oneOf": variants}


def _rule(param: Param, urls: tuple[str, ...] | None,
          texts: tuple[str, ...] | None) -> dict[str, Any] | None:
    """The schema of a parameter that is not an element (None: nothing it may be)."""
    if param.type == "number":
        return {"type": "number", "minimum": param.minimum, "maximum": param.maximum}
    if param.type == "enum":
        return {"enum": list(param.choices)}
    if param.type == "url" and urls is not None:
        return {"enum": list(urls)} if urls else None
    if param.typed and texts:
        return {"enum": list(texts)}
    return {"type": "string", "maxLength": MAX_STRING}


def _variants(spec: ActionSpec, page: Observation | None, labels: dict[int, str],
              blocked: Blocked, rest: dict[str, Any],
              required: list[str]) -> list[dict[str, Any]]:
    """`spec`'s object schemas: one, or one per element it may act on, named by its label in
    `labels` (and one without an element where that is optional)."""
    def variant(element: dict[str, Any], needs: list[str]) -> dict[str, Any]:
        return {"type": "object", "properties": {"action": {"const": spec.name}, **element,
                                                 **rest},
                "required": ["action", *needs, *required[1:]], "additionalProperties": False}
    key = _id_key(spec)
    if key is None:
        return [variant({}, [])]
    param = spec.params[key]
    if page is None:
        return [variant({"target": {"type": "string", "maxLength": MAX_STRING},
                         key: {"type": "integer", "minimum": 0}},
                        [key] if param.required else [])]
    out = [] if param.required else [variant({}, [])]
    chosen = next((k for k, p in spec.params.items() if p.chosen), None)
    for e in page.elements:
        if TARGETS[param.target](e) and (spec.name, e.id) not in blocked:
            one = variant({"target": {"const": labels[e.id]}, key: {"const": e.id}},
                          ["target", key])
            if chosen and e.choices:
                one["properties"][chosen] = {"enum": e.choices}
            out.append(one)
    return out


def only(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """`schema` (`json_schema`'s) with only the variants of the action `name`."""
    return {"oneOf": [v for v in schema["oneOf"] if v["properties"]["action"]["const"] == name]}


def violation(action: Action, schema: dict[str, Any]) -> str | None:
    """Why a parsed `action` is not one `json_schema` allows (its variants' consts and enums),
    None when it is: for answers no grammar constrained, e.g. a server's."""
    variants = only(schema, action.name)["oneOf"]
    if not variants:
        return f"{action.name} is not possible on this page now"
    for key, value in action.args.items():
        rules = [v["properties"][key] for v in variants if key in v["properties"]]
        if not rules:
            return f"{action.name} takes no {key} on this page"
        if not all("enum" in r or "const" in r for r in rules):
            continue                    # a type the parse has checked
        allowed = [x for r in rules for x in r.get("enum", [r.get("const")])]
        if value not in allowed:
            shown = ", ".join(map(str, allowed[:30]))
            return f"{action.name}.{key} {value!r} is not one of {shown}"
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
        params = sorted(spec.params.items(), key=lambda kv: kv[1].type != "id")
        args = ", ".join(('"target": "<its text>", ' if p.type == "id" else "")
                         + f'"{k}": {_placeholder(p)}' + ("" if p.required else " (optional)")
                         for k, p in params)
        example = '{"action": "%s"%s}' % (spec.name, ", " + args if args else "")
        lines.append(f"- {example}: {spec.doc}")
    return "\n".join(lines)


def _placeholder(param: Param) -> str:
    if param.type == "enum":
        return "|".join(f'"{c}"' for c in param.choices)
    return f"<{param.type}>"
