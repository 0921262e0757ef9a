"""Chrome stops an MV3 service worker when it is idle, and may at any time: with the real
daemon, extension and Chromium, the worker is stopped through the DevTools protocol mid-episode;
the extension reconnects by itself and the episode goes on to its end."""

from __future__ import annotations

import json
import threading
import time

import pytest
from conftest import follow, nightloop, wait_until

pytestmark = pytest.mark.browser


def stop_workers(browser) -> None:
    """What Chrome does to an idle worker, asked through the DevTools protocol."""
    page = browser.context.pages[0]
    session = browser.context.new_cdp_session(page)
    session.send("ServiceWorker.enable")
    session.send("ServiceWorker.stopAllWorkers")
    session.detach()


def connected(daemon_proc) -> bool:
    return json.loads(nightloop("status", "--json", *daemon_proc.args()).stdout)[
        "browser_connected"]


def test_a_stopped_service_worker_reconnects_and_the_episode_goes_on(browser, daemon_proc,
                                                                   pages_url):
    log = daemon_proc.log
    seen = len(log.read_text())
    result: dict = {}
    run = threading.Thread(target=lambda: result.update(follow(
        "run", *daemon_proc.args(), "--url", f"{pages_url}/form.html",
        'fill "Name" with "Ada"; wait 4; fill "Email" with "ada@example.com"; done',
        timeout=120)))
    run.start()
    # A step is logged when it ends: once the first is, the four-second wait has begun.
    wait_until(lambda: "step 0: fill" in log.read_text()[seen:], timeout=30,
               what="the episode to reach its wait")
    t0 = time.monotonic()
    stop_workers(browser)
    wait_until(lambda: "browser disconnected" in log.read_text()[seen:], timeout=10,
               what="the worker to stop")
    run.join(90)
    assert result["status"] == "done", result
    assert [s["ok"] for s in result["streamed"]] == [True, True, True, True]
    assert time.monotonic() - t0 < 60              # back by its alarm, no user action
    after = log.read_text()[seen:]
    assert after.index("browser disconnected") < after.rindex("browser connected")
    assert connected(daemon_proc)
