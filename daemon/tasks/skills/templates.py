"""Skill templates: for a seed, a page (pages.py), a task in words phrased one of many ways, the
script a careful person would follow (the scripted policy's instructions), and the ground truth:
the part of the page's recorded state that must equal what the task asked for at the end.

The recorded state (www/skills.js keeps it for the tab): ``values``, every control's value
now; ``submitted``, the values at each submit; ``pressed``, the buttons, links and menu items
pressed that submit nothing; ``acted``, ``[action, row]`` per row button (once its dialog
confirmed it, where the page asks first). A task that does not ask for a submit is judged by
``values`` alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..sites.templates import SiteTask
from . import vocabulary as v
from .pages import Control, Page, page, value_for

TYPED = ("text", "text", "email", "tel", "number", "date", "time", "password", "textarea",
         "editable")
Draft = tuple[Page, str, dict[str, str], list[str], dict[str, Any]]


def _quote(value: str, rng: random.Random) -> str:
    return rng.choice((value, value, f'"{value}"', f"'{value}'"))


def _name(label: str, rng: random.Random) -> str:
    """A label as a person writes it in a task: as shown, or in lower case."""
    return rng.choice((label, label.lower()))


def type_words(c: Control, value: str, rng: random.Random) -> str:
    q, n = _quote(value, rng), _name(c.label, rng)
    box = rng.choice(("box", "field"))
    return rng.choice((f"type {q} into the {n} {box}", f"enter {q} in {n}",
                       f"fill in {n} with {q}", f"put {q} in the {n} {box}",
                       f"set {n} to {q}", f"change {n} to {q}", f"write {q} in the {n} {box}"))


def choose_words(c: Control, value: str, rng: random.Random) -> str:
    n = _name(c.label, rng)
    if c.kind == "radio":
        return rng.choice((f"choose {value} for {n}", f"select {value} under {n}",
                           f"pick the {value} option for {n}", f"set {n} to {value}"))
    return rng.choice((f"select {value} in the {n} list", f"choose {value} from {n}",
                       f"pick {value} as the {n}", f"set {n} to {value}",
                       f"change the {n} to {value}"))


def toggle_words(c: Control, on: bool, rng: random.Random) -> str:
    n = _name(c.label, rng)
    if on:
        return rng.choice((f"tick {n}", f"check the {n} box", f"turn on {n}", f"enable {n}",
                           f"switch {n} on"))
    return rng.choice((f"untick {n}", f"uncheck the {n} box", f"turn off {n}", f"disable {n}",
                       f"switch {n} off"))


def press_words(label: str, rng: random.Random) -> str:
    return rng.choice((f"press {label}", f"click {label}", f"press the {label} button",
                       f"click the {label} button"))


SUBMIT_VERBS = {"Save": "save", "Send": "send it", "Submit": "submit it", "Update": "update it",
                "Apply": "apply", "Register": "register", "Book": "book it",
                "Reserve": "reserve it", "Confirm": "confirm"}


def submit_words(p: Page, rng: random.Random) -> str:
    """Pressing `p`'s submit button, in words: by its label, or half the time by what it does
    ("and save") where no look-alike button begins with the same word."""
    first = p.submit.split()[0]
    verb = SUBMIT_VERBS.get(first)
    if verb and all(b.split()[0] != first for b in p.buttons) and rng.random() < 0.5:
        return verb
    return press_words(p.submit, rng)


def sentence(parts: list[str], rng: random.Random) -> str:
    """Clauses joined as a person would write them, capitalised."""
    if len(parts) == 1:
        text = parts[0]
    else:
        joined = rng.choice(("and", "then"))
        if joined == "and":
            text = ", ".join(parts[:-1]) + " and " + parts[-1]
        else:
            text = ", then ".join(parts)
    return text[0].upper() + text[1:]


def change(c: Control, rng: random.Random) -> tuple[str, Any, str]:
    """A change the task asks of `c`: its words, the value it leaves, the script's step."""
    if c.is_toggle:
        on = not c.value
        return toggle_words(c, on, rng), on, f'click "{c.label}"'
    value = value_for(c, rng)
    if c.kind == "radio":
        return choose_words(c, value, rng), value, f'click "{value}"'
    if c.kind == "select":
        return choose_words(c, value, rng), value, f'select "{value}" from "{c.label}"'
    return type_words(c, value, rng), value, f'fill "{c.label}" with "{value}"'


def changes(p: Page, keys: list[str], rng: random.Random, submit: bool) -> Draft:
    """The task of changing the controls `keys` of `p` (in a shuffled order of words), then
    pressing its submit button when `submit`."""
    words, script, values = [], [], p.values()
    for key in keys:
        said, value, step = change(p.control(key), rng)
        words.append(said)
        script.append(step)
        values[key] = value
    order = list(range(len(keys)))
    rng.shuffle(order)
    parts = [words[i] for i in order]
    if submit:
        parts.append(submit_words(p, rng))
        script.append(f'click "{p.submit}"')
    expect: dict[str, Any] = {"values": values}
    if submit:
        expect["submitted"] = [values]
    named = {p.control(k).label: values[k] for k in keys if not p.control(k).is_toggle}
    return p, sentence(parts, rng), named, script, expect


