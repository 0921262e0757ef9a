"""End to end: a task typed into the real popup runs in real headless Chromium through the real
extension and daemon, and lands in the SQLite file."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import nightloop, wait_until

pytestmark = pytest.mark.browser

TASK = ('fill "Name" with "Ada"; fill "Email" with "ada@example.com"; select "Blue" in "Colour"; '
        'check "Subscribe"; fill "Password" with "s3cret-pw"; click "Send"')


def test_popup_task_fills_the_form_and_is_stored(browser, daemon_proc, pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/form.html")
    popup = browser.popup()
    wait_until(lambda: popup.text_content("#connection") == "connected", what="popup connected")

    popup.fill("#task", TASK)
    popup.click("#run")             # a password in the task: the user insists
    popup.click("#run-anyway")
    # Typing the password, and sending the form it is in, wait for the user's yes.
    popup.wait_for_selector("#approval:not([hidden])", timeout=30_000)
    popup.click("#approve-episode")

    # The popup lists the steps live and offers feedback when the episode is over.
    popup.wait_for_selector("#finished:not([hidden])", timeout=30_000)
    assert "Finished: done" in popup.text_content("#outcome")
    steps = popup.locator("#steps li").all_text_contents()
    assert len(steps) == 7 and steps[0].startswith('fill textbox "Name"') and steps[-1] == "done"
    assert all("s3cret-pw" not in s for s in steps)

    # The page really changed: the form was submitted with what the agent typed.
    result = page.locator("#result")
    assert result.is_visible()
    assert result.text_content() == ("Thanks Ada <ada@example.com>, colour Blue, subscribed, "
                                     "password set")

    # Thumbs up is stored as user feedback.
    popup.click("#thumbs-up")
    wait_until(lambda: "Thanks" in (popup.text_content("#feedback-note") or ""), what="feedback")

    # The SQLite file has the episode, every step, and the reward; never the password.
    db = sqlite3.connect(daemon_proc.db)
    (episode_id, status, source, task), = db.execute(
        "SELECT id, status, source, task FROM episodes").fetchall()
    assert (status, source) == ("done", "toolbar")
    rows = db.execute('SELECT "index", action, ok, url FROM steps WHERE episode_id=? '
                      'ORDER BY "index"', (episode_id,)).fetchall()
    actions = [json.loads(a)["action"] for _, a, _, _ in rows]
    assert actions == ["fill", "fill", "select_option", "click", "fill", "click", "done"]
    assert all(ok for _, _, ok, _ in rows)
    assert all(url.endswith("/form.html") for *_, url in rows)
    wait_until(lambda: db.execute("SELECT kind, value FROM rewards").fetchall() == [("user", 1.0)],
               what="the feedback reward")
    db.close()
    for path in daemon_proc.db.parent.glob(daemon_proc.db.name + "*"):
        assert b"s3cret-pw" not in path.read_bytes(), path

    # The CLI shows the same episode with its steps.
    shown = nightloop("episodes", "show", str(episode_id), "--db", str(daemon_proc.db)).stdout
    assert "status: done" in shown and "source: toolbar" in shown
    assert shown.count(" → ok") == 7
    assert 'fill textbox "Email" "ada@example.com"' in shown and "s3cret-pw" not in shown
    data = json.loads(nightloop("episodes", "show", str(episode_id), "--db", str(daemon_proc.db),
                                "--json").stdout)
    assert [s["index"] for s in data["steps"]] == list(range(7))
    assert data["steps"][0]["observation"]["title"] == "Contact form"
    assert data["rewards"][0]["kind"] == "user"


def test_the_popup_marks_the_site_and_a_task_safe_to_practise(browser, daemon_proc, pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/form.html")
    popup = browser.popup()
    wait_until(lambda: popup.text_content("#connection") == "connected", what="popup connected")
    site = pages_url.split("://")[1]
    assert popup.text_content("#practice-host") == site
    assert not popup.is_checked("#practice-site")

    popup.fill("#task", 'fill "Name" with "Ada"')
    popup.click("#run")
    popup.wait_for_selector("#finished:not([hidden])", timeout=30_000)
    assert not popup.is_checked("#practice-task")
    popup.check("#practice-task")
    db = sqlite3.connect(daemon_proc.db)
    rules = lambda: db.execute("SELECT site, task FROM practice_rules ORDER BY id").fetchall()  # noqa: E731
    wait_until(lambda: rules() == [(site, 'fill "Name" with "Ada"')], what="the task rule")
    popup.check("#practice-site")
    wait_until(lambda: len(rules()) == 2 and (site, None) in rules(), what="the site rule")

    # A popup opened later asks the daemon and shows both as they are stored.
    again = browser.popup()
    wait_until(lambda: again.is_checked("#practice-site") and again.is_checked("#practice-task"),
               what="the rules shown again")
    again.uncheck("#practice-site")
    wait_until(lambda: rules() == [(site, 'fill "Name" with "Ada"')], what="the site rule gone")
    db.close()

    listed = json.loads(nightloop("practice", "list", "--json", "--db",
                                  str(daemon_proc.db)).stdout)
    assert [(t["task"], t["url"]) for t in listed["tasks"]] == [
        ('fill "Name" with "Ada"', f"{pages_url}/form.html")]


def test_a_token_pasted_in_the_popup_pairs_and_stays_in_memory(playwright, daemon_proc, tmp_path):
    """Paired with a stale token, the extension is refused; the token pasted in the popup pairs
    it, and is kept in session storage (memory), never in storage.local (disk)."""
    from conftest import Browser

    from daemon.bridge.launch import launch_with_playwright
    from daemon.bridge.pairing import extension_id, load_or_create_token
    from daemon.core.settings import config_dir
    context = launch_with_playwright(playwright.chromium, tmp_path / "profile",
                                     port=daemon_proc.port, token="a-stale-token")
    try:
        popup = Browser(context, extension_id()).popup()
        wait_until(lambda: popup.text_content("#connection") == "pairing refused", timeout=20,
                   what="the stale token refused")
        popup.fill("#pair-port", str(daemon_proc.port))
        popup.fill("#pair-token", load_or_create_token(config_dir()))
        popup.click("#pair-form button")
        wait_until(lambda: popup.text_content("#connection") == "connected", timeout=20,
                   what="paired with the pasted token")
        stored = popup.evaluate("chrome.storage.local.get(null)")
        in_memory = popup.evaluate("chrome.storage.session.get('pasted')")
        assert "token" not in json.dumps(stored)
        assert in_memory["pasted"]["token"] == load_or_create_token(config_dir())
    finally:
        context.close()
