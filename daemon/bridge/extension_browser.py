"""`ExtensionBrowser`: the agent's `Browser` over the extension's connection to an endpoint.

Requests carry ids; the endpoint hands each reply to `resolve`, which wakes the request that
waits for it. A request with no reply within the timeout, or a reply of the wrong type, is a
`BrowserError`; so is every pending request when the extension disconnects (`fail_all`:
`Disconnected`).

Chrome stops an extension's service worker when it is idle and may stop it at any time; it
starts it again on the next event (the extension's alarm comes every 30 s), and the extension
reconnects. So a request made while no extension is connected waits up to `reconnect`
seconds for it (the `reconnect_grace` setting); an observation lost in a disconnect is asked
for again once it is back (an action is not: whether it ran is unknown, and its step fails
saying so).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from daemon.agent.episode import ActOutcome, BrowserError
from daemon.core import protocol as p
from daemon.core.actions import Action
from daemon.core.errors import InvalidMessage
from daemon.core.observation import Observation

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 45.0        # Chrome restarts a stopped worker within its alarm's 30 s


class Disconnected(BrowserError):
    """The extension disconnected while a request waited for its reply."""


class Connection(Protocol):
    async def send(self, message: p.Message) -> None: ...


class ExtensionBrowser:
    """`connection()`: the extension's connection now, None while none is."""

    def __init__(self, connection: Callable[[], Connection | None], timeout: float,
                 reconnect: float = RECONNECT_SECONDS):
        self._connection = connection
        self._timeout, self._reconnect = timeout, reconnect
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[p.Message]] = {}

    @property
    def connected(self) -> bool:
        """Is an extension connected now?"""
        return self._connection() is not None

    async def request(self, message: p.Observe | p.Act | p.Probe) -> p.Message:
        """Send a request to the extension and await its reply (an Observation, ActionResult
        or ProbeResult); BrowserError if none, or one of the wrong type, comes."""
        client = await self._connected()
        future: asyncio.Future[p.Message] = asyncio.get_running_loop().create_future()
        self._pending[message.request_id] = future
        try:
            await client.send(message)
            async with asyncio.timeout(self._timeout):
                reply = await future
        except TimeoutError:
            raise BrowserError(f"the browser did not answer {message.type!r} "
                               f"within {self._timeout:g} s") from None
        finally:
            self._pending.pop(message.request_id, None)
        expected = {p.Observe: p.Observation, p.Act: p.ActionResult,
                    p.Probe: p.ProbeResult}[type(message)]
        if not isinstance(reply, expected):
            raise BrowserError(f"the browser answered {message.type!r} with {reply.type!r}")
        return reply

    def resolve(self, reply: p.Observation | p.ActionResult | p.ProbeResult) -> None:
        future = self._pending.get(reply.request_id)
        if future is None or future.done():
            log.warning("ignoring a reply to unknown request %r", reply.request_id)
            return
        future.set_result(reply)

    async def _connected(self) -> Connection:
        """The extension's connection, waiting up to `reconnect` seconds for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._reconnect
        while (client := self._connection()) is None:
            if loop.time() >= deadline:
                raise BrowserError(f"no browser is connected (waited {self._reconnect:g} s for "
                                   "the extension to reconnect)")
            await asyncio.sleep(0.2)
        return client

    def fail_all(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(Disconnected(reason))

    def next_id(self) -> str:
        return f"d{next(self._ids)}"

    async def observe(self, tab_id: int | None) -> tuple[int | None, Observation]:
        try:
            reply = await self.request(p.Observe(self.next_id(), tab_id))
        except Disconnected as exc:     # lost on the way: ask again once it is back
            log.info("%s during an observation: asking again once it reconnects", exc)
            reply = await self.request(p.Observe(self.next_id(), tab_id))
        if reply.error or reply.observation is None:
            raise BrowserError(f"the page could not be observed: {reply.error or 'no data'}")
        try:
            return reply.tab_id, Observation.from_json(reply.observation)
        except InvalidMessage as exc:
            raise BrowserError(f"the extension sent a malformed observation: {exc}") from None

    async def act(self, tab_id: int | None, action: Action, *,
                  allow_submit: bool = True) -> ActOutcome:
        """`allow_submit` False: the page stops any form submission the action causes."""
        try:
            reply = await self.request(p.Act(self.next_id(), action.to_json(), tab_id,
                                             allow_submit))
        except BrowserError as exc:
            return ActOutcome(False, tab_id, str(exc))
        return ActOutcome(reply.ok, reply.tab_id, reply.error, reply.detail)

    async def close_tab(self, tab_id: int) -> None:
        """Close a tab; one already gone is fine."""
        try:
            await self.probe(tab_id, "tab.close")
        except BrowserError:
            pass

    async def guard_network(self, sites: Iterable[str]) -> None:
        """From now on, until the browser closes, it sends no request that could change a
        server's state (any method but GET, HEAD, OPTIONS) except to `sites` (host[:port]
        names; a later call replaces them). Enforced in the browser's network stack, so it
        covers a tab from its first request; BrowserError when the extension cannot set it."""
        await self.probe(None, "network.guard", sites=sorted(sites))

    async def probe(self, tab_id: int | None, name: str, **args: object) -> dict:
        """Run a named probe of the extension in a tab (None: a browser probe); BrowserError
        when it fails."""
        reply = await self.request(p.Probe(self.next_id(), name, tab_id, dict(args)))
        if not reply.ok:
            raise BrowserError(f"probe {name} failed: {reply.error}")
        return reply.result or {}
