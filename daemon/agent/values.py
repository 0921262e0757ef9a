"""A recorded episode's values, and the same episode for a new task with other values.

An episode's *values* are what it typed, what it selected and what its clicked elements are
called, wherever they also appear in its task text; cut out of the task, they leave its
*template* ("Reply to {} about {} with {}"). A new task that fits the template gives each value
its new text (`Template.bind`), and `rebind` rewrites the recorded steps with them: typed text,
chosen options and the names by which targets are found again. So a demonstration of "Reply to
Ada about Lunch with Yes" replays "Reply to Bob about Rota with No" on Bob's message.

A clicked element's name counts as a value whole, or by its parts (split at " — ", ":", "·", ...)
and its tokens with a digit ("Choose 18:30" gives "18:30"), where they appear in the task; the
task's own first word never does (a "Reply" button in "Reply to ..." is not a value). A field
the person only clicked into, leaving a value the page already showed and the task names (1
passenger by default), counts as typing that value, so it can change too.

A field the task names ("Set your *city* to Lisbon") is a value too: rebound to another field's
word ("Set your *language* to Deutsch"), the step acts on the field of that name on the recorded
page, with the action it takes (an input's text, a select's option). A toggle's state words
("turn *on* "Dark mode"") fit either way in a template; the rebound click carries the state the
new task asks for (`wants_checked`), and the replay leaves a toggle already in it alone.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass

from daemon.core.errors import UsageError
from daemon.core.observation import Observation
from daemon.core.store import Step

from .descriptors import describe, normalized

_PARTS = re.compile(r"\s+[—–\-|·:]\s+|,\s+")
_TEXT_ARGS = ("text", "option")
_TARGET_TEXTS = ("name", "text", "label")
_FIELD_ACTIONS = ("fill", "select_option")
_STATE = r"(?:on|off)"                 # a toggle's state words, free in a template
# Where a new clause begins inside what would be a value: "Lima and turn on the newsletter",
# "Lima, then save", "Lima; tick Newsletter". A value the recorded task held without one never
# takes one: the clause would have no place in the replay.
_VERBS = ("add|book|change|check|choose|click|delete|disable|enable|enter|fill|go|leave|log|"
          "make|mark|open|pick|press|put|remove|reply|save|search|select|send|set|sign|submit|"
          "subscribe|switch|tick|turn|type|uncheck|unsubscribe|untick|write")
_CLAUSE = re.compile(rf"\s*(?:;|\.\s|(?:,\s*|\s+)(?:(?:and|then|also|plus)\s+)+(?:{_VERBS})\b|"
                     rf",\s*(?:{_VERBS})\b)", re.IGNORECASE)
_END = r"[\s.!]*$"                     # a task may end with a full stop, or without one


class Unmatched(UsageError):
    """The new task does not fit the recorded one's template; says which value is missing."""


def _occurs(value: str) -> re.Pattern[str]:
    """`value` as a whole (not inside a longer word or number), any case, any spacing."""
    body = r"\s+".join(re.escape(w) for w in value.split())
    return re.compile(rf"(?<![\w]){body}(?![\w])", re.IGNORECASE)


