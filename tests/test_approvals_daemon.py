"""Approvals through the real daemon, extension and Chromium: every client is asked, the first
answer decides, no answer in time denies, `nightloop run --yes` approves its own run."""

from __future__ import annotations

import re
import sqlite3

import pytest
from conftest import (
    DaemonProcess,
    free_port,
    launch_browser,
    nightloop,
    run_async,
    store_files,
)

from daemon.bridge.pairing import load_or_create_token
from daemon.cli.main import DENIED
from daemon.core import protocol as p
from daemon.core.settings import config_dir
from daemon.service.client import connected

pytestmark = pytest.mark.browser


async def run_answering(port: int, task: p.Task, verdicts: list[str]) -> tuple[dict, list]:
    """Start `task` as a client and answer each approval_ask with the next verdict."""
    asks = []
    async with connected(port, load_or_create_token(config_dir())) as client:
        started = await client.request(task)
        async for message in client.messages():
            if isinstance(message, p.ApprovalAsk):
                asks.append(message)
                await client.send(p.Approval(message.request_id, verdicts.pop(0)))
            elif isinstance(message, p.EpisodeUpdate) and \
                    message.episode["id"] == started.episode["id"] and \
                    message.episode["status"] != "running":
                return message.episode, asks
    raise AssertionError("the daemon closed the connection")


def steps(db, episode_id: int) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute('SELECT url, ok, error, result FROM steps WHERE episode_id=? '
                            'ORDER BY "index"', (episode_id,)).fetchall()


