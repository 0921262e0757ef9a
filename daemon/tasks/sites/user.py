"""A person doing a site task by hand: Playwright follows a template's script in a page the way
a user would (click into a field and type, Tab on, pick an option, click a button), so the
extension's recorder sees what it sees of a real user. Demonstrations for tests and bench.
"""

from __future__ import annotations

import re

from daemon.agent.policy import split_instructions

from .templates import SiteTask

READY = "html[data-site-ready=yes]"


def act_out(page, task: SiteTask) -> None:
    """Do `task`'s script (but its final `done`) in `page`, a Playwright sync page already on
    the task's start page."""
    page.wait_for_selector(READY)
    for step in split_instructions(task.script):
        if step == "done":
            break
        words = re.findall(r'"([^"]*)"', step)
        if step.startswith("fill"):
            field = page.get_by_label(words[0]).first
            field.click()
            field.fill(words[1])        # a date field takes its value whole, not as typed keys
            page.keyboard.press("Tab")
        elif step.startswith("select"):            # focus it and type the option's name, as a
            page.get_by_label(words[1]).first.focus()   # keyboard user would: trusted events
            page.keyboard.type(words[0])
            page.keyboard.press("Tab")
        elif step.startswith("click"):
            target = page.get_by_role("button", name=words[0], exact=True)
            for role in ("link", "checkbox"):
                target = target.or_(page.get_by_role(role, name=words[0], exact=True))
            url = page.url
            target.first.click()
            if page.url != url:
                page.wait_for_selector(READY)
        else:
            raise ValueError(f"no way to act out {step!r}")
