"""Step screenshots: taken by the real extension in Chromium before each step, secret fields
painted over, stored beside the store, listed by `episodes show`, deleted with their episode."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from conftest import follow, nightloop, run_async, wait_until
from PIL import Image, ImageStat

from daemon.agent.camera import Camera
from daemon.core.screenshots import Screenshots
from daemon.core.store import Store
from daemon.tasks.sites.user import record_by_hand

COVER = (0x5F, 0x63, 0x68)


def show(daemon_proc, episode_id: int) -> dict:
    return json.loads(nightloop("episodes", "show", str(episode_id), "--json",
                                "--db", str(daemon_proc.db)).stdout)


def run(daemon_proc, url: str, task: str, *extra: str) -> dict:
    result = follow("run", "--yes", "--allow-secret-in-task", *daemon_proc.args(), "--url", url,
                    *extra, task, timeout=60)
    return show(daemon_proc, result["id"])


def image_of(daemon_proc, step: dict) -> Image.Image:
    path = Path(f"{daemon_proc.db}-screenshots") / step["screenshot"]["file"]
    return Image.open(io.BytesIO(path.read_bytes())).convert("RGB")


def mean_colour(image: Image.Image, box: list[int]) -> tuple[float, ...]:
    x, y, w, h = box
    return tuple(ImageStat.Stat(image.crop((x + 3, y + 3, x + w - 3, y + h - 3))).mean)


def is_cover(colour: tuple[float, ...]) -> bool:
    return all(abs(c - k) < 12 for c, k in zip(colour, COVER))


def agent_tab(browser, url_part: str):
    """The page the agent works in (Playwright's page.url lags a navigation the extension
    made: each page is asked where it is)."""
    return wait_until(lambda: next((p for p in browser.context.pages
                                    if url_part in p.evaluate("location.href")), None),
                      what=f"Playwright to see the agent's tab on {url_part}")


def page_box(page, selector: str, width: int) -> list[int]:
    """The element's box in the pixels of a screenshot `width` wide, measured by Playwright."""
    x, y, w, h, view = page.evaluate(
        "s => { const r = document.querySelector(s).getBoundingClientRect();"
        " return [r.x, r.y, r.width, r.height, innerWidth]; }", selector)
    return [round(v * width / view) for v in (x, y, w, h)]