def test_a_denied_action_never_runs_and_an_approved_one_does(browser, daemon_proc, pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/form.html")
    task = p.Task('fill "Password" with "s3cret-pw"; done', source="cli", allow_secret=True)
    episode, asks = run_async(run_answering(daemon_proc.port, task, ["deny"]))
    assert [a.kind for a in asks] == ["secret"] and asks[0].element.endswith("(password)")
    assert asks[0].action["text"] == "•••"                  # the ask never shows the secret
    rows = steps(daemon_proc.db, episode["id"])
    assert not rows[0][1] and "not approved (the user)" in rows[0][2]
    assert page.input_value("#password") == ""              # nothing was typed

    episode, asks = run_async(run_answering(daemon_proc.port, task, ["approve"]))
    assert episode["status"] == "done" and len(asks) == 1
    assert steps(daemon_proc.db, episode["id"])[0][1]
    assert page.input_value("#password") == "s3cret-pw"


def test_a_link_to_a_site_the_task_does_not_name_asks_first(browser, daemon_proc, pages_url):
    """The page offers a link elsewhere: following it is a navigation the user approves."""
    page = browser.context.new_page()
    page.goto(f"{pages_url}/payment.html")
    task = p.Task('click "A better offer elsewhere"; click "Terms"; done', source="cli")
    episode, asks = run_async(run_answering(daemon_proc.port, task, ["deny"]))
    assert [a.kind for a in asks] == ["navigation"] and "http://elsewhere.test" in asks[0].reason
    (_, ok, error, _), (_, terms_ok, _, _), _ = steps(daemon_proc.db, episode["id"])
    assert not ok and "not approved" in error and terms_ok     # its own pages: not asked
    assert page.evaluate("location.href") == f"{pages_url}/payment.html#terms"


def test_with_nobody_to_answer_it_is_denied_after_the_timeout_and_yes_approves(
        playwright, home, tmp_path, pages_url, monkeypatch):
    monkeypatch.setenv("NIGHTLOOP_APPROVAL_TIMEOUT", "1")
    daemon = DaemonProcess(free_port(), home / "store.db", home / "daemon.log").start()
    try:
        with launch_browser(playwright, daemon, tmp_path):
            args = ["run", "--url", f"{pages_url}/form.html", "--port", str(daemon.port),
                    "--allow-secret-in-task", 'fill "Password" with "s3cret-pw"; done']
            asked = nightloop(*args, check=False)   # no terminal here: nobody to ask
            assert "needs your approval: step 0 types into the secret field" in asked.stderr
            assert "answer in the popup within 1 s" in asked.stderr
            assert asked.returncode == DENIED       # the exit status says so, not 0
            (_, ok, error, _), _ = steps(daemon.db, 1)
            assert not ok and "not approved (no answer within 1 s)" in error
            # Logging out signs the user out of their own account: it asks first too.
            out = nightloop("run", "--url", f"{pages_url}/people.html", "--port",
                            str(daemon.port), 'click "Log out"; done', check=False)
            assert 'needs your approval: step 0 clicks [' in out.stderr and \
                'link "Log out"' in out.stderr and out.returncode == DENIED
            assert "click link \"Log out\" → error: not approved" in out.stdout
            yes = nightloop(*args[:-1], "--yes", args[-1])
            assert "needs your approval" not in yes.stderr
            (_, ok, _, result), _ = steps(daemon.db, 3)
            assert ok and "approved for this run (--yes)" in result
    finally:
        daemon.stop()


def test_approvals_deny_refuses_unasked():
    from types import SimpleNamespace

    from daemon.agent.approvals import ApprovalRequest
    from daemon.service.server import _Asking
    request = ApprovalRequest(1, 0, {"action": "click", "id": 3}, "http://a/", None, "commit",
                              "clicks Pay")
    asking = _Asking(SimpleNamespace(approvals="deny"), approve_all=False)
    assert run_async(asking.approve(request)) == ("deny", 'approvals = "deny"')


def test_the_popup_shows_the_step_and_its_answer_decides(browser, daemon_proc, pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/form.html")
    popup = browser.popup()
    popup.fill("#task", 'fill "Password" with "s3cret-pw"; fill "Name" with "Ada"; '
                        'fill "Password" with "again"; done')
    popup.click("#run")         # a secret in the task: refused, unless the user insists
    popup.wait_for_selector("#run-anyway:not([hidden])", timeout=10_000)
    assert "write {{NAME}} in the task instead" in popup.text_content("#error")
    popup.click("#run-anyway")
    popup.wait_for_selector("#approval:not([hidden])", timeout=20_000)
    assert "types into the secret field" in popup.text_content("#approval-reason")
    left = [int(re.search(r"Denied in (\d+) s", popup.text_content("#approval-left"))[1])]
    popup.wait_for_function(                    # the next tick of the countdown
        "first => !document.querySelector('#approval-left').textContent"
        ".includes(`Denied in ${first} s`)", arg=left[0], timeout=5_000)
    left.append(int(re.search(r"Denied in (\d+) s", popup.text_content("#approval-left"))[1]))
    assert 0 < left[1] < left[0] <= 60                  # counts down to the daemon's timeout
    shown = popup.text_content("#approval-action")
    assert shown.startswith("fill [") and '"•••"' in shown and "s3cret" not in shown
    popup.click("#approve-episode")             # this one and the rest of the episode
    popup.wait_for_selector("#finished:not([hidden])", timeout=20_000)
    assert popup.locator("#approval").is_hidden()
    assert page.input_value("#password") == "again"     # both secret steps ran, asked once
    with sqlite3.connect(daemon_proc.db) as conn:
        results = [r for (r,) in conn.execute('SELECT result FROM steps ORDER BY "index"')]
    assert '"by": "the user"' in results[0] and "approved for this episode" in results[2]


def test_a_card_number_the_agent_types_never_lands_in_store_log_or_progress(
        browser, daemon_proc, pages_url):
    card = "4000056655665556"
    page = browser.context.new_page()
    page.goto(f"{pages_url}/payment.html")
    refused = nightloop("run", "--yes", *daemon_proc.args(), f'fill "Card" with "{card}"; done',
                        check=False)
    assert refused.returncode == 1 and "seems to hold a secret in clear" in refused.stderr
    run = nightloop("run", "--yes", "--allow-secret-in-task", *daemon_proc.args(),
                    f'fill "Card" with "{card}"; done')
    assert "ended: done" in run.stdout and card not in run.stdout + run.stderr   # progress
    assert page.input_value("#card") == card                     # the page got it
    for path in [*store_files(daemon_proc.db), daemon_proc.log]:
        assert card.encode() not in path.read_bytes(), path
