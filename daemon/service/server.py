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
from datetime import datetime
from typing import Any, Awaitable, Callable

from daemon.agent.approvals import ApprovalRequest, Verdict
from daemon.agent.camera import Camera
from daemon.agent.descriptors import describe
from daemon.agent.episode import Limits, run_episode
from daemon.agent.policy import Policy
from daemon.agent.privacy import EpisodeSecrets, secret_in_task
from daemon.agent.replay import ReplayPolicy, fitting, recorded_demonstrations
from daemon.agent.values import Unmatched, rebind
from daemon.bridge.endpoint import Client, Endpoint
from daemon.core import protocol as p
from daemon.core.actions import Action
from daemon.core.errors import InvalidMessage, NotFound, SecretInTask
from daemon.core.observation import Observation
from daemon.core.settings import DEFAULTS
from daemon.core.store import Episode, Reward, Step, Store
from daemon.core.vault import Vault, placeholders
from daemon.core.wire import to_json
from daemon.tasks.practice import rule_for, set_rule
from trainer.night import last_report

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
    in_clear: tuple[str, ...] = ()          # secrets its task holds (the user insisted)


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
                 screenshots: bool = True,
                 next_night: Callable[[], datetime | None] = lambda: None,
                 notify_after_night: bool = False, vault: Vault | None = None):
        super().__init__(token=token, extension_origin=extension_origin, host=host, port=port,
                         step_timeout=limits.step_timeout, max_frame_bytes=max_frame_bytes,
                         reconnect=limits.reconnect)
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
        self.next_night, self.notify_after_night = next_night, notify_after_night
        self.vault = vault                      # the secrets a task names as {{NAME}}

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
        """Answer `message` with the handler its type has in HANDLERS (end of the class)."""
        handler = self.HANDLERS.get(type(message))
        if handler is None:
            raise InvalidMessage(f"the daemon does not handle {message.type!r}")
        await handler(self, client, message)

    async def _begin(self, client: Client, episode: Episode, request_id: str | None,
                     in_clear: tuple[str, ...] = ()) -> Running:
        """Store a new episode as the running one and tell every client (`in_clear`: secrets
        its task holds, which the episode masks at once)."""
        if self.running:
            raise InvalidMessage(f"episode {self.running.episode.id} is still running; "
                                 "stop it first")
        if self.extension is None:
            raise InvalidMessage("no browser is connected: start one with `nightloop browser`, "
                                 "or load the extension and pair it (`nightloop pair`)")
        running = self.running = Running(await self.store.start_episode(episode),
                                         in_clear=in_clear)
        self.idle.clear()
        update = p.EpisodeUpdate(to_json(running.episode))
        await client.send(dataclasses.replace(update, request_id=request_id))
        await self.broadcast(update, skip=client)
        return running

    def _secrets_of(self, task: p.Task) -> tuple[str, ...]:
        """The secrets `task` holds in clear (those the user insisted on); refused with the
        hint to name them instead, and refused when it names a secret that is not saved."""
        clear = secret_in_task(task.task)
        if clear and not task.allow_secret:
            raise SecretInTask(
                "this task seems to hold a secret in clear (after a word such as password, PIN "
                "or code, or a card number): save it once with `nightloop secrets set NAME` and "
                "write {{NAME}} in the task instead; or run it anyway, and it is masked in what "
                "is stored")
        missing = self.vault.missing(task.task) if self.vault else placeholders(task.task)
        if missing:
            raise NotFound(f"{', '.join(f'{{{{{n}}}}}' for n in missing)}: no such saved "
                           f"secret here (`nightloop secrets set {missing[0]}`)")
        return (clear,) if clear else ()

    async def _start_episode(self, client: Client, task: p.Task) -> None:
        in_clear = self._secrets_of(task)
        if task.replay == "auto":
            found = await self._demonstration_for(task.task)
            if found:
                demo, steps = found
                return await self._replay(client, demo, steps, task.task, fallback=self.policy,
                                          url=task.url, tab_id=task.tab_id,
                                          request_id=task.request_id, approve=task.approve,
                                          in_clear=in_clear)
        running = await self._begin(client, Episode(
            task=task.task, source=task.source, start_url=task.url, policy=self.policy.name,
            adapter=self.policy.adapter), task.request_id, in_clear)
        running.task = asyncio.create_task(self._run(running, task.tab_id, self.policy,
                                                     self.limits, approve_all=task.approve))

    async def _fits(self, client: Client, message: p.Fits) -> None:
        found = await self._demonstration_for(message.task)
        await client.send(p.Fits(message.task, message.request_id,
                                 *((found[0].id, found[0].task) if found else ())))

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
                      request_id: str | None, approve: bool = False,
                      in_clear: tuple[str, ...] = ()) -> None:
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
            policy=policy.name, adapter=policy.adapter, replay_of=source.id), request_id,
            in_clear)
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
                                      camera=self.camera, vault=self.vault,
                                      known_secrets=running.in_clear)
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

    async def _record_step(self, client: Client, message: p.RecordStep) -> None:
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
        await running.secrets.redact(self.store, running.episode.id)
        await self.broadcast(p.StepUpdate(step.episode_id, step_json(step)))

    async def _stop_recording(self, client: Client, message: p.RecordStop) -> None:
        running = self._recording(message.episode_id)
        episode_id = running.episode.id
        if message.success and message.observation:     # it ends where the user said it worked
            obs = Observation.from_json(message.observation)
            await self.store.add_step(Step(
                episode_id, running.recorded, Action("done").to_json(), True, url=obs.url,
                observation=dataclasses.asdict(obs), mode="demonstration"))
            # the last page may show a secret anew: every one is redacted again
            await running.secrets.redact(self.store, episode_id, every=True)
        await self.store.finish_episode(episode_id, "done" if message.success else "stopped")
        await self.store.add_reward(Reward.verdict(episode_id, message.success, client.kind,
                                                   demonstration=True))
        self._ended(running)
        final = await self.store.episode(episode_id)
        update = p.EpisodeUpdate(to_json(final))
        await client.send(dataclasses.replace(update, request_id=message.request_id))
        await self.broadcast(update, skip=client)

    async def _approval(self, client: Client, message: p.Approval) -> None:
        pending = self.asked.get(message.request_id)
        if pending is None or pending.done():
            raise InvalidMessage(f"no approval is pending under {message.request_id!r}")
        pending.set_result(message.verdict)

    async def _stop(self, client: Client, stop: p.Stop) -> None:
        running = self._running(stop.episode_id)
        if running.task is None:
            raise InvalidMessage("a recording is stopped from the toolbar popup (it asks "
                                 "whether the task worked)")
        running.stop.set()

    async def _resume(self, client: Client, message: p.Resume) -> None:
        self._running(message.episode_id).resume.set()

    async def _feedback(self, client: Client, feedback: p.Feedback) -> None:
        episode = await self.store.episode(feedback.episode_id)
        if episode is None:
            raise InvalidMessage(f"there is no episode {feedback.episode_id}")
        await self.store.add_reward(Reward.verdict(episode.id, feedback.value > 0, client.kind))
        await client.send(p.EpisodeUpdate(to_json(episode), feedback.request_id))

    async def _practice(self, client: Client, message: p.Practice) -> None:
        """Set (allowed given) and report one practice rule."""
        rule = await rule_for(self.store, site=message.site, episode_id=message.episode_id)
        _, allowed = await set_rule(self.store, rule, message.allowed)
        if message.allowed is not None:
            log.info("practice %s: %s on %s", "allowed" if allowed else "denied",
                     rule.task or "any task", rule.site)
        await client.send(dataclasses.replace(message, site=rule.site, task=rule.task,
                                              allowed=allowed))

    async def _change_adapter(self, client: Client, message: p.AdapterChange) -> None:
        """Promote or roll back in the store, then serve what is promoted now."""
        done = await change_adapter(self.store, message)
        log.info("adapter %s: now serving %s", message.change,
                 f"adapter {done.serving}" if done.serving else "the base model")
        if self.reload_policy is not None:
            await self._reload()
        await client.send(done)

    async def _last_night(self, client: Client, message: p.LastNight) -> None:
        """The last night's morning report, when the next may start, whether to notify."""
        found = await last_report(self.store)
        due = self.next_night()
        await client.send(p.LastNight(message.request_id, found.to_json() if found else None,
                                      due.isoformat(timespec="minutes") if due else None,
                                      self.notify_after_night))

    async def _secret_names(self, client: Client, message: p.SecretNames) -> None:
        await client.send(p.SecretNames(message.request_id,
                                        self.vault.names() if self.vault else []))

    async def _relay(self, client: Client, message: p.Observe | p.Act) -> None:
        """Pass one CLI observe/act to the browser and its reply back, under our own id."""
        if isinstance(message, p.Act) and Action.parse(message.action).spec.runs == "episode":
            raise InvalidMessage(f"{message.action['action']!r} is not a browser action")
        if self.extension is None:      # a person waits: no grace for a reconnect here
            raise InvalidMessage("no browser is connected: start one with `nightloop browser`")
        ours = dataclasses.replace(message, request_id=self.browser.next_id())
        reply = await self.browser.request(ours)
        await client.send(dataclasses.replace(reply, request_id=message.request_id))

    async def _status(self, client: Client, message: p.Status | p.Reload) -> None:
        await client.send(await self.status(message.request_id))

    async def _switch(self, client: Client, message: p.Reload) -> None:
        """`reload`: serve the promoted adapter now, then report the status."""
        await self._reload()
        await self._status(client, message)

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

    HANDLERS: dict[type, Callable[..., Awaitable[None]]] = {
        p.Task: _start_episode, p.Replay: _start_replay, p.Stop: _stop, p.Resume: _resume,
        p.RecordStart: _start_recording, p.RecordStep: _record_step,
        p.RecordStop: _stop_recording, p.Fits: _fits, p.Approval: _approval,
        p.Feedback: _feedback, p.Practice: _practice, p.AdapterChange: _change_adapter,
        p.LastNight: _last_night, p.SecretNames: _secret_names,
        p.Status: _status, p.Reload: _switch, p.Observe: _relay, p.Act: _relay}


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