@pytest.mark.browser
def test_each_step_keeps_a_small_screenshot_with_its_target_and_secrets_painted_over(
        browser, daemon_proc, pages_url):
    episode = run(daemon_proc, f"{pages_url}/payment.html",
                  'fill "Search the shop" with "socks"; click "Terms"; done')
    steps = episode["steps"]
    assert [s["action"]["action"] for s in steps] == ["fill", "click", "done"]
    for step in steps:
        shot = step["screenshot"]
        assert shot["file"] == f"{episode['id']}/{step['index']}.jpg"
        assert shot["width"] == 1024 and 0 < shot["bytes"] <= 60_000
        image = image_of(daemon_proc, step)
        assert image.size == (shot["width"], shot["height"])
        # the card number and the one-time code have values: both painted over, every step
        assert shot["covered"] == 2
        for field in ("#card", "#code"):
            box = page_box(agent_tab(browser, "payment.html"), field, shot["width"])
            assert is_cover(mean_colour(image, box)), f"{field} shows in step {step['index']}"
    # the acted-on element's box, as the page had it, in the image's pixels
    search = page_box(agent_tab(browser, "payment.html"), "[aria-label='Search the shop']", 1024)
    assert all(abs(a - b) <= 2 for a, b in zip(steps[0]["screenshot"]["box"], search))
    assert not is_cover(mean_colour(image_of(daemon_proc, steps[0]), search))
    assert steps[2]["screenshot"]["box"] is None               # done acts on no element
    # taken while the scripted policy decided; what the step waited for it is recorded
    assert all(s["screenshot"]["waited_ms"] >= 0 and s["screenshot"]["capture_ms"] > 0
               for s in steps)

    text = nightloop("episodes", "show", str(episode["id"]), "--db", str(daemon_proc.db)).stdout
    assert f"screenshot: {episode['id']}/0.jpg (1024×" in text
    assert "kB, 2 secret fields painted over)" in text

    folder = Path(f"{daemon_proc.db}-screenshots") / str(episode["id"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in folder.iterdir()} == {0o600}
    nightloop("episodes", "delete", str(episode["id"]), "--yes", "--db", str(daemon_proc.db))
    assert not folder.exists()


@pytest.mark.browser
def test_a_typed_password_is_painted_over_in_the_next_steps(browser, daemon_proc, pages_url):
    episode = run(daemon_proc, f"{pages_url}/form.html",
                  'fill "Password" with "hunter2-long-secret"; fill "Name" with "Ada"; done')
    before, after = episode["steps"][0], episode["steps"][1]
    assert before["screenshot"]["covered"] == 0                 # nothing typed yet
    assert after["screenshot"]["covered"] == 1
    box = page_box(agent_tab(browser, "form.html"), "#password", after["screenshot"]["width"])
    assert is_cover(mean_colour(image_of(daemon_proc, after), box))
    assert not is_cover(mean_colour(image_of(daemon_proc, before), box))


@pytest.mark.browser
def test_screenshots_off_takes_none(browser, daemon_proc, pages_url):
    daemon_proc.stop()
    daemon_proc.start("--screenshots", "off")
    wait_until(lambda: '"browser_connected": true' in nightloop(
        "status", "--json", *daemon_proc.args(), check=False).stdout, timeout=20,
        what="the extension to reconnect")
    episode = run(daemon_proc, f"{pages_url}/form.html", 'fill "Name" with "Ada"; done')
    assert [s.get("screenshot") for s in episode["steps"]] == [None, None]
    assert not Path(f"{daemon_proc.db}-screenshots").exists()


def test_a_picture_the_browser_could_not_take_says_why_and_writes_nothing(tmp_path):
    async def go() -> None:
        store = await Store.open(tmp_path / "s.db")
        try:
            camera = Camera(browser=None, store=store)
            assert camera.keep(1, 0, {"skipped": "the tab was not in front of its window"}, 3) \
                == {"skipped": "the tab was not in front of its window"}
            assert camera.keep(1, 1, {"image": "not base64!"}, 3) == \
                {"skipped": "the browser sent a malformed image"}
            assert camera.keep(1, 2, {"image": "/9j/", "width": 4, "height": 3,
                                      "boxes": {"3": [1, 2, 3, 4]}}, 3)["box"] == [1, 2, 3, 4]
            assert sorted(p.name for p in (tmp_path / "s.db-screenshots" / "1").iterdir()) == \
                ["2.jpg"]
            assert (await camera._take(None, []))["skipped"] == "the browser named no tab"
        finally:
            await store.close()
    run_async(go())


def test_a_screenshot_name_cannot_leave_its_folder(tmp_path):
    shots = Screenshots(tmp_path / "n.db")
    name = shots.write(7, 0, b"jpeg")
    assert shots.read(name) == b"jpeg"
    assert shots.read("../../etc/passwd") is None
    with pytest.raises(ValueError):
        shots.path("../n.db")


@pytest.mark.browser
def test_recorded_and_replayed_steps_keep_screenshots_too(browser, daemon_proc, pages_url):
    seen = {}

    def contact(page):
        seen["name"], seen["send"] = (page_box(page, s, 1024) for s in ("#name", "button"))
        page.click("#name")
        page.keyboard.type("Ada")
        # a person's pace, not a wait for an event: Chrome takes two pictures a second, so
        # the picture before a click faster than that shows the page after it
        page.wait_for_timeout(700)
        page.click("text=Send")
        page.wait_for_selector("text=Thanks Ada")

    record_by_hand(browser.context, browser.extension_id, f"{pages_url}/form.html",
                   'Send the form as "Ada"', contact)
    wait_until(lambda: show(daemon_proc, 1)["status"] == "done", what="the demonstration")
    demo = show(daemon_proc, 1)
    assert [s["action"]["action"] for s in demo["steps"]] == ["fill", "click", "done"]
    fill, send = (s["screenshot"] for s in demo["steps"][:2])
    assert fill["file"] == "1/0.jpg" and send["file"] == "1/1.jpg"
    for shot, box in ((fill, seen["name"]), (send, seen["send"])):
        assert all(abs(a - b) <= 2 for a, b in zip(shot["box"], box))

    replayed = follow("replay", "1", *daemon_proc.args(), timeout=60)
    steps = show(daemon_proc, replayed["id"])["steps"]
    assert [s["mode"] for s in steps] == ["replayed"] * 4           # fill, click, wait, done
    assert [s["screenshot"]["file"] for s in steps] == [f"{replayed['id']}/{i}.jpg"
                                                        for i in range(4)]