@dataclass(frozen=True)
class Template:
    pieces: tuple[str, ...]         # the task's text between its values (one more than values)
    values: tuple[str, ...]         # the recorded values, in the order the task says them

    def __str__(self) -> str:
        return "{}".join(self.pieces)

    def fill(self, values: dict[str, str]) -> str:
        """The task with each recorded value replaced by its text in `values`."""
        return self.pieces[0] + "".join(values.get(v, v) + piece
                                        for v, piece in zip(self.values, self.pieces[1:]))

    def bind(self, task: str) -> dict[str, str]:
        """Each recorded value's text in `task` (Unmatched, naming the first value whose
        surroundings `task` lacks)."""
        match = self._pattern(len(self.values), end=True).match(task.strip())
        if match is None:
            for k in range(1, len(self.values) + 1):
                if self._pattern(k, end=False).match(task.strip()) is None:
                    after = self.pieces[k].strip() or "the end"
                    raise Unmatched(f"the new task has no place for {self.values[k - 1]!r}: "
                                    f"the recorded task goes on with {after!r} after it")
            raise Unmatched(f"the new task does not fit the recorded task's template "
                            f"{str(self)!r}")
        bound: dict[str, str] = {}
        for old, new in zip(self.values, (" ".join(g.split()) for g in match.groups())):
            clause = _CLAUSE.search(new)
            if clause and not _CLAUSE.search(old):
                raise Unmatched(f"the new task asks for more than the recorded one: "
                                f"{new[clause.start():].strip(' ,;.')!r} has no place in it "
                                f"(after {new[:clause.start()]!r}, where it had {old!r})")
            if bound.setdefault(old, new) != new:
                raise Unmatched(f"{old!r} appears twice in the recorded task, with two "
                                f"different texts in the new one")
        return bound

    def _pattern(self, slots: int, *, end: bool) -> re.Pattern[str]:
        def literal(piece: str) -> str:
            words = (_STATE if w.lower() in ("on", "off") else re.escape(w)
                     for w in piece.split(" "))
            return r"\s+".join(words) if piece else ""
        pieces = list(self.pieces[:slots + 1])
        if end:
            pieces[-1] = pieces[-1].rstrip(" .!")
        body = literal(pieces[0].lstrip()) + "".join("(.+?)" + literal(p) for p in pieces[1:])
        return re.compile("^" + body + (_END if end else ""), re.IGNORECASE | re.DOTALL)


def values_of(steps: Iterable[Step], task: str) -> list[str]:
    """The episode's values that appear in its `task`, longest first (see the module
    docstring)."""
    found: list[str] = []
    fields: set[str] = set()
    first = task.split()[0].lower() if task.split() else ""
    for step in steps:
        action = step.action or {}
        candidates = [action[k] for k in _TEXT_ARGS if isinstance(action.get(k), str)]
        name = (step.target or {}).get("name")
        if name and action.get("action") == "click":
            candidates += [name, *_PARTS.split(name),
                           *(t for t in name.split() if any(c.isdigit() for c in t))]
        elif name and action.get("action") in _FIELD_ACTIONS and len(name) >= 3:
            candidates.append(name)                             # the field's own word
            fields.add(name.strip())
        for value in (c.strip() for c in candidates):
            if (len(value) > 1 or value.isdigit()) and value.lower() != first \
                    and value not in found \
                    and _occurs(value).search(task):
                found.append(value)
    return _apart(sorted(found, key=len, reverse=True), fields, task)


def _apart(values: list[str], fields: set[str], task: str) -> list[str]:
    """`values` less the field words that only a space parts from another value ("from
    {Porto}", "{3} {passengers}"): where two values touch, no template can tell where the
    first ends; such a word is the task's own."""
    while True:
        template = template_of(task, values)
        last = len(template.values) - 1
        touching = {v for i, v in enumerate(template.values) if v in fields and (
            (i > 0 and not template.pieces[i].strip()) or
            (i < last and not template.pieces[i + 1].strip()))}
        if not touching:
            return values
        values = [v for v in values if v not in touching]


def template_of(task: str, values: list[str]) -> Template:
    """`task` with `values` cut out (longest first, each occurrence, never overlapping)."""
    spans: list[tuple[int, int, str]] = []
    for value in sorted(values, key=len, reverse=True):
        for m in _occurs(value).finditer(task):
            if all(m.end() <= a or m.start() >= b for a, b, _ in spans):
                spans.append((m.start(), m.end(), value))
    spans.sort()
    pieces, at = [], 0
    for start, end, _ in spans:
        pieces.append(task[at:start])
        at = end
    pieces.append(task[at:])
    return Template(tuple(pieces), tuple(v for _, _, v in spans))


def rebind(steps: list[Step], task: str, new_task: str) -> list[Step]:
    """`steps` (recorded for `task`) with each value replaced by its text in `new_task`
    (Unmatched when `new_task` does not fit `task`'s template)."""
    steps = _kept_as_typed(steps, task)
    bound = template_of(task, values_of(steps, task)).bind(new_task)
    return _with_states(substitute(_retargeted(steps, bound), bound), new_task)


def _page(step: Step) -> Observation | None:
    """The page the step was taken on, where it was recorded with its elements."""
    return Observation.from_json(step.observation) if (step.observation or {}).get(
        "elements") else None


