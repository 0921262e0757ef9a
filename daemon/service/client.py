"""A client of the running daemon, for the CLI (and tests): pair, send, await replies."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from daemon.core import protocol as p
from daemon.core.errors import NightloopError


class DaemonUnavailable(NightloopError):
    """No daemon answers at the address, or it refused us."""


class DaemonError(NightloopError):
    """The daemon answered a request with an error."""


class DaemonClient:
    def __init__(self, ws: ClientConnection, welcome: p.Welcome):
        self._ws = ws
        self.welcome = welcome
        self._ids = itertools.count(1)

    def next_id(self) -> str:
        return f"c{next(self._ids)}"

    async def send(self, message: p.Message) -> None:
        await self._ws.send(p.encode(message))

    async def messages(self) -> AsyncIterator[p.Message]:
        """Every message the daemon sends, until it closes the connection."""
        try:
            async for frame in self._ws:
                yield p.decode(frame)
        except ConnectionClosed as exc:
            raise DaemonUnavailable(f"the daemon closed the connection ({exc})") from None
        raise DaemonUnavailable("the daemon closed the connection")

    async def request(self, message: p.Message) -> p.Message:
        """Send a message with a fresh request_id and return the reply carrying that id."""
        rid = self.next_id()
        message.request_id = rid   # type: ignore[attr-defined]
        await self.send(message)
        async for reply in self.messages():
            if getattr(reply, "request_id", None) != rid:
                continue
            if isinstance(reply, p.Error):
                raise DaemonError(reply.message)
            return reply
        raise AssertionError("unreachable")


@asynccontextmanager
async def connected(port: int, token: str, *, host: str = "127.0.0.1",
                    timeout: float = 5.0) -> AsyncIterator[DaemonClient]:
    """Connect and pair as a CLI client; raise DaemonUnavailable with a hint when we can't."""
    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            ws = await connect(f"ws://{where}/", max_size=p.MAX_FRAME_BYTES,
                               open_timeout=timeout)
    except (OSError, TimeoutError, InvalidStatus) as exc:
        raise DaemonUnavailable(f"no nightloop daemon at {where} ({exc}); "
                                "start one with `nightloop daemon`") from None
    try:
        await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, token, "cli")))
        async with asyncio.timeout(timeout):
            welcome = p.decode(await ws.recv())
        if not isinstance(welcome, p.Welcome):
            raise DaemonUnavailable(f"unexpected first message {welcome.type!r} from {where}")
    except ConnectionClosed as exc:
        await ws.close()
        reason = exc.rcvd.reason if exc.rcvd else "closed"
        raise DaemonUnavailable(f"the daemon at {where} refused us: {reason}") from None
    except asyncio.TimeoutError:
        await ws.close()
        raise DaemonUnavailable(f"the daemon at {where} did not answer") from None
    try:
        yield DaemonClient(ws, welcome)
    finally:
        await ws.close()