def skill_type(rng: random.Random) -> Draft:
    return changes(page(rng, [rng.choice(TYPED)]), ["c0"], rng, submit=False)


def skill_type_submit(rng: random.Random) -> Draft:
    return changes(page(rng, [rng.choice(TYPED)]), ["c0"], rng, submit=True)


def skill_choose(rng: random.Random) -> Draft:
    return changes(page(rng, ["select"]), ["c0"], rng, submit=rng.random() < 0.5)


def skill_radio(rng: random.Random) -> Draft:
    return changes(page(rng, ["radio"]), ["c0"], rng, submit=rng.random() < 0.5)


def skill_toggle(rng: random.Random) -> Draft:
    kind = rng.choice(("checkbox", "switch"))
    return changes(page(rng, [kind]), ["c0"], rng, submit=rng.random() < 0.5)


def skill_form(rng: random.Random) -> Draft:
    kinds = [rng.choice(TYPED + ("select", "radio", "checkbox")) for _ in range(rng.randint(2, 3))]
    p = page(rng, kinds, extra=rng.randint(0, 2))
    return changes(p, [f"c{i}" for i in range(len(kinds))], rng, submit=True)


SETTINGS = ("Settings", "Preferences", "Notifications", "Account settings", "Privacy")


def skill_settings(rng: random.Random) -> Draft:
    """A settings page: switches, lists and options, one or two of them changed, then saved."""
    kinds = [rng.choice(("checkbox", "switch", "select", "radio"))
             for _ in range(rng.randint(1, 2))]
    p = page(rng, kinds, extra=rng.randint(2, 4))
    p.title, p.submit = rng.choice(SETTINGS), rng.choice(("Save", "Save changes", "Apply"))
    p.buttons = [b for b in p.buttons if b.lower() != p.submit.lower()]
    return changes(p, [f"c{i}" for i in range(len(kinds))], rng, submit=True)


def skill_search(rng: random.Random) -> Draft:
    p = page(rng, ["search"], extra=0)
    p.submit = rng.choice([b for b in ("Search", "Go", "Find") if b != p.control("c0").label])
    query = value_for(p.control("c0"), rng)
    q = _quote(query, rng)
    words = rng.choice((f"Search for {q}", f"Look up {q}", f"Find {q}",
                        f"Search the site for {q}"))
    how = rng.choice(("click", "enter"))
    script = [f'fill "{p.control("c0").label}" with "{query}"',
              f'click "{p.submit}"' if how == "click"
              else f'press Enter in "{p.control("c0").label}"']
    return p, words, {"query": query}, script, {"submitted": [{"c0": query}]}


def skill_press(rng: random.Random) -> Draft:
    p = page(rng, [], extra=rng.randint(0, 2))
    p.nav = rng.sample(v.NAV, rng.randint(3, 5))
    p.buttons = rng.sample(v.DISTRACTORS, rng.randint(2, 4))
    target = rng.choice(p.nav + p.buttons)
    kind = "link" if target in p.nav else "button"
    words = rng.choice((f"Click {target}", f"Press the {target} {kind}", f"Open {target}")
                       if kind == "link" else
                       (f"Click {target}", f"Press the {target} button", f"Press {target}"))
    return p, words, {"target": target}, [f'click "{target}"'], {"pressed": [target]}


ROW_ACTIONS = ("Delete", "Archive", "Remove", "Edit")


def skill_row(rng: random.Random, actions: tuple[str, ...] = ROW_ACTIONS) -> Draft:
    p = page(rng, [], extra=0)
    p.rows = rng.sample(v.WORDS, rng.randint(3, 6))
    p.row_action = rng.choice(actions)
    item = rng.choice(p.rows)
    a = p.row_action.lower()
    words = rng.choice((f"{a} {item}", f"{a} the {item} row", f"{a} the row for {item}",
                        f"click {p.row_action} next to {item}"))
    return (p, words[0].upper() + words[1:], {"item": item}, [f'click "{p.row_action} {item}"'],
            {"acted": [[p.row_action, item]]})


def skill_dialog(rng: random.Random) -> Draft:
    """A row action that asks first: the row's button opens a dialog, its button confirms."""
    p, words, values, script, expect = skill_row(rng, ROW_ACTIONS[:3])
    p.confirm = rng.choice((f"Yes, {p.row_action.lower()}", "Confirm", "OK", p.row_action))
    return p, words, values, [*script, f'click "{p.confirm}"'], expect


MENU_ITEMS = ("Export", "Duplicate", "Rename", "Print", "Share", "Move", "Download", "Copy link")


