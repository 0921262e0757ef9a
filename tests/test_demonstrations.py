"""Teach by demonstration, replay without the model — through the real extension in Chromium.

Playwright acts as the user (trusted mouse and keyboard input) on the multi-page trip site in
tests/pages while the popup records; replays run through `nightloop replay` against the daemon.
The daemon's policy is the scripted one where a fallback must be deterministic (the
demonstration is named with the script it follows, turn by turn), and the shipped model where a
fallback needs judgement (an inserted page).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import NIGHTLOOP, follow, nightloop, store_files, wait_until

from daemon.agent.replay import PATIENCE
from daemon.tasks.sites.user import record_by_hand

TASK = ('fill "City" with "Paris"; select "2" in "Nights"; click "Next"; click "Insurance"; '
        'click "Book"')
BOOKED = "Booked: Paris, 2 nights, insured"


def record(browser, daemon_proc, page_url: str, task: str, acts) -> dict:
    """Open `page_url`, press Record in the popup, let `acts(page)` do the task as the user,
    press "Stop: it worked"; return the stored demonstration (the newest episode)."""
    record_by_hand(browser.context, browser.extension_id, page_url, task, acts)
    newest = max(e["id"] for e in json.loads(nightloop(
        "episodes", "list", "--json", "--db", str(daemon_proc.db)).stdout))
    wait_until(lambda: show(daemon_proc, newest)["status"] != "running", timeout=10,
               what="the demonstration to be saved")
    return show(daemon_proc, newest)


def show(daemon_proc, episode_id: int) -> dict:
    return json.loads(nightloop("episodes", "show", str(episode_id), "--json",
                                "--db", str(daemon_proc.db)).stdout)


def replay(daemon_proc, *args: str) -> dict:
    return follow("replay", *args, *daemon_proc.args(), timeout=90)


def plan_trip(page) -> None:
    page.click("#city")
    page.keyboard.type("Paris")
    page.keyboard.press("Tab")              # to Nights, the way a person moves on
    page.keyboard.press("ArrowDown")        # 1 → 2
    page.click("text=Next")
    page.wait_for_url("**/trip-book.html*")
    page.click("#insurance")
    page.click("#book")
    page.wait_for_selector(f"text={BOOKED}")


def modes(episode: dict) -> list[tuple[str, str]]:
    return [(s["mode"], s["action"]["action"]) for s in episode["steps"]]


def final_text(episode: dict) -> str:
    return episode["steps"][-1]["observation"]["text"]


@pytest.mark.browser
def test_record_a_demonstration_then_replay_it_without_the_model(browser, daemon_proc,
                                                                 pages_url):
    demo = record(browser, daemon_proc, f"{pages_url}/trip.html", TASK, plan_trip)
    assert demo["source"] == "demonstration" and demo["status"] == "done"
    assert [(r["kind"], r["value"]) for r in demo["rewards"]] == [("user", 1.0)]
    steps = demo["steps"]
    assert [(s["action"]["action"], (s.get("target") or {}).get("name"), s["action"].get("text"),
             s["action"].get("option")) for s in steps] == [
        ("fill", "City", "Paris", None), ("select_option", "Nights", None, "2"),
        ("click", "Next", None, None), ("click", "Insurance", None, None),
        ("click", "Book", None, None), ("done", None, None, None)]
    assert all(s["mode"] == "demonstration" and s["ok"] for s in steps)
    # it ends where the user said it worked: a `done` on the page at that moment
    assert BOOKED in steps[-1]["observation"]["text"]
    # each step carries the page as it was just before the action
    city = next(e for e in steps[0]["observation"]["elements"] if e["name"] == "City")
    assert city["value"] == "" and steps[0]["action"]["id"] == city["id"]
    assert steps[3]["url"].split("?")[0].endswith("/trip-book.html")
    assert steps[3]["target"]["role"] == "checkbox" and steps[3]["target"]["label"] == "Insurance"
    assert steps[4]["target"]["path"].endswith("button")

    again = replay(daemon_proc, "1")
    assert again["source"] == "replay" and again["replay_of"] == 1 and again["status"] == "done"
    shown = show(daemon_proc, again["id"])
    assert modes(shown) == [("replayed", a) for a in   # a moment for the page to answer
                            ("fill", "select_option", "click", "click", "click", "wait", "done")]
    assert all(s.get("prompt") is None and s.get("raw_output") is None for s in shown["steps"]), \
        "the policy was called during a plain replay"
    assert BOOKED in final_text(shown)
    listed = nightloop("episodes", "list", "--db", str(daemon_proc.db)).stdout
    assert "demonstration" in listed and "replay" in listed
    text = nightloop("episodes", "show", str(again["id"]), "--db", str(daemon_proc.db)).stdout
    assert '[replayed] click' in text and 'target: checkbox "Insurance"' in text

    # -- the page changed: the final button renamed --------------------------------------
    renamed = show(daemon_proc, replay(daemon_proc, "1", "--url",
                                       f"{pages_url}/trip.html?variant=renamed")["id"])
    waits = [("replayed", "wait")] * PATIENCE           # for "Book" to appear, in vain
    assert modes(renamed)[:5 + PATIENCE] == [
        ("replayed", "fill"), ("replayed", "select_option"), ("replayed", "click"),
        ("replayed", "click"), *waits, ("fallback", "click")]
    assert renamed["status"] == "done" and BOOKED in final_text(renamed)
    assert renamed["steps"][4 + PATIENCE]["raw_output"] == 'click "Book"'   # the policy's

    stopped = replay(daemon_proc, "1", "--fallback", "none", "--url",
                     f"{pages_url}/trip.html?variant=renamed")
    assert stopped["status"] == "failed"
    assert stopped["error"].startswith('step 5 of 6 (click button "Book"): no button '
                                       '"Book" on ')
    assert [s["mode"] for s in show(daemon_proc, stopped["id"])["steps"]] == \
        ["replayed"] * (4 + PATIENCE)                    # nothing after the step it missed

    # -- the page changed: one extra step inserted; the shipped model stands in -------------
    daemon_proc.stop()
    daemon_proc.start(policy="llm")
    wait_until(lambda: '"browser_connected": true' in nightloop(
        "status", "--json", *daemon_proc.args(), check=False).stdout, timeout=20,
        what="the extension to reconnect")
    extra = show(daemon_proc, replay(daemon_proc, "1", "--url",
                                     f"{pages_url}/trip.html?variant=extra")["id"])
    assert modes(extra)[:3] == [("replayed", "fill"), ("replayed", "select_option"),
                                ("replayed", "click")]
    changed = extra["steps"][3 + PATIENCE]              # after waiting for "Insurance"
    assert changed["mode"] == "fallback" and "trip-check.html" in changed["url"]
    assert changed["prompt"] and "The page has changed at step 4 of 6" in changed["prompt"]
    assert changed["completion_tokens"] > 0                  # the model decided this step


SECRET = "s3cret-PIN-4711"


@pytest.mark.browser
def test_a_typed_password_is_never_recorded_and_the_replay_asks_for_it(browser, daemon_proc,
                                                                        pages_url):
    def book_with_pin(page):
        page.click("#pin")
        page.keyboard.type(SECRET)
        page.click("#book")
        page.wait_for_selector("text=PIN given")

    url = f"{pages_url}/trip-book.html?city=Rome&nights=1"
    demo = record(browser, daemon_proc, url, "Book Rome with my PIN", book_with_pin)
    assert [(s["action"]["action"], s["action"].get("text")) for s in demo["steps"]] == [
        ("fill", "•••"), ("click", None), ("done", None)]

    follower = subprocess.Popen([NIGHTLOOP, "replay", "1", *daemon_proc.args()],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        popup = browser.popup()
        popup.wait_for_selector("#notice:not([hidden])", timeout=20_000)
        assert 'textbox "PIN"' in popup.inner_text("#notice-text")
        tab = [p for p in browser.context.pages if p.url.startswith(url)][-1]   # the replay's
        tab.fill("#pin", SECRET)                # the user types it, not nightloop
        popup.click("#resume")
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert "waiting for you: Type your password" in out and "ended: done" in out
    replayed = show(daemon_proc, 2)
    assert modes(replayed) == [("user", "wait"), ("replayed", "click"), ("replayed", "wait"),
                               ("replayed", "done")]
    assert "PIN given" in final_text(replayed)

    files = [daemon_proc.db, daemon_proc.db.with_name(daemon_proc.db.name + "-wal"),
             daemon_proc.log]
    for path in files:
        if path.exists():
            assert SECRET.encode() not in path.read_bytes(), f"the password leaked into {path}"
    exported = nightloop("episodes", "export", "--db", str(daemon_proc.db)).stdout
    assert SECRET not in exported


def test_replaying_a_missing_episode_is_one_clear_error(daemon_proc):
    result = nightloop("replay", "99", *daemon_proc.args(), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: there is no finished episode 99 to replay"


@pytest.mark.browser
def test_a_click_into_a_field_without_typing_is_recorded_as_a_click(browser, daemon_proc,
                                                                     pages_url):
    demo = record(browser, daemon_proc, f"{pages_url}/form.html", "Put the cursor in Name",
                  lambda page: page.click("#name"))
    assert [(s["action"]["action"], (s.get("target") or {}).get("name"))
            for s in demo["steps"]] == [("click", "Name"), ("done", None)]


@pytest.mark.browser
def test_a_recording_goes_through_the_agents_sanitiser(browser, daemon_proc, pages_url):
    """A card number typed while recording is masked in the action, out of the stored page
    and redacted from the task that named it, as in an agent's own episode."""
    card = "4000056655665556"

    def pay(page):
        page.fill("#card", "")
        page.click("#card")
        page.keyboard.type(card)
        page.keyboard.press("Tab")
    demo = record(browser, daemon_proc, f"{pages_url}/payment.html", f"Pay with {card}", pay)
    typed = [s for s in demo["steps"] if s["action"]["action"] == "fill"]
    assert typed and all(s["action"]["text"] == "•••" for s in typed)
    assert demo["task"] == "Pay with •••"
    for path in store_files(daemon_proc.db):
        assert card.encode() not in path.read_bytes(), path
