"""The harness evaluation and practice share: an endpoint of their own (in this process, on a
free port) and a headless Chromium with a fresh profile and the extension paired to it.

Nothing a harness does reaches the user's windows, logins or running daemon: its browser is a
new profile, and its episodes go to the store it is given. With `may_send`, every request that
could change something on a server (any method but GET, HEAD, OPTIONS), from any frame, script
or form, is aborted at the network level unless `may_send(url)` allows it.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from daemon.bridge.endpoint import Endpoint
from daemon.bridge.launch import launch_with_playwright
from daemon.bridge.pairing import extension_origin, load_or_create_token
from daemon.core.settings import config_dir
from daemon.core.store import Store

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 20.0      # seconds for the extension to connect after the browser started
READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


@contextlib.asynccontextmanager
async def harness(db: Path, step_timeout: float, headless: bool = True,
                  may_send: Callable[[str], bool] | None = None
                  ) -> AsyncIterator[tuple[Endpoint, Store]]:
    """An endpoint (its `browser` answers within `step_timeout` seconds) with the extension of
    a fresh headless browser connected, and the store at `db`; both closed on the way out."""
    from playwright.async_api import async_playwright

    store = await Store.open(db, recover=False)
    token = load_or_create_token(config_dir())
    endpoint = Endpoint(token=token, extension_origin=extension_origin(), port=0,
                        step_timeout=step_timeout)
    await endpoint.start()
    try:
        with tempfile.TemporaryDirectory(prefix="nightloop-harness-") as profile:
            async with async_playwright() as pw:
                context = await launch_with_playwright(pw.chromium, Path(profile),
                                                       port=endpoint.port, token=token,
                                                       headless=headless)
                try:
                    if may_send:
                        await context.route("**/*", _guard(may_send))
                    await endpoint.connected(CONNECT_TIMEOUT)
                    yield endpoint, store
                finally:
                    await context.close()
    finally:
        await endpoint.close()
        await store.close()


def _guard(may_send: Callable[[str], bool]):
    """A Playwright route handler: requests that may change a server's state go out only
    where `may_send` allows."""
    async def route(route, request) -> None:
        if request.method in READ_ONLY or may_send(request.url):
            await route.continue_()
        else:
            log.info("practice: blocked %s %s", request.method, request.url[:200])
            await route.abort("blockedbyclient")
    return route
