"""The daemon: a WebSocket server on 127.0.0.1 that runs one episode at a time.

It feeds every frame through `protocol.Session` and dispatches the result. The connected
extension is the agent's browser (`ExtensionBrowser`); CLI clients submit tasks, stop them, ask
for status, and may relay single observe/act requests to the browser. Nothing a client sends can
crash the daemon: bad frames get an ``error`` reply, failed pairing closes that one connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib.metadata import version
from typing import Any, Awaitable, Callable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import protocol as p
from .actions import Action
from .descriptors import describe
from .episode import ActOutcome, BrowserError, Limits, run_episode
from .observation import Observation
from .policy import Policy
from .practice import Rules, rule_for
from .replay import ReplayPolicy
from .store import Episode, Reward, Step, Store
from .wire import InvalidMessage, Refused, to_json

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0        # seconds a new connection has to say hello
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


@dataclass
class Running:
    episode: Episode
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None        # None while the user records a demonstration
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    recorded: int = 0                       # demonstration steps received so far


def step_json(step: Step) -> dict[str, Any]:
    """A step as progress messages carry it: everything but the (large) observation."""
    return {k: v for k, v in to_json(step).items() if k != "observation"}


class ExtensionBrowser:
    """`episode.Browser` over the extension connection: requests with ids, awaited replies."""

    def __init__(self, daemon: Daemon, timeout: float):
        self._daemon = daemon
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[p.Message]] = {}

    async def request(self, message: p.Observe | p.Act | p.Probe) -> p.Message:
        """Send a request to the extension and await its reply (an Observation or an
        ActionResult); BrowserError if none, or one of the wrong type, comes."""
        client = self._daemon.extension
        if client is None:
            raise BrowserError("no browser is connected")
        future: asyncio.Future[p.Message] = asyncio.get_running_loop().create_future()
        self._pending[message.request_id] = future
        try:
            await client.send(message)
            reply = await asyncio.wait_for(future, self._timeout)
        except asyncio.TimeoutError:
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

    def fail_all(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BrowserError(reason))

    def next_id(self) -> str:
        return f"d{next(self._ids)}"

    async def observe(self, tab_id: int | None) -> tuple[int | None, Observation]:
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

    async def probe(self, tab_id: int, name: str, **args: object) -> dict:
        """Run a named probe of the extension in a tab; BrowserError when it fails."""
        reply = await self.request(p.Probe(self.next_id(), tab_id, name, dict(args)))
        if not reply.ok:
            raise BrowserError(f"probe {name} failed: {reply.error}")
        return reply.result or {}


class Daemon:
    def __init__(self, store: Store, policy: Policy, *, token: str, extension_origin: str,
                 host: str = "127.0.0.1", port: int, limits: Limits = Limits(),
                 max_frame_bytes: int = p.MAX_FRAME_BYTES,
                 reload_policy: Callable[[], Awaitable[Policy]] | None = None):
        self.store = store
        self.policy = policy
        self.reload_policy = reload_policy      # builds the policy with the promoted adapter
        self.token = token
        self.extension_origin = extension_origin
        self.host, self.port = host, port
        self.limits = limits
        self.max_frame_bytes = max_frame_bytes
        self.clients: set[Client] = set()
        self.extension: Client | None = None
        self.browser = ExtensionBrowser(self, limits.step_timeout)
        self.running: Running | None = None
        self.idle = asyncio.Event()             # set while no episode runs
        self.idle.set()
        self.idle_since = time.monotonic()      # when the last episode ended
        self.finished: list[Callable[[int], None]] = []   # called with each ended episode's id
        self._server: Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (raises OSError when the port is taken)."""
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._check_origin,
            max_size=self.max_frame_bytes, ping_interval=20, ping_timeout=20)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("listening on ws://%s", self.address)

    async def close(self) -> None:
        """Stop the running episode (it is recorded as interrupted) and the server."""
        if self.running and self.running.task:
            self.running.task.cancel()
            await asyncio.gather(self.running.task, return_exceptions=True)
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    # -- connections ----------------------------------------------------------------------

    def _check_origin(self, connection: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        if origin is not None and origin != self.extension_origin:
            log.warning("refused a connection from origin %r", origin)
            return connection.respond(HTTPStatus.FORBIDDEN, f"origin {origin} is not allowed\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        session = p.Session(self.token, self.extension_origin, ws.request.headers.get("Origin"))
        try:
            session.receive(await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT))
        except (Refused, asyncio.TimeoutError) as exc:
            reason = str(exc) or "no hello within %g s" % HELLO_TIMEOUT
            log.warning("refused a client: %s", reason)
            await ws.close(1008, reason[:120])
            return
        except ConnectionClosed:
            return
        client = Client(ws, session.client)
        self.clients.add(client)
        if client.kind == "extension":
            self.extension = client
            log.info("browser connected")
        await client.send(p.Welcome(p.PROTOCOL_VERSION, DAEMON_AGENT, self._running_json()))
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
                self.browser.fail_all("the browser disconnected")
                log.info("browser disconnected")

    async def broadcast(self, message: p.Message, *, skip: Client | None = None) -> None:
        await asyncio.gather(*(c.send(message) for c in list(self.clients) if c is not skip))

    def _running_json(self) -> dict | None:
        return to_json(self.running.episode) if self.running else None

    # -- messages -------------------------------------------------------------------------

    async def _dispatch(self, client: Client, message: p.Message) -> None:
        rid = getattr(message, "request_id", None)
        try:
            await self._on(client, message)
        except (InvalidMessage, BrowserError) as exc:
            await client.send(p.Error(str(exc), rid))
        except Exception:   # a bug must not take the daemon down with it
            log.exception("error while handling %s", message.type)
            await client.send(p.Error(f"internal error while handling {message.type!r}; "
                                      "see the daemon log", rid))

    async def _on(self, client: Client, message: p.Message) -> None:
        if isinstance(message, p.Task):
            await self._start_episode(client, message)
        elif isinstance(message, p.Replay):
            await self._start_replay(client, message)
        elif isinstance(message, p.RecordStart):
            await self._start_recording(client, message)
        elif isinstance(message, p.RecordStep):
            await self._record_step(message)
        elif isinstance(message, p.RecordStop):
            await self._stop_recording(client, message)
        elif isinstance(message, p.Resume):
            self._running(message.episode_id).resume.set()
        elif isinstance(message, p.Reload):
            await self._reload()
            await client.send(await self.status(message.request_id))
        elif isinstance(message, p.Practice):
            await client.send(await self._practice(message))
        elif isinstance(message, p.Stop):
            self._stop(message)
        elif isinstance(message, p.Feedback):
            await self._feedback(client, message)
        elif isinstance(message, p.Status):
            await client.send(await self.status(message.request_id))
        elif isinstance(message, (p.Observe, p.Act)):
            await self._relay(client, message)
        elif isinstance(message, (p.Observation, p.ActionResult, p.ProbeResult)):
            self.browser.resolve(message)
        elif isinstance(message, p.Ping):
            await client.send(p.Pong())
        else:
            raise InvalidMessage(f"the daemon does not handle {message.type!r}")

    async def _begin(self, client: Client, episode: Episode,
                     request_id: str | None) -> Running:
        """Store a new episode as the running one and tell every client."""
        if self.running:
            raise InvalidMessage(f"episode {self.running.episode.id} is still running; "
                                 "stop it first")
        if self.extension is None:
            raise InvalidMessage("no browser is connected: start one with `nightloop browser`, "
                                 "or load the extension and pair it (`nightloop pair`)")
        running = self.running = Running(await self.store.start_episode(episode))
        self.idle.clear()
        update = p.EpisodeUpdate(to_json(running.episode))
        await client.send(dataclasses.replace(update, request_id=request_id))
        await self.broadcast(update, skip=client)
        return running

    async def _start_episode(self, client: Client, task: p.Task) -> None:
        running = await self._begin(client, Episode(
            task=task.task, source=task.source, start_url=task.url, policy=self.policy.name,
            adapter=self.policy.adapter), task.request_id)
        running.task = asyncio.create_task(self._run(running, task.tab_id, self.policy,
                                                     self.limits))

    async def _start_replay(self, client: Client, replay: p.Replay) -> None:
        source = await self.store.episode(replay.episode_id)
        if source is None or source.status == "running":
            raise InvalidMessage(f"there is no finished episode {replay.episode_id} to replay")
        recorded = await self.store.steps(source.id)
        if not any(s.action and s.ok for s in recorded):
            raise InvalidMessage(f"episode {source.id} has no successful actions to replay")
        running: Running | None = None

        async def ask_user(notice: str) -> None:
            running.resume.clear()
            await self.broadcast(p.EpisodeUpdate(to_json(running.episode), notice=notice))
            waits = [asyncio.ensure_future(e.wait()) for e in (running.resume, running.stop)]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            await self.broadcast(p.EpisodeUpdate(to_json(running.episode)))

        policy = ReplayPolicy(recorded, fallback=self.policy if replay.fallback == "model"
                              else None, ask_user=ask_user)
        running = await self._begin(client, Episode(
            task=source.task, source="replay", start_url=replay.url or source.start_url,
            policy=policy.name, adapter=policy.adapter, replay_of=source.id), replay.request_id)
        limits = dataclasses.replace(self.limits, max_steps=2 * len(policy.plan) + 5)
        running.task = asyncio.create_task(self._run(running, replay.tab_id, policy, limits))

    async def _run(self, running: Running, tab_id: int | None, policy: Policy,
                   limits: Limits) -> None:
        async def on_step(step: Step) -> None:
            await self.broadcast(p.StepUpdate(step.episode_id, step_json(step)))

        try:
            final = await run_episode(running.episode, store=self.store, browser=self.browser,
                                      policy=policy, stop=running.stop, on_step=on_step,
                                      limits=limits, tab_id=tab_id)
            await self.broadcast(p.EpisodeUpdate(to_json(final)))
        except Exception:
            log.exception("episode %s crashed", running.episode.id)
            crashed = await self.store.episode(running.episode.id)   # recorded as failed
            await self.broadcast(p.EpisodeUpdate(to_json(crashed)))
        finally:
            self._ended(running)

    def _ended(self, running: Running) -> None:
        self.running = None
        self.idle.set()
        self.idle_since = time.monotonic()
        for listener in self.finished:
            listener(running.episode.id)

    def _running(self, episode_id: int | None) -> Running:
        running = self.running
        if running is None or episode_id not in (None, running.episode.id):
            raise InvalidMessage("no such episode is running")
        return running

    # -- demonstrations -------------------------------------------------------------------

    async def _start_recording(self, client: Client, start: p.RecordStart) -> None:
        await self._begin(client, Episode(task=start.task, source="demonstration",
                                          start_url=start.url, policy="user"), start.request_id)

    def _recording(self, episode_id: int) -> Running:
        running = self._running(episode_id)
        if running.episode.source != "demonstration":
            raise InvalidMessage(f"episode {episode_id} is not a recording")
        return running

    async def _record_step(self, message: p.RecordStep) -> None:
        running = self._recording(message.episode_id)
        action = Action.parse(message.action)
        obs = Observation.from_json(message.observation) if message.observation else None
        target = describe(obs, action.element_id, message.target) \
            if obs and action.element_id is not None else message.target
        step = Step(running.episode.id, running.recorded, action.to_json(), True,
                    url=obs.url if obs else message.action.get("url"),
                    observation=message.observation, mode="demonstration", target=target)
        running.recorded += 1
        await self.store.add_step(step)
        await self.broadcast(p.StepUpdate(step.episode_id, step_json(step)))

    async def _stop_recording(self, client: Client, message: p.RecordStop) -> None:
        running = self._recording(message.episode_id)
        episode_id = running.episode.id
        await self.store.finish_episode(episode_id, "done" if message.success else "stopped")
        await self.store.add_reward(Reward(episode_id, "user", 1.0 if message.success else -1.0,
                                           {"client": client.kind, "demonstration": True}))
        self._ended(running)
        final = await self.store.episode(episode_id)
        update = p.EpisodeUpdate(to_json(final))
        await client.send(dataclasses.replace(update, request_id=message.request_id))
        await self.broadcast(update, skip=client)

    def _stop(self, stop: p.Stop) -> None:
        running = self._running(stop.episode_id)
        if running.task is None:
            raise InvalidMessage("a recording is stopped from the toolbar popup (it asks "
                                 "whether the task worked)")
        running.stop.set()

    async def _feedback(self, client: Client, feedback: p.Feedback) -> None:
        episode = await self.store.episode(feedback.episode_id)
        if episode is None:
            raise InvalidMessage(f"there is no episode {feedback.episode_id}")
        await self.store.add_reward(Reward(episode.id, "user", float(feedback.value),
                                           {"client": client.kind}))
        await client.send(p.EpisodeUpdate(to_json(episode), feedback.request_id))

    async def _practice(self, message: p.Practice) -> p.Practice:
        """Set (allowed given) and report one practice rule."""
        try:
            rule = await rule_for(self.store, site=message.site, episode_id=message.episode_id)
        except ValueError as exc:
            raise InvalidMessage(str(exc)) from None
        if message.allowed:
            await self.store.allow_practice(rule)
        elif message.allowed is False:
            await self.store.forbid_practice(rule.site, rule.task)
        allowed = Rules(await self.store.practice_rules()).has(rule)
        return dataclasses.replace(message, site=rule.site, task=rule.task, allowed=allowed)

    async def _relay(self, client: Client, message: p.Observe | p.Act) -> None:
        """Pass one CLI observe/act to the browser and its reply back, under our own id."""
        if isinstance(message, p.Act) and Action.parse(message.action).spec.runs == "episode":
            raise InvalidMessage(f"{message.action['action']!r} is not a browser action")
        ours = dataclasses.replace(message, request_id=self.browser.next_id())
        reply = await self.browser.request(ours)
        await client.send(dataclasses.replace(reply, request_id=message.request_id))

    async def status(self, request_id: str | None = None) -> p.Status:
        return p.Status(request_id=request_id, address=self.address, db=str(self.store.path),
                        browser_connected=self.extension is not None,
                        episode=self._running_json(), counts=await self.store.counts(),
                        policy=self.policy.name, adapter=self.policy.adapter)

    async def _reload(self) -> None:
        """Hot swap: the next episode runs on the newly built policy; one already running
        finishes on the policy it started with (it holds its own reference)."""
        if self.reload_policy is None:
            raise InvalidMessage("this daemon's policy has no adapters to switch")
        self.policy = await self.reload_policy()
        log.info("now serving %s with adapter %s", self.policy.name, self.policy.adapter)
