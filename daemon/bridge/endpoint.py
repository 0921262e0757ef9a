"""The WebSocket endpoint on 127.0.0.1 the extension connects to.

Every frame goes through `protocol.Session` (origin, pairing token, validation); before pairing
frames are capped at HELLO_FRAME_BYTES and at most MAX_UNPAIRED connections wait. The endpoint
itself answers pings and routes the extension's replies to its `ExtensionBrowser`; any other
message goes to `handle`, which a bare endpoint (the task harness) refuses and the daemon
(`daemon.service.server`) overrides. Nothing a client sends can crash it: a bad frame gets an
``error`` reply, failed pairing closes that one connection.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from http import HTTPStatus
from importlib.metadata import version

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from daemon.agent.episode import BrowserError
from daemon.core import protocol as p
from daemon.core.errors import InvalidMessage, NightloopError, Refused

from .extension_browser import RECONNECT_SECONDS, ExtensionBrowser

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0        # seconds a new connection has to say hello
HELLO_FRAME_BYTES = 64 * 1024   # a frame before pairing (hello is tiny); after it, max_frame_bytes
MAX_UNPAIRED = 8            # connections waiting to pair at once; more are refused (503)
LOGGED_CHARS = 120          # of a refused peer's text in the log
DAEMON_AGENT = f"nightloop/{version('nightloop')}"


@dataclass(eq=False)
class Client:
    ws: ServerConnection
    kind: str

    async def send(self, message: p.Message) -> None:
        try:
            await self.ws.send(p.encode(message))
        except ConnectionClosed:
            pass    # the client left; it will be unregistered by its own handler


class Endpoint:
    def __init__(self, *, token: str, extension_origin: str, host: str = "127.0.0.1",
                 port: int, step_timeout: float, max_frame_bytes: int = p.MAX_FRAME_BYTES,
                 reconnect: float = RECONNECT_SECONDS):
        self.token = token
        self.extension_origin = extension_origin
        self.host, self.port = host, port
        self.max_frame_bytes = max_frame_bytes
        self.clients: set[Client] = set()
        self.extension: Client | None = None
        self._has_extension = asyncio.Event()
        self.browser = ExtensionBrowser(lambda: self.extension, step_timeout, reconnect)
        self._server: Server | None = None
        self._unpaired = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (raises OSError when the port is taken)."""
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._check_request,
            max_size=min(HELLO_FRAME_BYTES, self.max_frame_bytes), ping_interval=20,
            ping_timeout=20)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("listening on ws://%s", self.address)

    async def close(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def connected(self, timeout: float) -> None:
        """Wait until the extension is connected; BrowserError after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._has_extension.wait()
        except TimeoutError:
            raise BrowserError(f"the extension did not connect within {timeout:g} s") from None

    # -- connections ----------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse at the handshake: a web page's origin (or more than one Origin header), and
        a connection beyond MAX_UNPAIRED waiting to pair."""
        origins = request.headers.get_all("Origin")
        if len(origins) > 1:
            log.warning("refused a connection with %d Origin headers", len(origins))
            return connection.respond(HTTPStatus.FORBIDDEN, "one Origin header at most\n")
        if origins and origins[0] != self.extension_origin:
            log.warning("refused a connection from origin %r", origins[0][:LOGGED_CHARS])
            return connection.respond(HTTPStatus.FORBIDDEN,
                                      f"origin {origins[0][:LOGGED_CHARS]} is not allowed\n")
        if self._unpaired >= MAX_UNPAIRED:
            log.warning("refused a connection: %d already waiting to pair", self._unpaired)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                                      "too many connections waiting to pair\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        session = p.Session(self.token, self.extension_origin, ws.request.headers.get("Origin"))
        self._unpaired += 1
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                session.receive(await ws.recv())
        except (Refused, TimeoutError) as exc:
            reason = (str(exc) or "no hello within %g s" % HELLO_TIMEOUT)[:LOGGED_CHARS]
            log.warning("refused a client: %s", reason)
            await ws.close(1008, reason)
            return
        except ConnectionClosed:
            return
        finally:
            self._unpaired -= 1
        ws.protocol.max_message_size = self.max_frame_bytes     # paired: full-size frames
        client = Client(ws, session.client)
        self.clients.add(client)
        if client.kind == "extension":
            self.extension = client
            self._has_extension.set()
            log.info("browser connected")
        await client.send(p.Welcome(p.PROTOCOL_VERSION, DAEMON_AGENT, self.running_episode()))
        try:
            async for frame in ws:
                try:
                    message = session.receive(frame)
                except InvalidMessage as exc:
                    await client.send(p.Error(str(exc), p.request_id_of(frame)))
                    continue
                await self._dispatch(client, message)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            if self.extension is client:
                self.extension = None
                self._has_extension.clear()
                self.browser.fail_all("the browser disconnected")
                log.info("browser disconnected")

    async def broadcast(self, message: p.Message, *, skip: Client | None = None) -> None:
        await asyncio.gather(*(c.send(message) for c in list(self.clients) if c is not skip))

    # -- messages -------------------------------------------------------------------------

    async def _dispatch(self, client: Client, message: p.Message) -> None:
        rid = getattr(message, "request_id", None)
        try:
            if isinstance(message, (p.Observation, p.ActionResult, p.ProbeResult)):
                self.browser.resolve(message)
            elif isinstance(message, p.Ping):
                await client.send(p.Pong())
            else:
                await self.handle(client, message)
        except NightloopError as exc:      # a request refused, a browser that failed it
            await client.send(p.Error(str(exc), rid, exc.code))
        except Exception:   # a bug must not take the endpoint down with it
            log.exception("error while handling %s", message.type)
            await client.send(p.Error(f"internal error while handling {message.type!r}; "
                                      "see the daemon log", rid))

    async def handle(self, client: Client, message: p.Message) -> None:
        """Act on a message the endpoint does not answer itself; any NightloopError refuses it
        (the client gets an `error` reply)."""
        raise InvalidMessage(f"this endpoint does not handle {message.type!r}")

    def running_episode(self) -> dict | None:
        """The running episode as ``welcome`` reports it to a new client."""
        return None
