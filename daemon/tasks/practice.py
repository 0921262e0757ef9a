"""Practice on the user's own tasks: which are safe to repeat, and repeating them unattended.

Contract:
- A user's task (toolbar, cli or demonstration) may be practised only when the user marked its
  start page's site, or that task on that site, as practice-safe (`PracticeRule`, from the popup
  or `nightloop practice allow`). MiniWoB++ practice needs no rule (the trainer runs it apart).
- Practice runs through the normal daemon → extension path, in a browser of its own (headless,
  a fresh profile): never in the user's windows, and without their cookies or logins.
- During practice a form is submitted only on a page whose site the rules allow for that task;
  anywhere else the content script stops the submit event and the step fails saying why.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from daemon.agent.camera import Camera
from daemon.agent.episode import ActOutcome, Limits, run_episode
from daemon.agent.policy import Policy
from daemon.agent.replay import ReplayPolicy, unattended
from daemon.core.actions import Action
from daemon.core.errors import NotFound, UsageError
from daemon.core.observation import MASK, Observation
from daemon.core.store import Episode, PracticeRule, Reward, Store
from daemon.core.vault import Vault

from .harness import harness

USER_SOURCES = ("toolbar", "cli", "demonstration")
SCAN = 1000                     # newest episodes looked at when choosing what to practise


def site_of(url: str | None) -> str | None:
    """The site of an http(s) URL as rules name it (host[:port], lower case); else None."""
    parts = urlsplit(url or "")
    return (parts.netloc.lower() or None) if parts.scheme in ("http", "https") else None


def parse_site(text: str) -> str:
    """A site the user typed (``example.com``, ``https://example.com/path``) as rules store it;
    UsageError when it names none."""
    site = site_of(text if "://" in text else f"https://{text}")
    if not site or any(c.isspace() for c in site):
        raise UsageError(f"{text!r} is not a site: give a host such as example.com or a URL")
    return site


@dataclass(frozen=True)
class PracticeTask:
    task: str
    url: str                        # the page the task starts on
    episode_id: int                 # the newest episode of it

    @property
    def held_out(self) -> bool:
        """One task in four (by a stable hash of task and start page) is never trained on:
        the gate measures the judge's reward on those."""
        digest = hashlib.sha256(f"{self.task}\n{self.url}".encode()).digest()
        return digest[0] % 4 == 0


class Rules:
    """The user's practice rules, asked about one task or page at a time."""

    def __init__(self, rules: list[PracticeRule]):
        self.sites = {r.site for r in rules if r.task is None}
        self.tasks = {(r.site, r.task) for r in rules if r.task is not None}

    def has(self, rule: PracticeRule) -> bool:
        return (rule.site, rule.task) in self.tasks if rule.task else rule.site in self.sites

    def allows(self, task: str, url: str | None) -> bool:
        """May `task`, starting on `url`, be practised?"""
        site = site_of(url)
        return site is not None and (site in self.sites or (site, task) in self.tasks)

    def may_submit(self, task: PracticeTask, url: str | None) -> bool:
        """May practice of `task` submit a form on page `url` (or send it any request that
        could change something there)?"""
        return site_of(url) in self.sites_for(task)

    def sites_for(self, task: PracticeTask) -> set[str]:
        """The sites practice of `task` may change: every safe site, and the task's own when
        the task alone is marked safe there."""
        own = site_of(task.url)
        return self.sites | ({own} if (own, task.task) in self.tasks else set())


async def start_url(store: Store, episode: Episode) -> str | None:
    """Where an episode started: its start URL, else the page its first step saw."""
    if episode.start_url:
        return episode.start_url
    steps = await store.steps(episode.id)
    return steps[0].url if steps else None


async def rule_for(store: Store, *, site: str | None = None,
                   episode_id: int | None = None) -> PracticeRule:
    """The rule for a site, or for an episode's task on its start page's site; NotFound when
    there is no such episode, UsageError when there is no rule to make."""
    if episode_id is None:
        return PracticeRule(parse_site(site or ""))
    episode = await store.episode(episode_id)
    if episode is None:
        raise NotFound(f"there is no episode {episode_id}")
    found = site_of(await start_url(store, episode))
    if found is None:
        raise UsageError(f"episode {episode_id} did not start on a web page; only tasks on "
                         "http(s) sites can be practised")
    return PracticeRule(found, episode.task)


async def set_rule(store: Store, rule: PracticeRule, allowed: bool | None) -> tuple[bool, bool]:
    """Allow (True) or deny (False) `rule`, or only ask (None): whether it was allowed before,
    and whether it is now. The daemon's ``practice`` message and the CLI both come here."""
    before = Rules(await store.practice_rules()).has(rule)
    if allowed:
        await store.allow_practice(rule)
    elif allowed is False:
        await store.forbid_practice(rule.site, rule.task)
    return before, before if allowed is None else allowed


async def held_out(store: Store, episode: Episode) -> bool:
    """Whether `episode`'s task, on its start page, is one of those never trained on."""
    return PracticeTask(episode.task, await start_url(store, episode) or "", episode.id).held_out


async def practice_tasks(store: Store, limit: int) -> list[PracticeTask]:
    """The newest distinct user tasks (task text and start page) the rules allow, newest
    first, at most `limit`."""
    rules = Rules(await store.practice_rules())
    found: dict[tuple[str, str], PracticeTask] = {}
    for episode in await store.episodes(SCAN):
        if len(found) == limit:
            break
        if episode.source not in USER_SOURCES or episode.status == "running":
            continue
        url = await start_url(store, episode)
        if url and (episode.task, url) not in found and rules.allows(episode.task, url):
            found[(episode.task, url)] = PracticeTask(episode.task, url, episode.id)
    return list(found.values())


class FormGuard:
    """A Browser that lets an action submit a form only where `may_submit(page URL)` holds
    (the URL of the tab's last observation), and `goto` only to `start` or where it holds
    for the target; it remembers the tabs it worked in."""

    def __init__(self, browser, may_submit: Callable[[str | None], bool], start: str):
        self.browser, self.may_submit, self.start = browser, may_submit, start
        self.urls: dict[int | None, str] = {}

    async def observe(self, tab_id: int | None) -> tuple[int | None, Observation]:
        tab_id, obs = await self.browser.observe(tab_id)
        self.urls[tab_id] = obs.url
        return tab_id, obs

    async def act(self, tab_id: int | None, action: Action) -> ActOutcome:
        url = action.args.get("url")
        if action.name == "goto" and url != self.start and not self.may_submit(url):
            return ActOutcome(False, tab_id, f"practice stays on sites marked safe to "
                                             f"practise; {site_of(url)} is not")
        outcome = await self.browser.act(tab_id, action,
                                         allow_submit=self.may_submit(self.urls.get(tab_id)))
        if outcome.tab_id is not None:
            self.urls.setdefault(outcome.tab_id, "")
        return outcome


async def practise(tasks: list[PracticeTask], attempts: int, *,
                   policy: Policy | Callable[[PracticeTask], Policy], db: Path, rules: Rules,
                   limits: Limits = Limits(max_steps=10), screenshots: bool = False,
                   on_episode: Callable[[Episode], None] = lambda e: None) -> list[Episode]:
    """Run each task `attempts` times (source ``practice``) with `policy` (or the one it makes
    for the task, fresh for each attempt) in a harness browser of its own, under the rules'
    form guard and, at the network level, with no request that could change a server's state
    sent to a site the rules do not allow (a script's `form.submit()`, a `fetch` POST, a form
    in a frame or a shadow root): the extension's network guard, in force before the task's
    first tab opens, and the harness's interception behind it. The finished episodes, also
    passed to `on_episode` as each ends (so a run cut short keeps what it finished). With
    `screenshots`, each step keeps one."""
    finished: list[Episode] = []
    current: list[PracticeTask] = []            # the task being practised, for the network guard

    def may_send(url: str) -> bool:
        return bool(current) and rules.may_submit(current[0], url)
    async with harness(db, limits.step_timeout, may_send=may_send) as (endpoint, store):
        camera = Camera(endpoint.browser, store) if screenshots else None
        for task in tasks:
            current[:] = [task]
            await endpoint.browser.guard_network(rules.sites_for(task))
            for _ in range(attempts):
                guard = FormGuard(endpoint.browser, lambda url, t=task: rules.may_submit(t, url),
                                  task.url)
                acting = policy if hasattr(policy, "decide") else policy(task)
                episode = await store.start_episode(Episode(
                    task=task.task, source="practice", start_url=task.url, policy=acting.name,
                    adapter=acting.adapter, replay_of=getattr(acting, "replay_of", None)))
                try:
                    final = await run_episode(episode, store=store, browser=guard, policy=acting,
                                              stop=asyncio.Event(), limits=limits,
                                              camera=camera, vault=Vault())
                finally:
                    for tab_id in guard.urls.keys() - {None}:
                        await endpoint.browser.close_tab(tab_id)
                finished.append(final)
                on_episode(final)
    return finished



async def demonstrations_to_replay(store: Store) -> list[PracticeTask]:
    """The user's good demonstrations the rules allow to practise, newest first, and that a
    replay can do unattended (none that types a password: only the user can)."""
    rules, found = Rules(await store.practice_rules()), []
    for demo in await store.demonstrations():
        url = await start_url(store, demo)
        steps = await store.steps(demo.id)
        if url and rules.allows(demo.task, url) and \
                not any((s.action or {}).get("text") == MASK for s in steps):
            found.append(PracticeTask(demo.task, url, demo.id))
    return found


async def replay_demonstrations(demos: list[PracticeTask], attempts: int, *, db: Path,
                                rules: Rules, screenshots: bool = False,
                                on_episode: Callable[[Episode], None] = lambda e: None
                                ) -> list[Episode]:
    """Replay each demonstration `attempts` times on fresh loads (no model, no fallback), as
    practice; a replay that finished without needing anything but its recorded steps gets a
    ``replay`` reward of 1 (a new positive example: the same task on another load), any other
    0."""
    async with await Store.open(db, recover=False) as store:
        recorded = {d.episode_id: await store.steps(d.episode_id) for d in demos}

    def replaying(task: PracticeTask) -> Policy:
        return ReplayPolicy(recorded[task.episode_id], fallback=None, ask_user=unattended)
    limits = Limits(max_steps=2 * max((len(s) for s in recorded.values()), default=1) + 5)
    finished = await practise(demos, attempts, policy=replaying, db=db, rules=rules,
                              limits=limits, screenshots=screenshots, on_episode=on_episode)
    async with await Store.open(db, recover=False) as store:
        for episode in finished:
            steps = await store.steps(episode.id)
            clean = episode.status == "done" and all(s.mode == "replayed" for s in steps)
            await store.add_reward(Reward(episode.id, "replay", float(clean),
                                          {"of": episode.replay_of}))
    return finished
