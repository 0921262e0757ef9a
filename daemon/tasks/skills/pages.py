"""A skills page for a seed: what it shows, as plain JSON the page's script renders
(www/index.html). Everything a person would not notice changes with the seed: labels, how a
label is attached (a `<label for>`, a wrapping label, `aria-label`, only a placeholder), the
order and layout of the fields, the page's theme, navigation, a cookie banner, look-alike
buttons, fields the task does not name, values already filled in.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from . import vocabulary as v

LAYOUTS = ("stack", "grid", "table", "fieldsets")
NAMINGS = ("for", "for", "wrap", "aria", "placeholder")


@dataclass
class Control:
    key: str                        # its key in the page's recorded state
    kind: str                       # text email tel number date time password textarea
                                    # editable search select radio checkbox switch
    label: str
    value: str | bool = ""          # what it holds when the page opens
    options: list[str] = field(default_factory=list)      # a select's or radio group's
    naming: str = "for"             # how the label is attached (NAMINGS)

    @property
    def is_choice(self) -> bool:
        return self.kind in ("select", "radio")

    @property
    def is_toggle(self) -> bool:
        return self.kind in ("checkbox", "switch")


@dataclass
class Page:
    title: str
    submit: str                     # the submit button's label
    controls: list[Control]
    layout: str = "stack"
    nav: list[str] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)      # look-alikes beside the submit
    banner: bool = False            # a cookie banner with its own buttons, above the form
    after: str = "message"          # what a submit shows: "message" or a "page" of its own
    tabs: list[str] = field(default_factory=list)         # tab names; controls split by tab
    tab_of: dict[str, str] = field(default_factory=dict)  # control key -> its tab
    rows: list[str] = field(default_factory=list)         # a list with row actions
    row_action: str = ""            # the rows' button label ("Delete", "Archive", ...)
    row_names: bool = False         # the row buttons say whose they are ("Delete Milk")
    confirm: str = ""               # a row action asks first, in a dialog with this button
    menu: str = ""                  # a menu button's label; pressing it shows `menu_items`
    menu_items: list[str] = field(default_factory=list)
    second: list[str] = field(default_factory=list)     # keys of controls on a second step,
                                                        # reached by a Next button
    filler: int = 0                 # paragraphs of text before the form (to scroll past)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def control(self, key: str) -> Control:
        return next(c for c in self.controls if c.key == key)

    def values(self) -> dict[str, str | bool]:
        """Every control's value when the page opens (the recorded state's ``values``)."""
        return {c.key: c.value for c in self.controls}


def _unique(rng: random.Random, labels: tuple[str, ...], taken: set[str]) -> str:
    free = [label for label in labels if label.lower() not in taken]
    label = rng.choice(free or [f"{labels[0]} {len(taken) + 1}"])
    taken.add(label.lower())
    return label


def control(kind: str, rng: random.Random, taken: set[str], key: str) -> Control:
    """A control of `kind` with a label no other control on the page has (case aside)."""
    if kind == "text":
        sort = rng.choice(sorted(v.TEXT_LABELS))
        return Control(key, "text", _unique(rng, v.TEXT_LABELS[sort], taken),
                       naming=rng.choice(NAMINGS))
    labels = {"email": v.EMAIL_LABELS, "tel": v.PHONE_LABELS, "number": v.NUMBER_LABELS,
              "date": v.DATE_LABELS, "time": v.TIME_LABELS, "password": v.PASSWORD_LABELS,
              "textarea": v.AREA_LABELS, "editable": v.EDITABLE_LABELS,
              "search": v.SEARCH_LABELS}
    if kind in labels:
        naming = rng.choice(NAMINGS) if kind not in ("editable",) else "aria"
        return Control(key, kind, _unique(rng, labels[kind], taken), naming=naming)
    if kind == "select":
        label = _unique(rng, tuple(v.LISTS), taken)
        options = list(v.LISTS[label])
        return Control(key, "select", label, options[0], options, rng.choice(("for", "aria")))
    if kind == "radio":
        label = _unique(rng, tuple(v.GROUPS), taken)
        options = list(v.GROUPS[label])
        return Control(key, "radio", label, options[0], options, "fieldset")
    if kind in ("checkbox", "switch"):
        return Control(key, kind, _unique(rng, v.SWITCHES, taken), rng.random() < 0.4,
                       naming=rng.choice(("for", "wrap")))
    raise ValueError(f"unknown control kind {kind!r}")


def value_for(c: Control, rng: random.Random) -> str:
    """A value a task may ask `c` to hold, other than what it holds now."""
    while True:
        value = _draw(c, rng)
        if value != c.value:
            return value


def _draw(c: Control, rng: random.Random) -> str:
    if c.is_choice:
        return rng.choice(c.options)
    if c.kind == "email":
        return v.email(rng)
    if c.kind == "tel":
        return f"+{rng.randint(30, 49)} {rng.randrange(10**8, 10**9)}"
    if c.kind == "number":
        return str(rng.randint(2, 60))
    if c.kind == "date":
        return f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if c.kind == "time":
        return f"{rng.randint(7, 21):02d}:{rng.choice(('00', '15', '30', '45'))}"
    if c.kind == "password":
        return f"{rng.choice(v.WORDS).split()[0]}{rng.randint(100, 999)}{rng.choice('!#%')}"
    if c.kind in ("textarea", "editable"):
        return rng.choice(v.PHRASES)
    if c.kind == "search":
        return rng.choice(v.WORDS)
    label = c.label.lower()
    if label in ("first name", "given name"):
        return rng.choice(v.GIVEN)
    if label in ("last name", "surname", "family name"):
        return rng.choice(v.FAMILY)
    if label in ("city", "town", "home town"):
        return rng.choice(v.TOWNS)
    if label in ("company", "organisation", "employer"):
        return rng.choice(v.COMPANIES)
    if label in ("subject", "title", "headline"):
        return rng.choice(v.PHRASES)
    if label in ("username", "user name", "login name"):
        return f"{rng.choice(v.GIVEN).lower()}{rng.randint(1, 99)}"
    return v.person(rng)


FIELD_KINDS = ("text", "text", "text", "email", "tel", "number", "date", "time", "textarea",
               "editable", "select", "radio", "checkbox", "switch")


def page(rng: random.Random, wanted: list[str], *, extra: int | None = None,
         prefill: float = 0.3) -> Page:
    """A page holding controls of the `wanted` kinds (keys ``c0``, ``c1``, ...: the task's),
    and `extra` others (random: 0-3) the task leaves alone, in a shuffled order; text fields
    the task does not name are filled in a `prefill` share of the time."""
    theme, submits = rng.choice(v.THEMES)
    taken: set[str] = set()
    controls = [control(kind, rng, taken, f"c{i}") for i, kind in enumerate(wanted)]
    extra = rng.randint(0, 3) if extra is None else extra
    for i in range(extra):
        other = control(rng.choice(FIELD_KINDS), rng, taken, f"x{i}")
        if not other.is_choice and not other.is_toggle and rng.random() < prefill:
            other.value = value_for(other, rng)
        controls.append(other)
    rng.shuffle(controls)
    submit = rng.choice(submits)
    looks = [b for b in v.DISTRACTORS if b.lower() != submit.lower()]
    return Page(title=theme, submit=submit, controls=controls, layout=rng.choice(LAYOUTS),
                nav=rng.sample(v.NAV, rng.randint(0, 4)),
                footer=rng.sample(v.FOOTER, rng.randint(0, 3)),
                buttons=rng.sample(looks, rng.randint(0, 2)), banner=rng.random() < 0.25,
                after=rng.choice(("message", "page")),
                filler=rng.choice((0, 0, 0, 1, 3)))
