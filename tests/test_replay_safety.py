"""Replays that never write a wrong record, through the real recorder, daemon, extension and
Chromium, on tests/pages/people.html: an admin form the application validates itself a moment
after a submit and saves into sessionStorage, counting every submit.

One demonstration, recorded by hand (the City select chosen by typing its name), replayed with
new values: right ones save the right record; a missing option, a value the application
refuses, a value the browser's own check refuses and a task with a clause the demonstration
lacks all end the replay failed (or refused), saying why, and write nothing wrong.
"""

from __future__ import annotations

import json

import pytest
from conftest import follow, nightloop, wait_until
from test_demonstrations import record

pytestmark = pytest.mark.browser

SHOWN = "Add Ada Lovelace, ada@example.org, in Lima"


def add_by_hand(page) -> None:
    """What a keyboard user does: click into Full name, type, Tab on, type the city's name
    into the select (passing "Lagos" on the way to "Lima"), click Save."""
    page.click("#name")
    page.keyboard.type("Ada Lovelace")
    page.keyboard.press("Tab")
    page.keyboard.type("ada@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type("Lima")
    page.click("text=Save")
    page.wait_for_selector("text=Saved Ada Lovelace (Lima)")


def book(browser, url: str) -> tuple[list[dict], int]:
    """What people.html saved and how many submits it saw, in the tab the replay opened on
    `url`."""
    def tab():
        for page in browser.context.pages:      # Playwright learns of the extension's tabs
            page.wait_for_timeout(50)           # only while it is called
            if page.url == url:
                return page
    page = wait_until(tab, what=f"a tab on {url}")
    page.wait_for_timeout(500)          # the application answers 300 ms after a submit
    saved = json.loads(page.evaluate("sessionStorage.getItem('people.saved')") or "[]")
    return saved, int(page.evaluate("sessionStorage.getItem('people.submits')") or 0)


def replay(daemon_proc, demo: int, url: str, task: str, *extra: str) -> dict:
    return follow("replay", str(demo), "--task", task, "--url", url, "--fallback", "none",
                  *extra, *daemon_proc.args(), timeout=90)


def test_a_replay_saves_only_what_the_task_says_and_stops_at_what_it_cannot_do(
        browser, daemon_proc, pages_url):
    demo = record(browser, daemon_proc, f"{pages_url}/people.html", SHOWN, add_by_hand)
    # the select's final choice only: typing "Lima" passed "Lagos", which is not recorded
    assert [(s["action"]["action"], s["action"].get("text") or s["action"].get("option"))
            for s in demo["steps"]] == [
        ("fill", "Ada Lovelace"), ("fill", "ada@example.org"), ("select_option", "Lima"),
        ("click", None), ("done", None)]

    url = f"{pages_url}/people.html?run=right"
    right = replay(daemon_proc, demo["id"], url, "Add Bob Hope, bob@example.org, in Paris.")
    assert right["status"] == "done", right
    assert book(browser, url) == ([{"name": "Bob Hope", "email": "bob@example.org",
                               "city": "Paris", "newsletter": False}], 1)
    # --json streamed every step as it ended, the last the replay's `done`
    assert [s["action"]["action"] for s in right["streamed"]] == [
        "fill", "fill", "select_option", "click", "wait", "done"]

    # A city the select does not offer: the replay stops there, before Save.
    url = f"{pages_url}/people.html?cities=Lagos,Lima"
    missing = replay(daemon_proc, demo["id"], url, "Add Bob Hope, bob@example.org, in Paris")
    assert missing["status"] == "failed"
    assert missing["error"].startswith(
        "step 3 of 5 (select_option combobox \"City\" option 'Paris') failed: select [")
    assert missing["error"].endswith('has no option "Paris"; its options are "Lagos", "Lima"')
    assert [s["action"]["action"] for s in missing["streamed"]] == [
        "fill", "fill", "select_option"]
    assert book(browser, url) == ([], 0)                 # Save never clicked

    # The application refuses the email: the replay fails with the page's words.
    url = f"{pages_url}/people.html?run=refused"
    refused = replay(daemon_proc, demo["id"], url, "Add Bob Hope, bob-at-example.org, in Paris")
    assert refused["status"] == "failed" and refused["error"].startswith(
        "the page refused the form after the last step: Please correct the error below.")
    assert "Enter a valid email address." in refused["error"]
    assert "Email: invalid" in refused["error"]
    assert book(browser, url) == ([], 1)

    # The browser's own check refuses it (type=email, required): no submit at all.
    url = f"{pages_url}/people.html?native=1"
    native = replay(daemon_proc, demo["id"], url, "Add Bob Hope, bob-at-example.org, in Paris")
    assert native["status"] == "failed" and native["error"].startswith(
        'the page refused the form after step 4 of 5 (click button "Save"): Email: ')
    assert "'@'" in native["error"]                      # Chromium's own message
    assert book(browser, url) == ([], 0)

    # A clause the demonstration has no place for is refused, not typed into the city.
    extra = nightloop("replay", str(demo["id"]), "--task",
                      "Add Bob Hope, bob@example.org, in Lima and turn on the newsletter",
                      "--fallback", "none", *daemon_proc.args(), check=False)
    assert extra.returncode != 0 and "'and turn on the newsletter' has no place in it" in \
        extra.stderr


def test_run_names_each_element_it_acts_on(browser, daemon_proc, pages_url):
    out = nightloop("run", "--url", f"{pages_url}/people.html", *daemon_proc.args(),
                    'fill "Full name" with "Ada"; select "Porto" in "City"; click "Save"; '
                    'click "Nowhere"', check=False)
    lines = out.stdout.splitlines()
    assert '   0. fill textbox "Full name" "Ada" → ok' in lines
    assert '   1. select_option combobox "City" "Porto" → ok' in lines
    assert '   2. click button "Save" → ok' in lines
    assert "ended: gave_up" in lines[-1] and out.returncode == 3     # gave up: exit 3
