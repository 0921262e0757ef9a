"""The daemon: the endpoint (`daemon.bridge.endpoint`) with what a user's clients may ask.

The connected extension is the agent's browser; CLI clients and the popup submit tasks, replays
and recordings, stop them, give feedback, set practice rules, ask for status, switch the adapter
(`reload`) and may relay single observe/act requests to the browser. One episode runs at a time;
every client hears its progress, and every client is asked before a sensitive action runs
(`approval_ask`; the first `approval` decides, none in time denies it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from daemon.agent.approvals import ApprovalRequest, Verdict
from daemon.agent.camera import Camera
from daemon.agent.descriptors import describe
from daemon.agent.episode import Limits, run_episode
from daemon.agent.policy import Policy
from daemon.agent.privacy import EpisodeSecrets
from daemon.agent.replay import ReplayPolicy, fitting, recorded_demonstrations
from daemon.agent.values import Unmatched, rebind
from daemon.bridge.endpoint import Client, Endpoint
from daemon.core import protocol as p
from daemon.core.actions import Action
from daemon.core.observation import MASK, Observation
from daemon.core.settings import DEFAULTS
from daemon.core.store import Episode, Reward, Step, Store
from daemon.core.wire import InvalidMessage, to_json
from daemon.tasks.practice import rule_for, set_rule

from .adapters import change_adapter

log = logging.getLogger(__name__)


@dataclass
class Running:
    episode: Episode
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None        # None while the user records a demonstration
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    recorded: int = 0                       # demonstration steps received so far
    secrets: EpisodeSecrets = field(default_factory=EpisodeSecrets)     # typed while recording


def step_json(step: Step) -> dict[str, Any]:
    """A step as progress messages carry it: everything but the (large) observation."""
    return {k: v for k, v in to_json(step).items() if k != "observation"}


class Daemon(Endpoint):
    """The endpoint the extension and the CLI connect to, running one episode at a time."""

    def __init__(self, store: Store, policy: Policy, *, token: str, extension_origin: str,
                 host: str = "127.0.0.1", port: int, limits: Limits = Limits(),
                 max_frame_bytes: int = p.MAX_FRAME_BYTES,
                 reload_policy: Callable[[], Awaitable[Policy]] | None = None,
                 approvals: str = "ask", approval_timeout: float = 60.0,
                 approval_words: tuple[str, ...] = DEFAULTS.approval_words,
                 screenshots: bool = True):
        super().__init__(token=token, extension_origin=extension_origin, host=host, port=port,
                         step_timeout=limits.step_timeout, max_frame_bytes=max_frame_bytes)
        self.store = store
        self.policy = policy
        self.reload_policy = reload_policy      # builds the policy with the promoted adapter
        self.limits = limits
        self.running: Running | None = None
        self.idle = asyncio.Event()             # set while no episode runs
        self.idle.set()
        self.idle_since = time.monotonic()      # when the last episode ended
        self.finished: list[Callable[[int], None]] = []   # called with each ended episode's id
        self.approvals, self.approval_timeout = approvals, approval_timeout
        self.approval_words = approval_words
        self.asked: dict[str, asyncio.Future] = {}    # approval_ask request id → the verdict
        self.camera = Camera(self.browser, store) if screenshots else None

    async def close(self) -> None:
        """Stop the running episode (it is recorded as interrupted) and the server."""
        if self.running and self.running.task:
            self.running.task.cancel()
            await asyncio.gather(self.running.task, return_exceptions=True)
        await super().close()

    def running_episode(self) -> dict | None:
        return to_json(self.running.episode) if self.running else None

    # -- messages -------------------------------------------------------------------------

    async def handle(self, client: Client, message: p.Message) -> None:
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
        elif isinstance(message, p.AdapterChange):
            await client.send(await self._change_adapter(message))
        elif isinstance(message, p.Approval):
            self._approval(message)
        elif isinstance(message, p.Fits):
            found = await self._demonstration_for(message.task)
            await client.send(p.Fits(message.task, message.request_id,
                                     *((found[0].id, found[0].task) if found else ())))
        elif isinstance(message, p.Stop):
            self._stop(message)
        elif isinstance(message, p.Feedback):
            await self._feedback(client, message)
        elif isinstance(message, p.Status):
            await client.send(await self.status(message.request_id))
        elif isinstance(message, (p.Observe, p.Act)):
            await self._relay(client, message)
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
        if task.replay == "auto":
            found = await self._demonstration_for(task.task)
            if found:
                demo, steps = found
                return await self._replay(client, demo, steps, task.task, fallback=self.policy,
                                          url=task.url, tab_id=task.tab_id,
                                          request_id=task.request_id, approve=task.approve)
        running = await self._begin(client, Episode(
            task=task.task, source=task.source, start_url=task.url, policy=self.policy.name,
            adapter=self.policy.adapter), task.request_id)
        running.task = asyncio.create_task(self._run(running, task.tab_id, self.policy,
                                                     self.limits, approve_all=task.approve))

    async def _demonstration_for(self, task: str) -> tuple[Episode, list[Step]] | None:
        """The newest good demonstration whose task `task` fits, with its steps for `task`."""
        return fitting(await recorded_demonstrations(self.store), task)

    async def _start_replay(self, client: Client, replay: p.Replay) -> None:
        source = await self.store.episode(replay.episode_id)
        if source is None or source.status == "running":
            raise InvalidMessage(f"there is no finished episode {replay.episode_id} to replay")
        recorded = await self.store.steps(source.id)
        if not any(s.action and s.ok for s in recorded):
            raise InvalidMessage(f"episode {source.id} has no successful actions to replay")
        task = replay.task or source.task
        try:
            recorded = rebind(recorded, source.task, task)
        except Unmatched as exc:
            if replay.fallback == "none":
                raise InvalidMessage(f"episode {source.id} cannot be replayed for this task: "
                                     f"{exc}") from None
            log.info("replay of episode %d: %s; the model does the new task", source.id, exc)
            return await self._start_episode(client, p.Task(
                task, source="toolbar" if client.kind == "extension" else "cli",
                url=replay.url or source.start_url, tab_id=replay.tab_id,
                request_id=replay.request_id))
        await self._replay(client, source, recorded, task,
                           fallback=self.policy if replay.fallback == "model" else None,
                           url=replay.url, tab_id=replay.tab_id, request_id=replay.request_id)

    async def _replay(self, client: Client, source: Episode, recorded: list[Step], task: str, *,
                      fallback: Policy | None, url: str | None, tab_id: int | None,
                      request_id: str | None, approve: bool = False) -> None:
        """Run `recorded` (episode `source`'s steps, rebound to `task`) as a new episode
        (`approve`: its sensitive actions are approved, as `nightloop run --yes` asks)."""
        running: Running | None = None

        async def ask_user(notice: str) -> None:
            running.resume.clear()
            await self.broadcast(p.EpisodeUpdate(to_json(running.episode), notice=notice))
            waits = [asyncio.ensure_future(e.wait()) for e in (running.resume, running.stop)]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            await self.broadcast(p.EpisodeUpdate(to_json(running.episode)))

        policy = ReplayPolicy(recorded, fallback=fallback, ask_user=ask_user)
        running = await self._begin(client, Episode(
            task=task, source="replay", start_url=url or source.start_url,
            policy=policy.name, adapter=policy.adapter, replay_of=source.id), request_id)
        limits = dataclasses.replace(self.limits, max_steps=2 * len(policy.plan) + 5)
        running.task = asyncio.create_task(self._run(running, tab_id, policy, limits,
                                                     approve_all=approve))

    async def _run(self, running: Running, tab_id: int | None, policy: Policy,
                   limits: Limits, approve_all: bool = False) -> None:
        async def on_step(step: Step) -> None:
            await self.broadcast(p.StepUpdate(step.episode_id, step_json(step)))

        try:
            final = await run_episode(running.episode, store=self.store, browser=self.browser,
                                      policy=policy, stop=running.stop, on_step=on_step,
                                      limits=limits, tab_id=tab_id,
                                      approver=_Asking(self, approve_all),
                                      approval_words=self.approval_words,
                                      camera=self.camera)
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
        obs = Observation.from_json(message.observation) if message.observation else None
        # The agent's own sanitiser: secret values out of the page, a typed secret masked
        # in the action and redacted wherever the episode stored it.
        action = running.secrets.mask(Action.parse(message.action), obs)
        target = describe(obs, action.element_id, message.target) \
            if obs and action.element_id is not None else message.target
        step = Step(running.episode.id, running.recorded, action.to_json(), True,
                    url=obs.url if obs else message.action.get("url"),
                    observation=dataclasses.asdict(obs) if obs else None,
                    mode="demonstration", target=target)
        if self.camera and message.screenshot:
            step.screenshot = self.camera.keep(step.episode_id, step.index, message.screenshot,
                                               action.element_id)
        running.recorded += 1
        await self.store.add_step(step)
        for secret in running.secrets.take_new():
            await self.store.redact(running.episode.id, secret, MASK)
        await self.broadcast(p.StepUpdate(step.episode_id, step_json(step)))

    async def _stop_recording(self, client: Client, message: p.RecordStop) -> None:
        running = self._recording(message.episode_id)
        episode_id = running.episode.id
        if message.success and message.observation:     # it ends where the user said it worked
            obs = Observation.from_json(message.observation)
            await self.store.add_step(Step(
                episode_id, running.recorded, Action("done").to_json(), True, url=obs.url,
                observation=dataclasses.asdict(obs), mode="demonstration"))
            for secret in running.secrets.secrets:      # a secret the page shows elsewhere
                await self.store.redact(episode_id, secret, MASK)
        await self.store.finish_episode(episode_id, "done" if message.success else "stopped")
        await self.store.add_reward(Reward.verdict(episode_id, message.success, client.kind,
                                                   demonstration=True))
        self._ended(running)
        final = await self.store.episode(episode_id)
        update = p.EpisodeUpdate(to_json(final))
        await client.send(dataclasses.replace(update, request_id=message.request_id))
        await self.broadcast(update, skip=client)

    def _approval(self, message: p.Approval) -> None:
        pending = self.asked.get(message.request_id)
        if pending is None or pending.done():
            raise InvalidMessage(f"no approval is pending under {message.request_id!r}")
        pending.set_result(message.verdict)

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
        await self.store.add_reward(Reward.verdict(episode.id, feedback.value > 0, client.kind))
        await client.send(p.EpisodeUpdate(to_json(episode), feedback.request_id))

    async def _practice(self, message: p.Practice) -> p.Practice:
        """Set (allowed given) and report one practice rule."""
        try:
            rule = await rule_for(self.store, site=message.site, episode_id=message.episode_id)
        except ValueError as exc:
            raise InvalidMessage(str(exc)) from None
        _, allowed = await set_rule(self.store, rule, message.allowed)
        if message.allowed is not None:
            log.info("practice %s: %s on %s", "allowed" if allowed else "denied",
                     rule.task or "any task", rule.site)
        return dataclasses.replace(message, site=rule.site, task=rule.task, allowed=allowed)

    async def _change_adapter(self, message: p.AdapterChange) -> p.AdapterChange:
        """Promote or roll back in the store, then serve what is promoted now."""
        try:
            done = await change_adapter(self.store, message)
        except ValueError as exc:
            raise InvalidMessage(str(exc)) from None
        log.info("adapter %s: now serving %s", message.change,
                 f"adapter {done.serving}" if done.serving else "the base model")
        if self.reload_policy is not None:
            await self._reload()
        return done

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
                        episode=self.running_episode(), counts=await self.store.counts(),
                        policy=self.policy.name, adapter=self.policy.adapter)

    async def _reload(self) -> None:
        """Hot swap: the next episode runs on the newly built policy; one already running
        finishes on the policy it started with (it holds its own reference)."""
        if self.reload_policy is None:
            raise InvalidMessage("this daemon's policy has no adapters to switch")
        self.policy = await self.reload_policy()
        log.info("now serving %s with adapter %s", self.policy.name, self.policy.adapter)


class _Asking:
    """The daemon's approver: every client (the popup, a `nightloop run` terminal) is asked,
    the first answer decides; none within the timeout, or `approvals = "deny"`, denies."""

    def __init__(self, daemon: Daemon, approve_all: bool):
        self.daemon, self.approve_all = daemon, approve_all

    async def approve(self, request: ApprovalRequest) -> tuple[Verdict, str | None]:
        daemon = self.daemon
        if self.approve_all:
            return "approve_episode", "approved for this run (--yes)"
        if daemon.approvals == "deny":
            return "deny", 'approvals = "deny"'
        request_id = secrets.token_hex(8)
        daemon.asked[request_id] = pending = asyncio.get_running_loop().create_future()
        try:
            await daemon.broadcast(p.ApprovalAsk(
                request_id, request.episode_id, request.index, request.action, request.page,
                request.kind, request.reason, daemon.approval_timeout, request.element))
            async with asyncio.timeout(daemon.approval_timeout):
                return await pending, None
        except TimeoutError:
            return "deny", f"no answer within {daemon.approval_timeout:g} s"
        finally:
            del daemon.asked[request_id]
