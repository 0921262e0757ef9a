"""Everyday pages written by hand (bench/everyday/), with tasks phrased as a person would ask
them: the issue's plain profile form, a sign-in page, a shop's search box, a newsletter form,
preferences with switches, a to-do list. Never generated and never trained on: they measure
whether the skills carry over to pages nobody built for them. Ground truth is what the page
recorded (everyday/record.js, read with the ``sites.state`` probe); a scripted solution per
task proves each solvable."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from daemon.tasks.sites import Sites
from daemon.tasks.sites.templates import SiteTask
from daemon.tasks.static import serve_directory

PAGES = Path(__file__).with_name("everyday")
START = {"profile": {"name": "", "email": "me@example.org", "city": "Paris", "newsletter": False},
         "login": {"username": "", "password": "", "remember": False},
         "search": {"q": ""},
         "newsletter": {"name": "", "email": "", "often": "Weekly"},
         "settings": {"dark": False, "mail": True, "language": "English", "tz": "UTC"},
         "todo": {"item": ""}}


@dataclass(frozen=True)
class Everyday:
    page: str
    task: str
    script: list[str]
    changes: dict                   # the fields the task changes
    submit: bool = True             # the task asks for a submit (else: values alone count)
    acted: tuple[str, ...] = ()     # row actions it asks for

    def expect(self) -> dict:
        values = {**START[self.page], **self.changes}
        if self.acted:
            return {"acted": list(self.acted)}
        return {"values": values, **({"submitted": [values]} if self.submit else {})}

    def as_task(self, name: str, seed: int) -> SiteTask:
        return SiteTask(f"everyday.{name}", seed, self.task, f"{self.page}.html",
                        {}, "; ".join([*self.script, "done"]), self.expect())


TASKS = {
    "profile-name": Everyday("profile", "Type Ada Lovelace into the Full name box and press Save",
                             ['fill "Full name" with "Ada Lovelace"', 'click "Save"'],
                             {"name": "Ada Lovelace"}),
    "profile-city": Everyday("profile", "Select Lima in the City list",
                             ['select "Lima" from "City"'], {"city": "Lima"}, submit=False),
    "profile-news": Everyday("profile", "Tick the Newsletter box", ['click "Newsletter"'],
                             {"newsletter": True}, submit=False),
    "profile-email": Everyday("profile", "Change my email to ada@lovelace.org and save",
                              ['fill "Email" with "ada@lovelace.org"', 'click "Save"'],
                              {"email": "ada@lovelace.org"}),
    "login": Everyday("login", "Log in as grace with the password hopper42",
                      ['fill "Username or email" with "grace"', 'fill "Password" with "hopper42"',
                       'click "Sign in"'], {"username": "grace", "password": "hopper42"}),
    "login-remember": Everyday("login", "Sign in as linus, password penguin7, and keep me "
                               "signed in", ['fill "Username or email" with "linus"',
                                             'fill "Password" with "penguin7"',
                                             'click "Keep me signed in"', 'click "Sign in"'],
                               {"username": "linus", "password": "penguin7", "remember": True}),
    "search": Everyday("search", "Search for cordless drill",
                       ['fill "Search products" with "cordless drill"', 'click "Search"'],
                       {"q": "cordless drill"}),
    "search-hose": Everyday("search", "Look up garden hose",
                            ['fill "Search products" with "garden hose"',
                             'press Enter in "Search products"'], {"q": "garden hose"}),
    "newsletter": Everyday("newsletter", "Subscribe Alan Turing, alan@turing.org, to the "
                           "newsletter", ['fill "Your name" with "Alan Turing"',
                                          'fill "Email address" with "alan@turing.org"',
                                          'click "Subscribe"'],
                           {"name": "Alan Turing", "email": "alan@turing.org"}),
    "newsletter-monthly": Everyday("newsletter", "Sign me up monthly with the email "
                                   "bake@example.org",
                                   ['fill "Email address" with "bake@example.org"',
                                    'click "Monthly"', 'click "Subscribe"'],
                                   {"email": "bake@example.org", "often": "Monthly"}),
    "settings-dark": Everyday("settings", "Turn on dark mode and save",
                              ['click "Dark mode"', 'click "Save preferences"'], {"dark": True}),
    "settings-language": Everyday("settings", "Set the language to Deutsch",
                                  ['select "Deutsch" from "Language"'], {"language": "Deutsch"},
                                  submit=False),
    "settings-mail": Everyday("settings", "Stop the emails about new features, then save my "
                              "preferences", ['click "Email me about new features"',
                                              'click "Save preferences"'], {"mail": False}),
    "todo-delete": Everyday("todo", "Delete Buy milk from the list", ['click "Delete Buy milk"'],
                            {}, acted=("Delete Buy milk",)),
    "todo-add": Everyday("todo", "Add Call the plumber to my list",
                         ['fill "New item" with "Call the plumber"', 'click "Add"'],
                         {"item": "Call the plumber"}),
}


class _Template:
    def __init__(self, name: str):
        self.name = name

    def task(self, seed: int) -> SiteTask:
        return TASKS[self.name].as_task(self.name, seed)


TEMPLATES = {f"everyday.{name}": _Template(name) for name in TASKS}


@contextlib.contextmanager
def serve_everyday(port: int = 0) -> Iterator[str]:
    with serve_directory(PAGES, None, port) as url:
        yield url


def everyday_benchmark() -> Sites:
    return Sites("everyday", TEMPLATES, serve_everyday)
