"""Episodes that move between pages: links, Enter in a form, goto and go_back."""

from __future__ import annotations

import json

import pytest
from conftest import follow, nightloop

pytestmark = pytest.mark.browser


def test_an_episode_follows_links_forms_and_history(browser, daemon_proc, pages_url):
    episode = follow(
        "run", *daemon_proc.args(), "--url", f"{pages_url}/links.html",
        'click "Go to the next page"; fill "Search" with "owls"; press Enter on "Search"; '
        f"go back; goto {pages_url}/links.html; answer arrived")
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
    assert [s["result"].get("navigated") for s in steps[:3]] == [True, False, True]


def test_a_failed_navigation_is_a_clear_error_not_a_hang(browser, daemon_proc, pages_url):
    episode = follow("run", *daemon_proc.args(), "--url", f"{pages_url}/links.html",
                     "go back; done")
    steps = json.loads(nightloop("episodes", "show", str(episode["id"]), "--json",
                                 "--db", str(daemon_proc.db)).stdout)["steps"]
    assert steps[0]["ok"] is False
    assert steps[0]["error"] == "there is no previous page in this tab's history"
    assert episode["status"] == "done"


def test_a_dead_link_leads_to_an_error_page_the_agent_can_leave(browser, daemon_proc, pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/links.html")
    page.evaluate("document.querySelector('a').href = 'http://127.0.0.1:9/nowhere'")
    episode = follow("run", *daemon_proc.args(), "--yes",    # the link: another site
                     f'click "Go to the next page"; goto {pages_url}/next.html; done')
    steps = json.loads(nightloop("episodes", "show", str(episode["id"]), "--json",
                                 "--db", str(daemon_proc.db)).stdout)["steps"]
    assert episode["status"] == "done", episode
    error_page = steps[1]["observation"]
    assert error_page["url"] == "http://127.0.0.1:9/nowhere" and error_page["elements"] == []
    assert "browser shows its error page" in error_page["text"]
    assert steps[2]["url"].endswith("/next.html")


def test_only_an_action_that_loads_another_document_is_waited_for(browser, daemon_proc,
                                                                  pages_url):
    """The content script says whether an action began loading a document (the Navigation
    API's navigate event); the worker then waits for the new page, and answers any other
    action at once: a click that changes text, a #link, a pushState load nothing."""
    episode = follow(
        "run", *daemon_proc.args(), "--url", f"{pages_url}/script_nav.html",
        'click "Count"; click "Jump below"; click "Second tab"; click "Next by script"; '
        "answer arrived")
    assert episode["status"] == "done", episode
    steps = json.loads(nightloop("episodes", "show", str(episode["id"]), "--json",
                                 "--db", str(daemon_proc.db)).stdout)["steps"]
    assert all(s["ok"] for s in steps), [s.get("error") for s in steps]
    assert [s["result"]["navigated"] for s in steps[:4]] == [False, False, False, True]
    assert steps[4]["url"] == f"{pages_url}/next.html?from=script"    # the new page, loaded
    assert steps[4]["observation"]["title"] == "Next page"
