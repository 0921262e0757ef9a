"""The harness evaluation and practice share: an endpoint of their own (in this process, on a
free port) and a headless Chromium with a fresh profile and the extension paired to it.

Nothing a harness does reaches the user's windows, logins or running daemon: its browser is a
new profile, and its episodes go to the store it is given.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from daemon.bridge.endpoint import Endpoint
from daemon.bridge.launch import launch_with_playwright
from daemon.bridge.pairing import extension_origin, load_or_create_token
from daemon.core.settings import config_dir
from daemon.core.store import Store

CONNECT_TIMEOUT = 20.0      # seconds for the extension to connect after the browser started


@contextlib.asynccontextmanager
async def harness(db: Path, step_timeout: float,
                  headless: bool = True) -> AsyncIterator[tuple[Endpoint, Store]]:
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
                    await endpoint.connected(CONNECT_TIMEOUT)
                    yield endpoint, store
                finally:
                    await context.close()
    finally:
        await endpoint.close()
        await store.close()
