"""What the agent sees of a page: the observation the content script sends, and its text form.

The content script (extension/observation.js) walks the live DOM once, open shadow roots and
same-origin iframes included, and reports the visible interactive and labelled elements, each
with an id that stays the same for the same element while the page lives, plus a short excerpt of
the visible text. It caps both and says how much it left out. Secret values (passwords,
payment cards, one-time codes: `Element.is_secret`) never leave the page; `Observation.from_json`
drops any that would.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .wire import from_json

MASK = "•••"
CHANGES_SHOWN = 3       # facts `Observation.changes_since` gives at most
QUOTED_CHARS = 60       # of a value or a new text, where a change quotes it
LABEL_CHARS = 40        # of an element's name, where an action names the element (Element.label)
_UNLABELLED = re.compile(r'["\\\x00-\x1f]')

# A field is secret by its type, its `autocomplete` token (payment card, one-time code) or, for
# pages that mark nothing, the words of its name.
SECRET_AUTOCOMPLETE = re.compile(r"^(cc-(number|csc|exp|exp-month|exp-year)|one-time-code)$")
SECRET_NAME = re.compile(r"\b(password|passcode|card ?number|credit card|cvv|cvc|csc|pin|otp|"
                         r"one[- ]time (code|password)|iban|security code)\b", re.IGNORECASE)


def _without(words: list[str], part: list[str]) -> list[str]:
    """`words` less the first run of `part` in it."""
    n = len(part)
    for i in range(len(words) - n + 1):
        if n and words[i:i + n] == part:
            return words[:i] + words[i + n:]
    return words


def _quoted(text: str) -> str:
    """`text` shortened to `QUOTED_CHARS` (with an ellipsis) for a change's words."""
    text = " ".join(text.split())
    return text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS - 1] + "…"


def _new_runs(before: list[str], after: list[str], least: int = 2) -> list[list[str]]:
    """Runs of at least `least` words in `after` that `before` did not have there (a word
    diff: a list that only moved its lines about has a few)."""
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return [after[j1:j2] for op, _, _, j1, j2 in matcher.get_opcodes()
            if op in ("insert", "replace") and j2 - j1 >= least]


@dataclass
class Element:
    id: int
    tag: str
    role: str
    name: str = ""
    type: str | None = None             # input type, e.g. "password", "checkbox"
    value: str | None = None
    checked: bool | None = None
    options: list | None = None          # option texts of a select (the first 30)
    options_omitted: int = 0            # a select's options beyond those
    selected: str | None = None          # selected option text of a select
    editable: bool | None = None         # accepts fill
    disabled: bool | None = None
    in_view: bool = True
    frame: str | None = None             # "iframe" / "shadow" when not in the top document
    context: bool | None = None          # labelled but not interactive (a heading, an image):
                                         # read for what it says, never an action's target
    autocomplete: str | None = None     # the field's autocomplete token, e.g. "cc-number"
    form: int | None = None             # the form it belongs to (numbered per page), if any
    link_origin: str | None = None      # where a link leads: its http(s) origin
    invalid: str | None = None          # the page refuses its value, in the page's words
                                        # (aria-invalid, or the browser's check on a submit)

    @property
    def is_password(self) -> bool:
        return self.type == "password"

    @property
    def is_secret(self) -> bool:
        """A field whose value is a secret: a password, a payment card's number, code or
        expiry, a one-time code, a PIN, an IBAN."""
        if self.is_password or SECRET_AUTOCOMPLETE.match(self.autocomplete or ""):
            return True
        return bool(self.editable) and bool(SECRET_NAME.search(self.name))

    @property
    def choices(self) -> list[str] | None:
        """A select's every option, as an action names it; None where the observation does
        not hold them all (some cut off, or a text clipped) or one would need escapes in the
        grammar (a quote, a backslash, a control character: as labels, `Element.label`)."""
        if not self.options or self.options_omitted or any(
                str(o).endswith("…") or _UNLABELLED.search(str(o)) for o in self.options):
            return None
        return [str(o) for o in self.options]

    @property
    def label(self) -> str:
        """What an action calls this element before its id: the start of its name as the
        observation shows it, without quotes, backslashes or control characters (they would
        need escapes), or its role when that leaves nothing."""
        return _UNLABELLED.sub("", self.name)[:LABEL_CHARS].strip() or self.role

    def changes_since(self, before: Element) -> list[str]:
        """This element's new value, choice or check against `before` (the same id), in words;
        a secret's value is never quoted."""
        name = f'"{_quoted(self.label)}"'
        if self.value != before.value:
            if self.is_secret:
                return [f"{name} filled" if self.value else f"{name} emptied"]
            return [f'{name} holds "{_quoted(self.value)}"' if self.value else f"{name} emptied"]
        if self.selected != before.selected and self.selected:
            return [f'{name} shows "{_quoted(self.selected)}"']
        if self.checked != before.checked and self.checked is not None:
            return [f"{name} {'checked' if self.checked else 'unchecked'}"]
        return []

    def render(self) -> str:
        parts = [f"[{self.id}] {self.role}"]
        if self.name:
            parts.append(f'"{self.name}"')
        if self.is_password:
            parts.append("(password)")
        elif self.is_secret:
            parts.append("(secret)")
        elif self.value:
            parts.append(f'value="{self.value}"')
        if self.options:
            parts.append("options: " + " | ".join(str(o) for o in self.options))
        if self.options_omitted:
            parts.append(f"(and {self.options_omitted} more options)")
        if self.selected:
            parts.append(f'selected="{self.selected}"')
        if self.checked is not None:
            parts.append("checked" if self.checked else "unchecked")
        if self.disabled:
            parts.append("disabled")
        if self.invalid:
            parts.append(f'invalid: "{self.invalid}"')
        if not self.in_view:
            parts.append("(scroll to see)")
        return " ".join(parts)


