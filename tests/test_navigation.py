"""Episodes that move between pages: links, Enter in a form, goto and go_back."""

from __future__ import annotations

import json

import pytest

from conftest import nightloop

pytestmark = pytest.mark.browser


def test_an_episode_follows_links_forms_and_history(browser, daemon_proc, pages_url):
    result = nightloop(
        "run", *daemon_proc.args(), "--json", "--url", f"{pages_url}/links.html",
        'click "Go to the next page"; fill "Search" with "owls"; press Enter on "Search"; '
        f"go back; goto {pages_url}/links.html; answer arrived")
    episode = json.loads(result.stdout)
    assert episode["status"] == "done" and episode["final_answer"] == "arrived"

    steps = json.loads(nightloop("episodes", "show", str(episode["id"]), "--json",
                                 "--db", str(daemon_proc.db)).stdout)["steps"]
    assert all(s["ok"] for s in steps), [s.get("error") for s in steps]
    # Each step observed the page the previous action led to.
    assert [s["url"].removeprefix(pages_url) for s in steps] == [
        "/links.html",
        "/next.html?from=links",
        "/next.html?from=links",
        "/next.html?q=owls",            # Enter submitted the form
        "/next.html?from=links",        # go back
        "/links.html",                  # goto
    ]
    assert steps[3]["observation"]["title"] == "Next page"


def test_a_failed_navigation_is_a_clear_error_not_a_hang(browser, daemon_proc, pages_url):
    result = nightloop("run", *daemon_proc.args(), "--json", "--url", f"{pages_url}/links.html",
                       "go back; done")
    episode = json.loads(result.stdout)
    steps = json.loads(nightloop("episodes", "show", str(episode["id"]), "--json",
                                 "--db", str(daemon_proc.db)).stdout)["steps"]
    assert steps[0]["ok"] is False
    assert steps[0]["error"] == "there is no previous page in this tab's history"
    assert episode["status"] == "done"
