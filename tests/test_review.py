"""Reviewing episodes: the HTML report (checked in Chromium as a person would see it), verdicts
from the command line, and `nightloop review` through a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
from conftest import NIGHTLOOP, follow, nightloop, run_async
from PIL import Image, ImageStat

from daemon.cli.report import render
from daemon.core.screenshots import Screenshots
from daemon.core.store import Episode, Reward, Step, Store
from judge.reward import reward_that_counts

TASK = 'fill "Name" with "Ada"; fill "Password" with "pa55-word-long"; click "Send"'


def run(daemon_proc, url: str, task: str) -> int:
    return follow("run", "--yes", "--allow-secret-in-task", *daemon_proc.args(), "--url", url,
                  task, timeout=60)["id"]


def rewards(db: Path, episode_id: int) -> list:
    async def go():
        async with await Store.open(db, recover=False) as store:
            return await store.rewards(episode_id)
    return run_async(go())


@pytest.mark.browser
def test_the_report_shows_every_step_with_its_screenshot_and_opens_offline(
        browser, daemon_proc, pages_url, tmp_path):
    first = run(daemon_proc, f"{pages_url}/form.html", TASK)
    second = run(daemon_proc, f"{pages_url}/payment.html", 'click "Terms"; done')
    nightloop("episodes", "rate", str(first), "up", "--note", "sent as asked",
              "--db", str(daemon_proc.db))
    out = tmp_path / "report.html"
    printed = nightloop("episodes", "report", str(first), str(second), "--out", str(out),
                        "--db", str(daemon_proc.db)).stdout
    assert printed.strip() == f"wrote {out} (2 episodes)"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    html = out.read_text()
    assert "hunter" not in html and "pa55-word-long" not in html      # the typed secret: masked

    page = browser.context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(out.as_uri())
    assert {u.split(":", 1)[0] for u in requests} <= {"file", "data"}, requests  # nothing else
    # an index of both, then each episode with its task, outcome and rewards
    assert page.locator("table.index tr").count() == 3
    text = page.inner_text("body")
    assert TASK.replace("pa55-word-long", "•••") in text               # as stored: redacted
    assert "user +1.00" in text and "note: sent as asked" in text
    assert 'type "Ada" into textbox "Name"' in text and 'click button "Send"' in text
    assert 'type "•••" into textbox "Password"' in text
    images = page.locator("img")
    assert images.count() == 6                  # fill, fill, click, done + click, done
    assert all(images.nth(i).evaluate("i => i.complete && i.naturalWidth === 1024")
               for i in range(images.count()))

    # the outline sits on the acted-on element: the Name field in the first screenshot
    step = json.loads(nightloop("episodes", "show", str(first), "--json",
                                "--db", str(daemon_proc.db)).stdout)["steps"][0]
    x, y, w, h = step["screenshot"]["box"]
    img = images.nth(0).bounding_box()
    outline = page.locator("li.step").nth(0).locator(".target").bounding_box()
    scale = img["width"] / step["screenshot"]["width"]
    assert abs(outline["x"] - (img["x"] + x * scale)) <= 2
    assert abs(outline["width"] - w * scale) <= 2 and abs(outline["height"] - h * scale) <= 2

    # as a person sees it: the first step's picture with an orange outline on it
    picture = tmp_path / "seen.png"
    first_step = page.locator("li.step").nth(0)
    first_step.screenshot(path=str(picture))
    origin = first_step.bounding_box()
    seen = Image.open(picture).convert("RGB")
    left, top = outline["x"] - origin["x"], outline["y"] - origin["y"]
    r, g, b = ImageStat.Stat(seen.crop((int(left), int(top) + 4, int(left) + 3,
                                        int(top + outline["height"]) - 4))).mean
    assert r > 200 and 90 < g < 150 and b < 60, (r, g, b)         # the accent, #e8710a


@pytest.mark.process
def test_a_verdict_from_the_command_line_is_the_reward_that_counts(home):
    db = home / "r.db"

    async def seed():
        async with await Store.open(db) as store:
            episode = await store.start_episode(Episode("Say hi", "cli"))
            await store.add_step(Step(episode.id, 0, {"action": "done"}, True))
            await store.finish_episode(episode.id, "done")
    run_async(seed())
    nightloop("episodes", "rate", "1", "up", "--db", str(db))
    nightloop("episodes", "rate", "1", "down", "--note", "it said hi twice", "--db", str(db))
    counted = reward_that_counts(rewards(db, 1))
    assert (counted.kind, counted.value, counted.details) == \
        ("user", -1.0, {"client": "cli", "note": "it said hi twice"})
    missing = nightloop("episodes", "rate", "7", "up", "--db", str(db), check=False)
    assert missing.returncode == 1 and "there is no episode 7" in missing.stderr
    bad = nightloop("episodes", "rate", "1", "maybe", "--db", str(db), check=False)
    assert bad.returncode == 2 and "'maybe' is not one of 'up', 'down'" in bad.stderr


def seed_episodes(db: Path) -> None:
    """Four finished episodes: two from the toolbar, a practice one, one already rated."""
    async def go():
        async with await Store.open(db) as store:
            for task, source in (("Book a train to Lyon", "toolbar"),
                                 ("Archive the newsletter", "toolbar"),
                                 ("click-test", "practice"), ("Rated already", "toolbar")):
                episode = await store.start_episode(Episode(task, source))
                await store.add_step(Step(episode.id, 0, {"action": "click", "id": 3}, True,
                                          target={"role": "button", "name": "Go"}))
                await store.add_step(Step(episode.id, 1, {"action": "done"}, True))
                await store.finish_episode(episode.id, "done")
            await store.add_reward(Reward.verdict(4, True, "popup"))
    run_async(go())


class Terminal:
    """`nightloop review` on a real pseudo-terminal: keys go in one by one, no Enter."""

    def __init__(self, *args: str, env: dict[str, str]):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([NIGHTLOOP, "review", *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.seen, self.cursor = "", 0

    def expect(self, text: str, timeout: float = 20) -> str:
        """Wait until `text` shows after what the last expect matched; what came before it."""
        deadline = time.monotonic() + timeout
        while text not in self.seen[self.cursor:]:
            ready, _, _ = select.select([self.master], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"no {text!r} on the terminal; it shows:\n{self.seen}")
            try:
                self.seen += os.read(self.master, 4096).decode(errors="replace")
            except OSError:             # the program ended
                raise AssertionError(f"no {text!r}; the terminal showed:\n{self.seen}") from None
        at = self.seen.index(text, self.cursor)
        before, self.cursor = self.seen[self.cursor:at], at + len(text)
        return before

    def key(self, key: str) -> None:
        """Press `key` once the review asks for one (a key typed earlier is dropped, as in
        any terminal program that switches to raw input)."""
        self.expect("quit > ")
        os.write(self.master, key.encode())

    def close(self) -> int:
        code = self.proc.wait(20)
        os.close(self.master)
        return code


@pytest.fixture
def opened(tmp_path, monkeypatch) -> Path:
    """The default browser ($BROWSER) as a script that notes each URL it is asked to open in
    the file this returns."""
    noted = tmp_path / "opened.txt"
    browser = tmp_path / "fake-browser"
    browser.write_text(f"#!/bin/sh\necho \"$1\" >> {noted}\n")
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(browser))
    return noted


@pytest.mark.process
def test_review_goes_through_unrated_episodes_newest_first_one_key_each(home, tmp_path, opened):
    db = home / "r.db"
    seed_episodes(db)
    env = {**os.environ, "TMPDIR": str(tmp_path)}

    term = Terminal("--db", str(db), env=env)              # yours: no practice, no eval
    term.expect("2 episodes to review, newest first.")
    term.expect("[1/2] episode 2")                          # newest first; 4 is rated already
    assert "task: Archive the newsletter" in term.seen and 'click button "Go"' in term.seen
    assert "practice" not in term.seen and "Rated already" not in term.seen
    term.key("x")
    term.expect("press one of y, n, s, o, q (not 'x')")
    term.key("o")
    term.expect("report: ")
    term.key("n")
    term.expect("saved: episode 2 is bad")
    term.expect("task: Book a train to Lyon")
    term.key("y")
    term.expect("rated 2 (1 good, 1 bad), skipped 0")
    assert term.close() == 0

    assert [(r.kind, r.value, r.details["client"]) for r in rewards(db, 2)] == \
        [("user", -1.0, "cli")]
    assert reward_that_counts(rewards(db, 1)).value == 1.0
    report = Path(opened.read_text().strip().removeprefix("file://"))
    assert report.name == "episode-2.html" and "Archive the newsletter" in report.read_text()

    again = Terminal("--source", "toolbar", "--db", str(db), env=env)
    again.expect("nothing to review: every episode that matches has your verdict")
    assert again.close() == 0


@pytest.mark.process
def test_review_takes_notes_and_quits_with_q(home):
    db = home / "r.db"
    seed_episodes(db)
    term = Terminal("--task", "train", "--notes", "--db", str(db), env=dict(os.environ))
    term.expect("task: Book a train to Lyon")
    term.key("n")
    term.expect("note")
    os.write(term.master, b"wrong day\r")
    term.expect("saved: episode 1 is bad")
    term.expect("rated 1 (0 good, 1 bad)")
    assert term.close() == 0
    assert rewards(db, 1)[0].details == {"client": "cli", "note": "wrong day"}

    term = Terminal("--source", "all", "--db", str(db), env=dict(os.environ))
    term.expect("2 episodes to review")                     # 3 (practice) and 2
    term.key("s")
    term.expect("episode 2")
    term.key("q")
    term.expect("rated 0 (0 good, 0 bad), skipped 1")
    assert term.close() == 0


def test_the_report_explains_the_judge_and_escapes_what_pages_wrote(tmp_path):
    episode = {
        "id": 5, "task": "Find <script>alert(1)</script> deals", "source": "toolbar",
        "status": "done", "started_at": "2026-11-30T06:00:00.000Z",
        "ended_at": "2026-11-30T06:00:09.500Z",
        "steps": [{"index": 0, "ok": False, "action": {"action": "click", "id": 4},
                   "error": "element [4] is not in the observation of this page",
                   "observation": {"elements": [{"id": 4, "role": "link", "name": "<b>Deals"}]},
                   "screenshot": {"skipped": "the tab was not in front of its window"}}],
        "rewards": [{"kind": "judge", "value": 0.41, "details": {
            "components": {"flip": 0.81, "progress": 0.2},
            "weights": {"flip": 0.7, "progress": 0.3},
            "flip": {"model": "SmolLM2", "form": "generate", "inferred": ["find deals"]},
            "rules": {"counts": {"executed": 0, "invalid": 1, "ended_by_agent": 1}}}}]}
    html = render([episode], Screenshots(tmp_path / "s.db"))
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "click link &#34;&lt;b&gt;Deals&#34;" in html          # the element, from the page
    assert "= 0.7 × (2 × FLIP 0.81 − 1) + 0.3 × progress +0.20" in html
    assert "what the judge thinks was asked: “find deals”" in html
    assert "progress rules: invalid ×1, ended by agent ×1" in html
    assert "No screenshot: the tab was not in front of its window" in html
    assert "9.5 s" in html and "<script" not in html.split("<body>")[1]


@pytest.mark.process
def test_episodes_report_opens_in_the_default_browser(home, tmp_path, monkeypatch, opened):
    db = home / "r.db"
    seed_episodes(db)
    monkeypatch.chdir(tmp_path)
    out = nightloop("episodes", "report", "2", "--open", "--db", str(db)).stdout
    assert out.strip() == "wrote nightloop-episode-2.html (1 episode)"
    assert opened.read_text().strip() == (tmp_path / "nightloop-episode-2.html").as_uri()
    missing = nightloop("episodes", "report", "2", "9", "--db", str(db), check=False)
    assert missing.returncode == 1 and "there is no episode 9" in missing.stderr
