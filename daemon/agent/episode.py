"""The episode loop: observe → policy → act → record, one committed step at a time.

Contract: every step is written to the store before the next begins; an action error (bad
element, page refused, timeout) is recorded in its step and shown to the policy in the next;
a browser that cannot be observed, or a policy that cannot go on (`EpisodeFailed`), ends the
episode as ``failed``; `stop` ends it as ``stopped`` before the next step (a ``wait`` is cut
short); ``step_limit`` when the limit is reached.
Where the task's page keeps its own verdict (`page_ended`, e.g. MiniWoB++'s WOB_DONE_GLOBAL),
it is read after every step, as BrowserGym does: once the page says its episode is over, the
episode ends there as ``done`` and nothing acts on the page again (a MiniWoB++ page would start
a new problem on the next click and erase the reward).
With an `Approver`, a sensitive action (approvals.py) waits for the user's verdict before it
runs; a denied one is recorded as a failed step with the reason, which the policy sees.
With a `Camera`, each step keeps a screenshot of the tab as the policy saw it (camera.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from daemon.core.actions import Action
from daemon.core.errors import NightloopError
from daemon.core.observation import Observation
from daemon.core.settings import DEFAULTS, Settings
from daemon.core.store import Episode, Step, Store, StoreFull, now
from daemon.core.vault import Vault, placeholders

from .approvals import ApprovalRequest, Approver, allowed_origins, origin, sensitivity
from .camera import Camera
from .descriptors import describe
from .policy import Decision, PastStep, Policy, StepContext
from .privacy import EpisodeSecrets

log = logging.getLogger(__name__)


class EpisodeFailed(NightloopError):
    """The episode cannot go on: it ends ``failed`` with this reason (raised by the browser, or
    by a policy that must not go past a step, as a replay whose step failed)."""


class BrowserError(EpisodeFailed):
    """The browser could not be reached or did not answer in time."""


@dataclass
class ActOutcome:
    ok: bool
    tab_id: int | None = None
    error: str | None = None
    detail: dict | None = None


class Browser(Protocol):
    """The agent's hands and eyes in one tab (tab_id None: let the browser choose one)."""

    async def observe(self, tab_id: int | None) -> tuple[int | None, Observation]:
        """The tab's observation; raises BrowserError when there is none to be had."""

    async def act(self, tab_id: int | None, action: Action) -> ActOutcome:
        """Perform a page or tab action; failures come back as ActOutcome(ok=False)."""


@dataclass(frozen=True)
class Limits:
    max_steps: int = DEFAULTS.max_steps
    step_timeout: float = DEFAULTS.step_timeout
    reconnect: float = DEFAULTS.reconnect_grace

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_steps, settings.step_timeout, settings.reconnect_grace)


OnStep = Callable[[Step], Awaitable[None]]
PageEnded = Callable[[int | None], Awaitable[bool]]     # tab id → the page's episode is over


async def _no_step(step: Step) -> None:
    pass
_FINAL_STATUS = {"answer": "done", "done": "done", "give_up": "gave_up"}


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


class _Approvals:
    """One episode's approvals: its approver, the origins it may open unasked (its start, its
    task's, the ones approved in it) and whether the user approved all of it."""

    def __init__(self, episode: Episode, approver: Approver | None, words: tuple[str, ...]):
        self.episode, self.approver, self.words, self.all = episode, approver, words, False
        self.origins = allowed_origins(episode.start_url, episode.task)

    async def verdict(self, index: int, action: Action, recorded: Action,
                      page: Observation, typed_secret: bool) -> dict | None:
        """None when `action` may run unasked; else the verdict (``approved`` True/False,
        with the kind and reason of the sensitivity)."""
        if self.approver is None:
            return None
        if index == 0 and not self.episode.start_url:
            self.origins.add(origin(page.url))      # the user's own page, where the task began
        why = sensitivity(action, page, origins=self.origins, words=self.words,
                          typed_secret=typed_secret)
        if why is None:
            return None
        if self.all:
            return {"approved": True, "kind": why.kind, "reason": why.reason,
                    "by": "approved for this episode"}
        target = page.element(action.element_id) if action.element_id is not None else None
        verdict, note = await self.approver.approve(ApprovalRequest(
            self.episode.id, index, recorded.to_json(), page.url,
            target.render() if target else None, why.kind, why.reason))
        self.all = verdict == "approve_episode"
        if verdict != "deny" and why.kind == "navigation":
            self.origins.add(origin(action.args["url"]) if action.name == "goto"
                             else target.link_origin)
        return {"approved": verdict != "deny", "kind": why.kind, "reason": why.reason,
                "by": note or "the user"}


