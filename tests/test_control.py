"""Starting, pairing and stopping: the launchers pair by themselves, Stop ends an episode, and a
misbehaving browser (silent, wrong replies, malformed observations) fails an episode cleanly."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest
from conftest import (
    NIGHTLOOP,
    DaemonProcess,
    free_port,
    nightloop,
    run_async,
    wait_until,
)
from websockets.asyncio.client import connect

from daemon.bridge.pairing import extension_origin, load_or_create_token
from daemon.core.protocol import PROTOCOL_VERSION
from daemon.core.settings import config_dir


def browser_connected(port: int) -> bool:
    out = nightloop("status", "--json", "--port", str(port), check=False).stdout
    return bool(out) and json.loads(out).get("browser_connected") is True


@pytest.mark.browser
def test_daemon_with_browser_starts_a_paired_headless_chromium(home):
    proc = DaemonProcess(free_port(), home / "s.db", home / "d.log")
    proc.start("--browser", "--profile", str(home / "profile"))
    try:
        wait_until(lambda: browser_connected(proc.port), timeout=30, what="the browser")
        log = proc.log.read_text()
        assert "starting the browser headless" in log or "No display found" in log
        assert (home / "profile" / "nightloop-extension" / "pairing.json").exists()
    finally:
        proc.stop()
    assert "nightloop daemon stopping" in proc.log.read_text()


@pytest.mark.browser
def test_the_browser_command_pairs_with_a_running_daemon(daemon_proc, home):
    chromium = subprocess.Popen([NIGHTLOOP, "browser", "--headless", "--profile",
                                 str(home / "own-profile"), *daemon_proc.args()],
                                stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: browser_connected(daemon_proc.port), timeout=30, what="the browser")
    finally:
        chromium.terminate()
        chromium.wait(15)
    wait_until(lambda: not browser_connected(daemon_proc.port), timeout=15,
               what="the daemon to notice the browser left")


@pytest.mark.browser
def test_stop_from_the_cli_and_from_the_popup(browser, daemon_proc, pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/slow.html")
    runner = subprocess.Popen([NIGHTLOOP, "run", *daemon_proc.args(), "--json",
                               'fill "First" with "x"; wait 30; fill "Second" with "y"'],
                              stdout=subprocess.PIPE, text=True)
    wait_until(lambda: page.locator("#a").input_value() == "x",
               what="the first step to run (the episode now waits)")
    started = time.monotonic()
    assert "asked episode 1 to stop" in nightloop("stop", *daemon_proc.args()).stdout
    lines = runner.communicate(timeout=15)[0].splitlines()
    episode = json.loads(lines[-1])["episode"]
    assert episode["status"] == "stopped" and time.monotonic() - started < 5
    assert runner.returncode == 6                       # the exit status says: stopped
    assert [json.loads(line)["step"]["index"] for line in lines[:-1]] == [0, 1]  # streamed
    assert page.locator("#b").input_value() == ""      # the step after the wait never ran

    popup = browser.popup()
    wait_until(lambda: popup.text_content("#connection") == "connected", what="popup")
    popup.fill("#task", "wait 30; done")
    popup.click("#run")
    popup.wait_for_selector("#stop:not([disabled])")
    popup.click("#stop")
    popup.wait_for_selector("#finished:not([hidden])", timeout=10_000)
    assert popup.text_content("#outcome") == "Finished: stopped"


def _silent(request):
    return None


def _wrong_type(request):
    return {"type": "action_result", "request_id": request["request_id"], "ok": True}


def _malformed(request):
    return {"type": "observation", "request_id": request["request_id"],
            "observation": {"url": "http://x/", "elements": [{"id": "seven"}]}}


@pytest.mark.parametrize("answer, error", [
    (_silent, "the browser did not answer 'observe' within 1 s"),
    (_wrong_type, "the browser answered 'observe' with 'action_result'"),
    (_malformed, "the extension sent a malformed observation: "
                 "observation.elements[0].id must be int, got str"),
], ids=["silent", "wrong-type", "malformed"])
@pytest.mark.process
def test_a_misbehaving_browser_fails_the_episode_cleanly(home, answer, error):
    proc = DaemonProcess(free_port(), home / "s.db", home / "d.log").start("--step-timeout", "1")
    token = load_or_create_token(config_dir())

    async def fake_extension(ready: asyncio.Event, stop: asyncio.Event):
        """Pairs as the extension, then answers requests with `answer` (None: silence)."""
        async with connect(f"ws://127.0.0.1:{proc.port}/", origin=extension_origin()) as ws:
            await ws.send(json.dumps({"type": "hello", "protocol": PROTOCOL_VERSION,
                                      "token": token, "client": "extension"}))
            await ws.recv()
            ready.set()
            while not stop.is_set():
                try:
                    request = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except asyncio.TimeoutError:
                    continue
                reply = answer(request) if request["type"] == "observe" else None
                if reply:
                    await ws.send(json.dumps(reply))

    async def go():
        ready, stop = asyncio.Event(), asyncio.Event()
        ext = asyncio.create_task(fake_extension(ready, stop))
        await ready.wait()
        run = await asyncio.create_subprocess_exec(
            NIGHTLOOP, "run", "--port", str(proc.port), "--json", "done",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(run.communicate(), 20)
        stop.set()
        await ext
        assert run.returncode == 5                      # the exit status says: failed
        return json.loads(out.splitlines()[-1])["episode"]

    try:
        episode = run_async(go())
        assert episode["status"] == "failed" and episode["error"] == error
        assert json.loads(nightloop("status", "--json", "--port", str(proc.port)).stdout)[
            "running"] is True
    finally:
        proc.stop()