@dataclass
class Observation:
    url: str
    title: str = ""
    elements: list[Element] = field(default_factory=list)
    text: str = ""
    omitted_elements: int = 0           # elements that matched but were cut to fit the cap
    omitted_text: int = 0               # characters of visible text cut
    errors: list[str] = field(default_factory=list)    # the page's error messages, as shown

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Observation:
        obs = from_json(cls, {**data, "elements": []}, where="observation")
        for i, raw in enumerate(data.get("elements") or []):
            element = from_json(Element, raw, where=f"observation.elements[{i}]")
            if element.is_secret:
                element.value = MASK if element.value else None
            obs.elements.append(element)
        return obs

    def element(self, element_id: int) -> Element | None:
        return next((e for e in self.elements if e.id == element_id), None)

    def labels(self) -> dict[int, str]:
        """Each element's label as an action names it on this page: `Element.label`, and
        where several elements share one, their ordinal among them in page order ("textbox 1",
        "textbox 2"), so that a label names one element."""
        plain = [(e.id, e.label) for e in self.elements]
        shared = Counter(label for _, label in plain)
        seen: Counter[str] = Counter()
        out = {}
        for element_id, label in plain:
            seen[label] += 1
            out[element_id] = f"{label} {seen[label]}" if shared[label] > 1 else label
        return out

    def refusals_since(self, before: Observation | None) -> list[str]:
        """What this page says it refused that `before` did not say: new error messages, and
        fields newly marked invalid (`Name: Please fill out this field.`), in the page's words."""
        old = set(before.errors) if before else set()
        marked = {(e.role, e.name, e.invalid) for e in before.elements} if before else set()
        return [m for m in self.errors if m not in old] + [
            f"{e.name or e.role}: {e.invalid}" for e in self.elements
            if e.invalid and (e.role, e.name, e.invalid) not in marked]

    def changes_since(self, before: Observation) -> list[str]:
        """What differs from `before`, in words, at most `CHANGES_SHOWN` facts, most telling
        first: another page (`now on "Thanks"`), a control's new value, choice or check
        (`"Full name" holds "Ada"`, `"City" shows "Lima"`, `"Newsletter" checked`; a secret
        field only `filled`), text that appeared (`new text: "Saved."`), elements that
        appeared. Empty when nothing that is described differs."""
        facts = []
        if (self.url, self.title) != (before.url, before.title):
            facts.append(f'now on "{_quoted(self.title)}"' if self.title != before.title
                         else f"now at {self.url}")
        old = {e.id: e for e in before.elements}
        for element in self.elements:
            was = old.get(element.id)
            if was is not None:
                facts += element.changes_since(was)
        facts += [f'new text: "{_quoted(" ".join(run))}"'
                  for run in _new_runs(before.text.split(), self.text.split())[:1]]
        new = [e for e in self.elements if e.id not in old and not e.context]
        if new and self.url == before.url:
            facts.append(f"{len(new)} new element{'s' if len(new) > 1 else ''}, first "
                         f"{new[0].role} \"{_quoted(new[0].label)}\"")
        return facts[:CHANGES_SHOWN]

    def state_key(self, apart: int | None = None) -> str:
        """What the agent can see of the page, without element ids or any order (of elements,
        of the text's words): two observations with the same key show the same page state (a
        step between them changed nothing visible; a reload that reshuffled a list is no
        change). `apart`: an element whose name is left out (and its text with it)."""
        skipped = self.element(apart) if apart is not None else None
        seen = sorted(repr((e.role, "" if e is skipped else e.name, e.value, e.checked,
                            e.selected, e.disabled, e.in_view)) for e in self.elements)
        words = self.text.split()
        if skipped is not None:
            words = _without(words, skipped.name.split())
        words.sort()
        digest = hashlib.sha256(repr((self.url, self.title, seen, words)).encode())
        return digest.hexdigest()[:16]

    def render(self) -> str:
        """Compact text for prompts and terminals, the elements an action may target first and
        labelled context after them; says what was cut."""
        targets = [e.render() for e in self.elements if not e.context]
        context = [e.render() for e in self.elements if e.context]
        lines = [f"Page: {self.title or '(untitled)'} ({self.url})", "Elements:"]
        lines += targets or ["(none)"]
        if context:
            lines += ["Context (headings, images: not targets):", *context]
        if self.omitted_elements:
            lines.append(f"({self.omitted_elements} more elements not shown)")
        if self.errors:
            lines.append("Errors: " + " | ".join(self.errors))
        if self.text:
            lines.append("Text: " + self.text)
        if self.omitted_text:
            lines.append(f"({self.omitted_text} more characters of text not shown)")
        return "\n".join(lines)