def _retargeted(steps: list[Step], values: dict[str, str]) -> list[Step]:
    """Each fill or choice whose field's name is a value given another word: the same text
    put into the recorded page's field of that name, by the action that field takes."""
    out = []
    for step in steps:
        action, old = step.action or {}, (step.target or {}).get("name")
        new = values.get(old) if action.get("action") in _FIELD_ACTIONS and old else None
        page = _page(step) if new and new != old else None
        if page is None:
            out.append(step)
            continue
        field = next((e for e in page.elements if normalized(e.name) == normalized(new)
                      and (e.tag == "select" or e.editable)), None)
        if field is None:
            raise Unmatched(f"the new task names the field {new!r} where the recorded one "
                            f"named {old!r}, and the recorded page has no field {new!r}")
        text = action.get("text", action.get("option"))
        action = ({"action": "select_option", "id": field.id, "option": text}
                  if field.tag == "select" else {"action": "fill", "id": field.id, "text": text})
        out.append(dataclasses.replace(step, action=action, target=describe(page, field.id)))
    return out


def _with_states(steps: list[Step], task: str) -> list[Step]:
    """Each click on a toggle that `task` names beside a state word ("turn off "Dark mode"",
    "Dark mode: on") with the state it asks for in its target (`wants_checked`)."""
    out = []
    for step in steps:
        action, target = step.action or {}, step.target or {}
        page = _page(step) if action.get("action") == "click" and target.get("name") else None
        toggle = page.element(action.get("id")) if page else None
        if toggle is not None and toggle.checked is not None:
            name = _occurs(target["name"]).pattern
            said = re.search(rf"(?<!\w)({_STATE})\W{{0,3}}{name}|{name}\W{{0,3}}({_STATE})(?!\w)",
                             task, re.IGNORECASE)
            if said:
                state = (said.group(1) or said.group(2)).lower()
                step = dataclasses.replace(step, target={**target,
                                                         "wants_checked": state == "on"})
        out.append(step)
    return out


def _kept_as_typed(steps: list[Step], task: str) -> list[Step]:
    """A click into a field that already showed a value the task names (1 passenger, left as
    the page had it) did what typing that value would: written as that `fill`, the value can
    change with a new task."""
    out = []
    for step in steps:
        action, field = step.action or {}, None
        if action.get("action") == "click" and step.observation:
            field = next((e for e in step.observation.get("elements", [])
                          if e.get("id") == action.get("id") and e.get("editable")), None)
        shown = (field or {}).get("value")
        if shown and _occurs(shown).search(task):
            step = dataclasses.replace(step, action={"action": "fill", "id": action["id"],
                                                     "text": shown})
        out.append(step)
    return out


_PAGE_TEXTS = ("name", "value", "options", "selected", "text", "title")


def substitute(steps: list[Step], values: dict[str, str]) -> list[Step]:
    """`steps` with each old value of `values` replaced by its new text wherever they hold
    it as a whole: typed text and options, the names targets are found by, and what the
    recorded pages show (a renamed product is renamed in its list too)."""
    changed = {old: new for old, new in values.items() if old != new}
    if not changed:
        return steps
    pattern = re.compile("|".join(_occurs(v).pattern for v in sorted(changed, key=len,
                                                                      reverse=True)),
                         re.IGNORECASE)
    lookup = {normalized(old): new for old, new in changed.items()}

    def swap(value):
        if isinstance(value, str):
            return pattern.sub(lambda m: lookup[normalized(m.group(0))], value)
        return [swap(v) for v in value] if isinstance(value, list) else value

    def rewrite(data: dict | None, keys: tuple[str, ...]) -> dict | None:
        if data is None:
            return None
        return {k: swap(v) if k in keys else v for k, v in data.items()}

    def page(observation: dict | None) -> dict | None:
        if observation is None:
            return None
        out = rewrite(observation, _PAGE_TEXTS)
        out["elements"] = [rewrite(e, _PAGE_TEXTS) for e in observation.get("elements", [])]
        return out
    def target(data: dict | None) -> dict | None:
        """The descriptor with its new values, and which of them its name holds."""
        out = rewrite(data, _TARGET_TEXTS)
        if out is None:
            return None
        holds = [lookup[normalized(m.group(0))]
                 for m in pattern.finditer(data.get("name") or "")]
        return {**out, "holds": holds} if holds else out
    return [dataclasses.replace(s, action=rewrite(s.action, _TEXT_ARGS),
                                target=target(s.target),
                                observation=page(s.observation)) for s in steps]
