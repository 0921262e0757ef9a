"""The loop breaker on real pages: a round of four links back to the page it began on, and a
toggle that renames itself, walked by the scripted policy through the real extension; the
policy's context built from the stored steps offers no action that starts the round again."""

from __future__ import annotations

import json

import pytest
from conftest import follow, nightloop

from daemon.agent.policy import PastStep, StepContext
from daemon.core.observation import Observation
from daemon.core.store import Step

pytestmark = pytest.mark.browser


def context_after(daemon_proc, url: str, script: str) -> tuple[StepContext, Observation]:
    """The scripted run of `script` from `url`, and the context a model would decide in at its
    final `done`: the steps before it as history, its page as the observation."""
    episode = follow("run", "--url", url, *daemon_proc.args(), script)
    steps = json.loads(nightloop("episodes", "show", str(episode["id"]), "--json",
                                 "--db", str(daemon_proc.db)).stdout)["steps"]
    assert episode["status"] == "done" and steps[-1]["action"]["action"] == "done"
    stored = [Step(episode["id"], s["index"], s["action"], s["ok"],
                   observation=s["observation"]) for s in steps]
    page = Observation.from_json(steps[-1]["observation"])
    return StepContext("t", page, [PastStep.stored(s) for s in stored[:-1]]), page


def named(page: Observation, name: str) -> int:
    return next(e.id for e in page.elements if e.name == name)


def test_four_links_round_a_site_are_not_started_again(browser, daemon_proc, pages_url):
    context, home = context_after(daemon_proc, f"{pages_url}/tour.html?p=home",
                                  'click "Orders"; click "Help"; click "About"; click "Home"; '
                                  'done')
    assert home.url.endswith("?p=home") and home.title == "Tour: home"
    assert context.blocked_why == {("click", named(home, "Orders")):
                                   "done 4 steps ago on this same page: it led back here"}


def test_a_toggle_that_renames_itself_is_not_clicked_round_again(browser, daemon_proc,
                                                                pages_url):
    context, page = context_after(daemon_proc, f"{pages_url}/people.html",
                                  'click "Dark theme"; click "Light theme"; done')
    assert context.blocked == {("click", named(page, "Dark theme"))}
