"""The daemon's side of the extension bridge: a request waits for its reply without hiding a
cancellation from whoever cancels it (a cycle's phase cap, Stop), and waits for an extension
whose service worker Chrome stopped to reconnect."""

from __future__ import annotations

import asyncio

import pytest
from conftest import run_async

from daemon.agent.episode import BrowserError
from daemon.bridge.extension_browser import ExtensionBrowser
from daemon.core import protocol as p


def test_a_cancellation_landing_as_the_reply_arrives_is_not_lost():
    """Python 3.11's `wait_for` returns the result and drops a cancellation that lands as the
    awaited future completes (cpython#86296): a cycle's practice, cut at its share, went on
    for 23 minutes where its share was 13.5. The reply is now awaited under asyncio.timeout."""
    class Connection:
        async def send(self, message):
            browser.resolve(p.ProbeResult(message.request_id, True, result={}))
            asyncio.current_task().cancel()         # the cap's cancel, at that very moment

    browser = ExtensionBrowser(lambda: Connection(), timeout=5)

    async def probe_then_go_on() -> str:
        await browser.probe(1, "state")
        await asyncio.sleep(0)
        return "went on"
    with pytest.raises(asyncio.CancelledError):
        run_async(probe_then_go_on())


class Extension:
    """A stand-in for the extension's connection (this file only): answers each request, or
    disconnects on the request named in `drop` (its pending reply is lost)."""

    def __init__(self, browser_of, drop: str | None = None):
        self.browser_of, self.drop, self.seen = browser_of, drop, []

    async def send(self, message):
        self.seen.append(message.type)
        browser = self.browser_of()
        if message.type == self.drop:
            self.drop = None
            connected[0] = None                      # the worker stops: the socket closes
            browser.fail_all("the browser disconnected")
            return
        reply = p.Observation(message.request_id, 3, {"url": "http://x/", "elements": []}) \
            if message.type == "observe" else p.ActionResult(message.request_id, True, 3)
        asyncio.get_running_loop().call_soon(browser.resolve, reply)


connected: list = [None]


def test_a_stopped_worker_is_waited_for_and_a_lost_observation_asked_for_again():
    browser = ExtensionBrowser(lambda: connected[0], timeout=5, reconnect=5)
    extension = Extension(lambda: browser, drop="observe")

    async def go():
        connected[0] = extension
        back = asyncio.get_running_loop().call_later(0.5, connected.__setitem__, 0, extension)
        tab, observation = await browser.observe(None)      # lost, then asked again
        back.cancel()
        return tab, observation.url
    assert run_async(go()) == (3, "http://x/") and extension.seen == ["observe", "observe"]


def test_an_action_lost_in_a_disconnect_fails_its_step_and_is_not_sent_again():
    from daemon.core.actions import Action
    browser = ExtensionBrowser(lambda: connected[0], timeout=5, reconnect=0.5)
    extension = Extension(lambda: browser, drop="act")

    async def go():
        connected[0] = extension
        outcome = await browser.act(3, Action("click", {"id": 1}))
        return outcome
    outcome = run_async(go())
    assert (outcome.ok, outcome.error) == (False, "the browser disconnected")
    assert extension.seen == ["act"]
    with pytest.raises(BrowserError, match="waited 0.5 s for the extension to reconnect"):
        run_async(browser.observe(3))                        # and it never came back
