"""What a source of tasks with ground truth gives the evaluation runner (evaluation.py): pages
to serve, a way to open and start one (task, seed) in a tab, and the verdict read from the page.

Two exist: MiniWoB++ (miniwob.py), whose page ends its own episode, and the bundled sites
(sites/), where the agent ends it and the site's recorded state is checked at the end.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon.agent.episode import BrowserError
from daemon.bridge.extension_browser import ExtensionBrowser
from daemon.core.actions import Action

READY_TIMEOUT = 10.0        # seconds for a task page to say it is ready


@dataclass
class Outcome:
    """The ground truth of one attempt, read from its page."""
    success: bool
    done: bool                      # the page's own episode ended (MiniWoB++), or the site's
                                    # state could be read at the end (sites)
    raw_reward: float               # the page's own reward (MiniWoB++: in [-1, 1])
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Attempt(Protocol):
    """One (task, seed), opened and started in its tab."""
    tab_id: int
    url: str
    utterance: str                  # the task in words: the episode's task
    ends_itself: bool               # the page ends the episode (checked after every step)

    async def ended(self, tab_id: int | None) -> bool:
        """Whether the page's own episode is over (read after each step when ends_itself)."""

    async def outcome(self) -> Outcome:
        """The ground truth, once the episode has ended."""


class Benchmark(Protocol):
    name: str                       # "miniwob", "sites": recorded with each ground truth

    def serve(self) -> AbstractContextManager[str]:
        """Serve the pages for the duration; yields their base URL."""

    async def open(self, browser: ExtensionBrowser, base_url: str, task: str,
                   seed: int) -> Attempt:
        """Open `task` for `seed` in a new tab and start it (BrowserError when it cannot)."""


@dataclass
class Opened:
    """A task page opened and started in its own tab: what every benchmark's attempt holds."""
    browser: ExtensionBrowser
    tab_id: int
    url: str
    utterance: str


Probe = tuple[str, dict]             # a probe's name and its arguments


async def open_started(browser: ExtensionBrowser, url: str, start: Probe | None,
                       ready: Probe) -> tuple[int, dict]:
    """A new tab showing `url`, started with the `start` probe (if any), and the page's state
    once it says it is ready: the `start` probe's answer, else the `ready` probe's, asked until
    it does (the tab is closed again when it never does)."""
    opened = await browser.act(None, Action("goto", {"url": url}))
    if not opened.ok or opened.tab_id is None:
        raise BrowserError(f"could not open {url}: {opened.error}")
    tab_id = opened.tab_id
    try:
        state = await browser.probe(tab_id, start[0], **start[1]) if start else {}
        if state.get("error"):
            raise BrowserError(f"{start[0]}: {state['error']}")
        return tab_id, state if state.get("ready") else \
            await until_ready(browser, tab_id, ready[0], **ready[1])
    except BrowserError:
        await browser.close_tab(tab_id)
        raise


async def until_ready(browser: ExtensionBrowser, tab_id: int, probe: str,
                      **args: object) -> dict:
    """The page's state from `probe`, once it says ``ready`` (BrowserError after
    READY_TIMEOUT seconds)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        state = await browser.probe(tab_id, probe, **args)
        if state.get("error"):
            raise BrowserError(f"{probe}: {state['error']}")
        if state.get("ready"):
            return state
        if time.monotonic() > deadline:
            raise BrowserError(f"the task page was not ready within {READY_TIMEOUT:g} s")
        await asyncio.sleep(0.1)