def skill_menu(rng: random.Random) -> Draft:
    """A command in a menu the page shows only once its button is pressed."""
    p = page(rng, [], extra=rng.randint(0, 2))
    p.menu = rng.choice(("Actions", "More", "Options", "Menu"))
    p.menu_items = rng.sample(MENU_ITEMS, rng.randint(3, 5))
    item, menu = rng.choice(p.menu_items), _name(p.menu, rng)
    words = rng.choice((f"Choose {item} from the {menu} menu", f"Open {menu} and pick {item}",
                        f"Use {item} in the {menu} menu", f"{item} it, from the {menu} menu"))
    return p, words, {"item": item}, [f'click "{p.menu}"', f'click "{item}"'], \
        {"pressed": [item]}


def skill_wizard(rng: random.Random) -> Draft:
    """A form of two steps: the fields of the first, Next, those of the second, submit."""
    kinds = [rng.choice(TYPED[:6] + ("select", "radio", "checkbox")) for _ in range(3)]
    p = page(rng, kinds, extra=0)
    p.second = rng.sample(["c0", "c1", "c2"], rng.randint(1, 2))
    first = [k for k in ("c0", "c1", "c2") if k not in p.second]
    keys = rng.sample(first, rng.randint(1, len(first))) + \
        rng.sample(p.second, rng.randint(1, len(p.second)))
    _, words, named, script, expect = changes(p, keys, rng, submit=True)
    script.insert(sum(k in first for k in keys), 'click "Next"')
    return p, words, named, script, expect


def skill_login(rng: random.Random) -> Draft:
    p = page(rng, ["text", "password"], extra=0)
    p.title, p.submit = rng.choice((("Sign in", "Sign in"), ("Log in", "Log in"),
                                    ("Welcome back", "Continue")))
    user, password = p.control("c0"), p.control("c1")
    user.label = rng.choice(v.TEXT_LABELS["username"])
    name, secret = value_for(user, rng), value_for(password, rng)
    q = _quote(secret, rng)
    words = rng.choice((f"Log in as {name} with password {q}", f"Sign in as {name}, password {q}",
                        f"Log in with username {name} and password {q}"))
    values = {"c0": name, "c1": secret}
    script = [f'fill "{user.label}" with "{name}"', f'fill "{password.label}" with "{secret}"',
              f'click "{p.submit}"']
    return p, words, {"user": name, "password": secret}, script, \
        {"values": values, "submitted": [values]}


def skill_tab(rng: random.Random) -> Draft:
    kind = rng.choice(TYPED[:6] + ("select", "checkbox"))
    p = page(rng, [kind], extra=rng.randint(1, 3))
    p.tabs = rng.sample(("General", "Profile", "Billing", "Notifications", "Security"), 3)
    p.tab_of = {c.key: rng.choice(p.tabs) for c in p.controls}
    p.tab_of["c0"] = rng.choice(p.tabs[1:])
    tab = p.tab_of["c0"]
    _, task, named, script, expect = changes(p, ["c0"], rng, submit=rng.random() < 0.5)
    opener = rng.choice((f"Open the {tab} tab", f"Go to {tab}", f"In the {tab} tab,"))
    glue = " " if opener.endswith(",") else rng.choice((" and ", ", then "))
    words = opener + glue + task[0].lower() + task[1:]
    return p, words, named, [f'click "{tab}"', *script], expect


@dataclass(frozen=True)
class SkillTemplate:
    name: str
    draft: Callable[[random.Random], Draft]

    def drafted(self, seed: int) -> Draft:
        return self.draft(random.Random(f"{self.name}:{seed}"))

    def task(self, seed: int) -> SiteTask:
        _, task, values, steps, expect = self.drafted(seed)
        return SiteTask(self.name, seed, task, f"index.html?template={self.name}",
                        values, "; ".join([*steps, "done"]), expect)

    def page(self, seed: int) -> Page:
        return self.drafted(seed)[0]


SKILLS = {t.name: t for t in (
    SkillTemplate("skills.type", skill_type),
    SkillTemplate("skills.type-submit", skill_type_submit),
    SkillTemplate("skills.choose", skill_choose),
    SkillTemplate("skills.radio", skill_radio),
    SkillTemplate("skills.toggle", skill_toggle),
    SkillTemplate("skills.form", skill_form),
    SkillTemplate("skills.settings", skill_settings),
    SkillTemplate("skills.search", skill_search),
    SkillTemplate("skills.press", skill_press),
    SkillTemplate("skills.row", skill_row),
    SkillTemplate("skills.dialog", skill_dialog),
    SkillTemplate("skills.menu", skill_menu),
    SkillTemplate("skills.wizard", skill_wizard),
    SkillTemplate("skills.login", skill_login),
    SkillTemplate("skills.tab", skill_tab),
)}
HELD_OUT = ("skills.login", "skills.tab")   # never trained on: they measure transfer
