"""A person at the browser, played by Playwright (sync API): recording a demonstration through
the extension's popup, and doing a site task's script the way a user would (click into a field
and type, Tab on, pick an option by typing its name, click a button), so the recorder sees what
it sees of a real user. Demonstrations for the tests and the bench.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
        elif step.startswith("click"):              # by its whole name, else by a part
            target = _control(page, words[0], exact=True)
            if target.count() == 0:
                target = _control(page, words[0], exact=False)
            url = page.url
            target.first.click()
            if page.url != url:
                page.wait_for_selector(READY)
        else:
            raise ValueError(f"no way to act out {step!r}")


def _control(page, name: str, *, exact: bool):
    """The buttons, links and checkboxes called `name`."""
    found = page.get_by_role("button", name=name, exact=exact)
    for role in ("link", "checkbox"):
        found = found.or_(page.get_by_role(role, name=name, exact=exact))
    return found


def record_by_hand(context, extension_id: str, url: str, task: str,
                   act: Callable[[object], None]) -> None:
    """Open `url` in a new tab, name `task` in the popup and press Record, do `act(page)`,
    press "Stop: it worked" and wait until the popup says the recording is saved."""
    page = context.new_page()
    page.goto(url)
    popup = context.new_page()
    popup.goto(f"chrome-extension://{extension_id}/popup.html")
    popup.fill("#task", task)
    popup.click("#record")
    popup.wait_for_selector("#recording:not([hidden])")
    page.bring_to_front()       # a person works in the page (a real popup is not a tab)
    act(page)
    popup.click("#record-ok")
    popup.wait_for_selector("#recording", state="hidden")
    popup.close()
