"""The daemon's side of the extension bridge: a request waits for its reply without hiding a
cancellation from whoever cancels it (a cycle's phase cap, Stop)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import run_async

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