async def run_episode(episode: Episode, *, store: Store, browser: Browser, policy: Policy,
                      stop: asyncio.Event, on_step: OnStep = _no_step, limits: Limits = Limits(),
                      tab_id: int | None = None, page_ended: PageEnded | None = None,
                      approver: Approver | None = None,
                      approval_words: tuple[str, ...] = DEFAULTS.approval_words,
                      camera: Camera | None = None, vault: Vault | None = None,
                      known_secrets: tuple[str, ...] = ()) -> Episode:
    """Run a started episode (already in the store) to its end and return its final row.
    `vault`: where the ``{{NAME}}`` secrets its actions name are looked up (None: nowhere);
    `known_secrets`: secrets the task holds in clear (the user insisted), redacted at once."""
    assert episode.id is not None
    secrets = EpisodeSecrets(known_secrets)
    await secrets.redact(store, episode.id)
    approvals = _Approvals(episode, approver, approval_words)
    status, answer, error = "step_limit", None, None
    history: list[PastStep] = []
    try:
        if episode.start_url:
            opened = await browser.act(tab_id, Action("goto", {"url": episode.start_url}))
            if not opened.ok:
                raise BrowserError(f"could not open {episode.start_url}: {opened.error}")
            tab_id = opened.tab_id
        for index in range(limits.max_steps):
            if stop.is_set():
                status = "stopped"
                break
            step, action, obs = await _step(index, episode, tab_id, history, browser=browser,
                                             policy=policy, secrets=secrets, stop=stop,
                                             approvals=approvals, camera=camera, vault=vault)
            tab_id = step.result.get("tab_id", tab_id) if step.result else tab_id
            await store.add_step(step)
            await secrets.redact(store, episode.id)
            await on_step(step)
            history.append(PastStep(action, step.ok, step.error, page=obs))
            if action is not None and action.spec.ends_episode and step.ok:
                status = _FINAL_STATUS[action.name]
                answer = action.args.get("text") or action.args.get("reason")
                break
            if page_ended is not None and await page_ended(tab_id):
                status = "done"
                break
    except (EpisodeFailed, StoreFull) as exc:
        status, error = "failed", str(exc)
    except asyncio.CancelledError:
        status, error = "interrupted", "the daemon shut down during the episode"
        raise
    except Exception as exc:    # a bug: record the episode as failed, then let it be logged
        status, error = "failed", f"internal error: {exc!r}"
        raise
    finally:
        page = await _last_page(browser, tab_id) if status in _UNFINISHED else None
        try:
            await store.finish_episode(episode.id, status, final_answer=secrets.scrub(answer),
                                       error=secrets.scrub(error), final_observation=page)
            unrecorded = False
        except StoreFull as exc:        # the end too: said, not stored (a restart marks the
            log.error("episode %d: %s", episode.id, exc)   # episode interrupted)
            unrecorded = True
        log.info("episode %d ended: %s%s", episode.id, status, f" ({error})" if error else "")
    final = await store.episode(episode.id)
    assert final is not None
    return dataclasses.replace(final, status=status, error=secrets.scrub(error)) \
        if unrecorded else final


_UNFINISHED = ("step_limit", "stopped")     # ended with no final action of the agent's


async def _last_page(browser: Browser, tab_id: int | None) -> dict | None:
    """The page an episode ended on (where a `done` would have been decided), if it can still
    be observed."""
    try:
        return dataclasses.asdict((await browser.observe(tab_id))[1])
    except BrowserError:
        return None


