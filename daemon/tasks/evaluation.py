"""Evaluation runs on MiniWoB++ through the real path: daemon → extension → page.

`evaluate` starts a `harness` (its own endpoint and a headless Chromium with the extension
paired to it) and serves the MiniWoB++ pages. For each (task, seed) it opens the task in a new
tab through the extension, seeds and starts it in the page's main world (the ``miniwob.start``
probe), takes the utterance as the episode's task and runs the ordinary episode loop. As in
BrowserGym, the page's state (``miniwob.state``) is read after every step and the episode ends
as soon as the page's own episode is done, so no action can follow the end (a click on the
START cover would begin a new problem and erase the reward); an agent that leaves the task page
ends it as failed. The ground truth is stored as a ``ground_truth`` reward: 1 for success (raw
reward > 0), else 0, with the raw reward in its details. Up to `parallel` episodes run at once,
each in its own tab. A page that hangs or errors counts as a failure with its reason;
the run goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon.agent.episode import BrowserError, Limits, run_episode
from daemon.agent.policy import Policy
from daemon.bridge.extension_browser import ExtensionBrowser
from daemon.core.actions import Action
from daemon.core.store import Episode, Reward, Store

from . import miniwob
from .harness import harness
from .static import serve_directory

READY_TIMEOUT = 10.0        # seconds for a task page to report WOB_TASK_READY


@dataclass(frozen=True)
class EvalPlan:
    tasks: list[str]
    seeds: list[int]
    max_steps: int = 10
    parallel: int = 1
    step_timeout: float = 30.0
    source: str = "eval"            # "practice" when the trainer asks
    by_seed: bool = False           # run every task on a seed before the next seed (a run cut
                                    # short then leaves no task unmeasured); else task by task

    @property
    def limits(self) -> Limits:
        return Limits(self.max_steps, self.step_timeout)

    @property
    def jobs(self) -> list[tuple[str, int]]:
        """(task, seed) in the order they run."""
        if self.by_seed:
            return [(task, seed) for seed in self.seeds for task in self.tasks]
        return [(task, seed) for task in self.tasks for seed in self.seeds]

    @property
    def episode_timeout(self) -> float:
        """A whole episode may take this long before it counts as hung."""
        return self.max_steps * (self.step_timeout + 5) + READY_TIMEOUT + 30


@dataclass
class EpisodeResult:
    task: str
    seed: int
    split: str
    success: bool                   # raw reward > 0, as BrowserGym counts it
    raw_reward: float | None        # WOB_RAW_REWARD_GLOBAL in [-1, 1]; None when unknown
    done: bool                      # the page ended the episode itself
    steps: int = 0
    invalid: int = 0                # steps whose action was rejected before the browser
    seconds: float = 0.0
    status: str | None = None       # the episode's final status in the store
    episode_id: int | None = None
    utterance: str | None = None
    error: str | None = None        # why the episode failed to run, when it did


async def evaluate(plan: EvalPlan, *, policy: Policy, db: Path,
                   on_result: Callable[[EpisodeResult], None] = lambda r: None,
                   headless: bool = True) -> list[EpisodeResult]:
    """Run every (task, seed) of `plan`; results in plan order (also passed to `on_result`
    as each finishes, so an interrupted run keeps what it finished)."""
    with serve_directory(miniwob.html_dir()) as base_url:
        async with harness(db, plan.step_timeout, headless) as (endpoint, store):
            return await _Runner(plan, endpoint.browser, store, policy, base_url,
                                 on_result).run_all()


class _Runner:
    def __init__(self, plan: EvalPlan, browser: ExtensionBrowser, store: Store, policy: Policy,
                 base_url: str, on_result: Callable[[EpisodeResult], None]):
        self.plan, self.browser, self.store, self.policy = plan, browser, store, policy
        self.base_url, self.on_result = base_url, on_result

    async def run_all(self) -> list[EpisodeResult]:
        jobs = self.plan.jobs
        results: list[EpisodeResult | None] = [None] * len(jobs)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(jobs)):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                results[i] = await self.run_one(*jobs[i])
                self.on_result(results[i])

        await asyncio.gather(*(worker() for _ in range(max(1, self.plan.parallel))))
        return [r for r in results if r is not None]

    async def run_one(self, task: str, seed: int) -> EpisodeResult:
        result = EpisodeResult(task, seed, miniwob.split_of(seed), success=False,
                               raw_reward=None, done=False)
        started = time.perf_counter()
        browser = self.browser
        tab_id = None
        try:
            url = miniwob.task_url(self.base_url, task)
            opened = await browser.act(None, Action("goto", {"url": url}))
            if not opened.ok or opened.tab_id is None:
                raise BrowserError(f"could not open {url}: {opened.error}")
            tab_id = opened.tab_id
            state = await browser.probe(tab_id, "miniwob.start", seed=seed,
                                        max_time_ms=miniwob.MAX_TIME_MS)
            state = await self._ready(tab_id, state)
            result.utterance = state["utterance"]
            episode = await self.store.start_episode(Episode(
                task=state["utterance"], source=self.plan.source, start_url=url,
                policy=self.policy.name, adapter=self.policy.adapter))
            result.episode_id = episode.id
            state: dict = {}

            async def page_ended(tab: int | None) -> bool:
                try:
                    state.update(await browser.probe(tab, "miniwob.state"))
                except BrowserError as exc:     # BrowserGym ends such an episode too, with 0
                    raise BrowserError(f"the agent left the task page ({exc})") from None
                return bool(state.get("done"))
            # The harness opened and started the page itself: the loop must not reload it.
            final = await asyncio.wait_for(
                run_episode(dataclasses.replace(episode, start_url=None), store=self.store,
                            browser=browser, policy=self.policy, stop=asyncio.Event(),
                            limits=self.plan.limits, tab_id=tab_id, page_ended=page_ended),
                self.plan.episode_timeout)
            result.status = final.status
            if not state.get("done"):           # ended by the agent, the limit or an error
                try:
                    state.update(await browser.probe(tab_id, "miniwob.state"))
                except BrowserError as exc:
                    state.update(done=False, reason=f"no task page to read: {exc}")
            result.done = bool(state.get("done"))
            result.raw_reward = float(state.get("raw_reward") or 0.0) if result.done else 0.0
            result.success = result.raw_reward > 0
            await self.store.add_reward(Reward(episode.id, "ground_truth", float(result.success), {
                "benchmark": "miniwob", "task": task, "seed": seed, "split": result.split,
                "done": result.done, "raw_reward": result.raw_reward,
                "reason": state.get("reason")}))
            steps = await self.store.steps(episode.id)
            result.steps, result.invalid = len(steps), sum(s.invalid for s in steps)
        except asyncio.TimeoutError:
            result.error = f"the episode did not finish within {self.plan.episode_timeout:g} s"
        except BrowserError as exc:
            result.error = str(exc)
        finally:
            result.seconds = round(time.perf_counter() - started, 3)
            if tab_id is not None:
                await browser.close_tab(tab_id)
        return result

    async def _ready(self, tab_id: int, state: dict) -> dict:
        deadline = time.monotonic() + READY_TIMEOUT
        while not state.get("ready"):
            if time.monotonic() > deadline:
                raise BrowserError(f"the task page was not ready within {READY_TIMEOUT:g} s")
            await asyncio.sleep(0.1)
            state = await self.browser.probe(tab_id, "miniwob.state")
        return state
