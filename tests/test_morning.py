"""The morning after, in a real Chromium: the popup's "Last night" panel (with the extension),
the toolbar badge and the notification after a night that changed the serving adapter, Undo
through the daemon, and the night's HTML report opened offline."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest
from conftest import DaemonProcess, free_port, launch_browser, nightloop, run_async, wait_until
from recorded_night import HELD, MINE, record_nights

pytestmark = pytest.mark.browser


def badge(context) -> str:
    worker = context.service_workers[0]
    return worker.evaluate("chrome.action.getBadgeText({})")


def test_the_popup_shows_last_night_and_undo_serves_the_adapter_from_before(
        playwright, home, tmp_path):
    db = home / "store.db"
    run_async(record_nights(db, "http://127.0.0.1:9/newsletter.html"))
    at = (datetime.now() + timedelta(hours=12)).strftime("%H:%M")    # never due in the test
    daemon = DaemonProcess(free_port(), db, home / "daemon.log").start(
        "--train-at", at, "--notify-after-night", "true")
    try:
        with launch_browser(playwright, daemon, tmp_path) as browser:
            # Before the popup is opened: the badge says there is news, and the notification
            # the user asked for says what the night learned.
            wait_until(lambda: badge(browser.context) == "new", what="the night's badge")
            notes = browser.context.service_workers[0].evaluate(
                "new Promise((done) => chrome.notifications.getAll(done))")
            assert list(notes) == ["night-2"]

            popup = browser.popup()
            popup.wait_for_selector("#night:not([hidden])")
            assert popup.text_content("#night-outcome") == \
                "learned: 2 tasks better, 1 worse — adapter 3 serving"
            assert popup.text_content("#night-short").startswith(
                "a short night: GRPO ran 10 of its 180 steps in its time")
            tasks = popup.locator("#night-tasks li")
            assert tasks.all_text_contents() == [
                f"▲ {MINE[0]}: 30% → 80%", f"▼ {MINE[1]}: 60% → 40%",
                f"= {HELD}: 50% → 50% (held out)"]
            assert [tasks.nth(i).get_attribute("data-mark") for i in range(3)] == [
                "better", "worse", "same"]
            assert popup.text_content("#night-next").startswith("Next night: ") and \
                popup.text_content("#night-next").endswith(at)
            wait_until(lambda: badge(browser.context) == "", what="the badge, once seen")

            # Undo asks first; Cancel changes nothing.
            popup.click("#undo")
            assert popup.text_content("#undo-question") == \
                "Retire adapter 3 and serve adapter 1 again?"
            popup.click("#undo-no")
            assert popup.is_hidden("#undo-confirm") and popup.is_visible("#undo")
            popup.click("#undo")
            popup.click("#undo-yes")
            wait_until(lambda: popup.text_content("#night-outcome") ==
                       "undone: adapter 3 retired — adapter 1 serving",
                       what=f"the undone night: {popup.text_content('#error')}, "
                            f"{(home / 'daemon.log').read_text()[-2000:]}")
            assert popup.is_hidden("#undo") and popup.is_hidden("#undo-confirm")
            assert popup.is_hidden("#error")

        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT id, status FROM adapters ORDER BY id").fetchall() == [
                (1, "promoted"), (2, "rejected"), (3, "retired")]
        shown = json.loads(nightloop("night", "--json", "--db", str(db)).stdout)
        assert (shown["state"], shown["can_undo"]) == ("undone", False)
    finally:
        daemon.stop()


def test_the_night_report_opens_offline_and_draws_what_the_store_holds(playwright, home,
                                                                       tmp_path):
    from PIL import Image, ImageStat

    from daemon.bridge.launch import find_chromium
    db = home / "store.db"
    recorded = run_async(record_nights(db, "http://127.0.0.1:9/newsletter.html"))
    out = tmp_path / "night.html"
    nightloop("night", "--report", str(out), "--db", str(db))
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    chromium = playwright.chromium.launch(executable_path=find_chromium(),
                                          args=["--no-sandbox", "--disable-gpu"])
    try:
        page = chromium.new_page(viewport={"width": 1100, "height": 900})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(out.as_uri())
        assert {u.split(":", 1)[0] for u in requests} <= {"file", "data"}, requests
        text = page.inner_text("body")
        assert "learned: 2 tasks better, 1 worse — adapter 3 serving" in text
        assert "A short night: GRPO ran 10 of its 180 steps in its time" in text
        assert "promoted: won 1 / lost 0 paired seeds" in text and "held out" in text

        # Each bar is as long as its figure: the first task's judge p went 30% → 80%.
        row = page.locator("tr", has_text=MINE[0]).first
        tracks = row.locator(".track")
        fills = row.locator(".fill")
        widths = [fills.nth(i).bounding_box()["width"] / tracks.nth(i).bounding_box()["width"]
                  for i in range(2)]
        assert widths == [pytest.approx(0.3, abs=0.01), pytest.approx(0.8, abs=0.01)]
        # The curve: before, night 1 (not promoted: what served stayed), night 2 in orange.
        circles = page.locator("svg circle")
        assert circles.count() == 3
        assert circles.nth(2).get_attribute("fill") == "#e8710a"
        ys = [float(circles.nth(i).get_attribute("cy")) for i in range(3)]
        assert ys[0] == ys[1] > ys[2]                          # 67%, 67%, then up to 100%

        # As a person sees it: the after bar is the report's blue.
        picture = tmp_path / "bar.png"
        fills.nth(1).screenshot(path=str(picture))
        r, g, b = ImageStat.Stat(Image.open(picture).convert("RGB")).mean
        assert r < 60 and 100 < g < 130 and b > 210, (r, g, b)     # #1a73e8

        # The night's practice of the user's tasks opens beside it, at the episode linked.
        first = recorded["practice"][(1, MINE[0])][0]
        page.click(f'a[href="night-episodes.html#episode-{first}"]')
        assert page.url.endswith(f"night-episodes.html#episode-{first}")
        assert page.locator(f"#episode-{first}").is_visible()
    finally:
        chromium.close()