async def _step(index: int, episode: Episode, tab_id: int | None, history: list[PastStep], *,
                browser: Browser, policy: Policy, secrets: EpisodeSecrets,
                stop: asyncio.Event, approvals: _Approvals, camera: Camera | None,
                vault: Vault | None) -> tuple[Step, Action | None, Observation]:
    """Observe, decide and act once; return the step to record, the action as recorded
    (secrets masked), which is also what the policy sees in later steps, and the page it acted
    on."""
    started = now()
    t0 = time.perf_counter()
    tab_id, obs = await browser.observe(tab_id)
    if secrets.secrets:         # a page that shows one back: masked before anyone sees it
        obs = Observation.from_json(secrets.scrub_tree(dataclasses.asdict(obs)))
    observe_ms, t1 = _ms(t0), time.perf_counter()
    taking = camera.start(tab_id, obs) if camera else None
    try:
        decision = await policy.decide(StepContext(episode.task, obs, list(history)))
    except BaseException:
        if taking:
            taking.cancel()
        raise
    policy_ms = _ms(t1)
    shot = await camera.developed(taking) if camera else None   # before acting: the page seen
    t2 = time.perf_counter()

    action, result, target = decision.action, {"tab_id": tab_id}, None
    error = _rejection(decision, obs)
    invalid, ok = error is not None, False
    recorded = secrets.mask(action, obs) if action else None
    approval = None if invalid else await approvals.verdict(index, action, recorded, obs,
                                                            bool(secrets.secrets))
    if invalid:
        pass    # nothing reaches the browser; the error goes to the policy next step
    elif approval and not approval["approved"]:
        error = f"not approved ({approval['by']}): it {approval['reason']}"
    elif action.spec.runs == "episode":
        ok = True
        if action.name == "wait":
            try:
                async with asyncio.timeout(action.args["seconds"]):
                    await stop.wait()
            except TimeoutError:
                pass
    elif (sent := _with_secrets(action, vault, secrets)) is None:
        named = ", ".join(f"{{{{{n}}}}}" for n in placeholders(action.args["text"]))
        error = f"{named} cannot be typed: " + ("no secrets are kept here" if vault is None
                                                else "not saved (`nightloop secrets set`)")
    else:
        outcome = await browser.act(tab_id, sent)
        ok, error = outcome.ok, outcome.error
        detail = dict(outcome.detail or {})
        extra = detail.pop("target", None)          # the content script's part of it
        if action.element_id is not None:
            target = describe(obs, action.element_id, extra)
        result = {"tab_id": outcome.tab_id if outcome.tab_id is not None else tab_id, **detail}
    if target is None and action is not None and action.element_id is not None:
        target = describe(obs, action.element_id)       # not acted on: as the page showed it
    if approval:
        result["approval"] = approval
    act_ms = _ms(t2)

    log.info("episode %d step %d: %s → %s", episode.id, index,
             recorded.describe() if recorded else "(no action)", "ok" if ok else error)
    raw_output = secrets.scrub(decision.raw_output)
    # The drawn tokens spell the output: with a secret masked out of it, they are dropped too.
    sampled = decision.sampled.to_json() \
        if decision.sampled and raw_output == decision.raw_output else None
    step = Step(
        episode_id=episode.id, index=index, url=obs.url,
        observation=dataclasses.asdict(obs),
        action=recorded.to_json() if recorded else None, ok=ok, error=secrets.scrub(error),
        prompt=secrets.scrub(decision.prompt), raw_output=raw_output, sampled=sampled,
        result=result, started_at=started, invalid=invalid, mode=decision.mode, target=target,
        observe_ms=observe_ms, policy_ms=policy_ms, act_ms=act_ms,
        screenshot=camera.keep(episode.id, index, shot, action and action.element_id)
        if camera else None,
        **(dataclasses.asdict(decision.usage) if decision.usage else {}))
    return step, recorded, obs


def _with_secrets(action: Action, vault: Vault | None, secrets: EpisodeSecrets) -> Action | None:
    """`action` as it goes to the page: a fill's ``{{NAME}}`` placeholders replaced by their
    values (each then a secret of the episode); None when one cannot be looked up."""
    if action.name != "fill" or not placeholders(action.args["text"]):
        return action
    if vault is None:
        return None
    try:
        text, values = vault.fill_in(action.args["text"])
    except NightloopError as exc:
        log.info("a secret the action names is not available: %s", exc)
        return None
    for value in values:
        secrets.add(value)
    return Action(action.name, {**action.args, "text": text})


def _rejection(decision: Decision, obs: Observation) -> str | None:
    """Why the decision cannot be carried out on this page, or None when it can."""
    action = decision.action
    if action is None:
        return decision.error or "the policy produced no action"
    if action.element_id is not None and obs.element(action.element_id) is None:
        return f"element [{action.element_id}] is not in the observation of this page"
    return None
