"""Evaluation runs through the real path: daemon → extension → page.

`evaluate` starts a `harness` (its own endpoint and a headless Chromium with the extension
paired to it) and serves the plan's benchmark (MiniWoB++ or the bundled sites, benchmark.py).
For each (task, seed) the benchmark opens and starts the task in a new tab through the
extension; its utterance becomes the episode's task and the ordinary episode loop runs. Where
the page ends its own episode (MiniWoB++), its state is read after every step and the episode
ends there, so no action can follow the end. The ground truth is stored as a ``ground_truth``
reward: 1 for success, else 0, the page's own reward and reason in its details. Up to
`parallel` episodes run at once, each in its own tab. A page that hangs or errors counts as a
failure with its reason; the run goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from daemon.agent.camera import Camera
from daemon.agent.episode import BrowserError, Limits, run_episode
from daemon.agent.policy import Policy
from daemon.bridge.extension_browser import ExtensionBrowser
from daemon.core.store import Episode, Reward, Store

from . import splits
from .benchmark import READY_TIMEOUT, Benchmark
from .harness import harness
from .miniwob import MiniWoB


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
    attempts: int = 1               # runs of each (task, seed), back to back (a group's first
                                    # prompt then comes from llama.cpp's prefix cache)
    benchmark: Benchmark = field(default_factory=MiniWoB)
    screenshots: bool = False       # keep a screenshot of each step (slower: two a second)

    @property
    def limits(self) -> Limits:
        return Limits(self.max_steps, self.step_timeout)

    @property
    def jobs(self) -> list[tuple[str, int]]:
        """(task, seed) in the order they run."""
        if self.by_seed:
            pairs = [(task, seed) for seed in self.seeds for task in self.tasks]
        else:
            pairs = [(task, seed) for task in self.tasks for seed in self.seeds]
        return [pair for pair in pairs for _ in range(self.attempts)]

    @property
    def episode_timeout(self) -> float:
        """A whole episode may take this long before it counts as hung."""
        return self.max_steps * (self.step_timeout + 5) + READY_TIMEOUT + 30


@dataclass
class EpisodeResult:
    task: str
    seed: int
    split: str
    success: bool                   # the ground truth (MiniWoB++: raw reward > 0, as BrowserGym)
    raw_reward: float | None        # the page's own reward (MiniWoB++: in [-1, 1]); None when
                                    # unknown
    done: bool                      # the page's episode ended (MiniWoB++), or the site's state
                                    # was read at the end (sites)
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
    with plan.benchmark.serve() as base_url:
        async with harness(db, plan.step_timeout, headless) as (endpoint, store):
            return await Runner(plan, endpoint.browser, store, policy, base_url,
                                on_result).run_all()


W, T, R = TypeVar("W"), TypeVar("T"), TypeVar("R")


async def share_out(items: Sequence[T], workers: Iterable[W],
                    run: Callable[[W, T], Awaitable[R]]) -> list[R]:
    """`run(worker, item)` for every item, each worker taking the next item as it comes free
    (one at a time per worker); the results in the items' order."""
    queue: asyncio.Queue[tuple[int, T]] = asyncio.Queue()
    for numbered in enumerate(items):
        queue.put_nowait(numbered)
    results: dict[int, R] = {}

    async def serve(worker: W) -> None:
        while not queue.empty():
            i, item = queue.get_nowait()
            results[i] = await run(worker, item)

    await asyncio.gather(*(serve(worker) for worker in workers))
    return [results[i] for i in sorted(results)]


class Runner:
    """Runs a plan's episodes in one browser, recording into `store` (cluster.py's actors
    run one each)."""

    def __init__(self, plan: EvalPlan, browser: ExtensionBrowser, store: Store, policy: Policy,
                 base_url: str, on_result: Callable[[EpisodeResult], None] = lambda r: None):
        self.plan, self.browser, self.store, self.policy = plan, browser, store, policy
        self.base_url, self.on_result = base_url, on_result

    async def run_all(self) -> list[EpisodeResult]:
        async def one(_tab: int, job: tuple[str, int]) -> EpisodeResult:
            result = await self.run_one(*job)
            self.on_result(result)
            return result
        return await share_out(self.plan.jobs, range(max(1, self.plan.parallel)), one)

    async def run_one(self, task: str, seed: int) -> EpisodeResult:
        result = EpisodeResult(task, seed, splits.split_of(seed), success=False,
                               raw_reward=None, done=False)
        started = time.perf_counter()
        tab_id = None
        try:
            attempt = await self.plan.benchmark.open(self.browser, self.base_url, task, seed)
            tab_id = attempt.tab_id
            result.utterance = attempt.utterance
            episode = await self.store.start_episode(Episode(
                task=attempt.utterance, source=self.plan.source, start_url=attempt.url,
                policy=self.policy.name, adapter=self.policy.adapter))
            result.episode_id = episode.id
            # The benchmark opened and started the page itself: the loop must not reload it.
            async with asyncio.timeout(self.plan.episode_timeout):
                final = await run_episode(
                    dataclasses.replace(episode, start_url=None), store=self.store,
                    browser=self.browser, policy=self.policy, stop=asyncio.Event(),
                    limits=self.plan.limits, tab_id=tab_id,
                    page_ended=attempt.ended if attempt.ends_itself else None,
                    camera=Camera(self.browser, self.store) if self.plan.screenshots else None)
            result.status = final.status
            outcome = await attempt.outcome()
            result.done, result.raw_reward = outcome.done, outcome.raw_reward
            result.success = outcome.success
            await self.store.add_reward(Reward(episode.id, "ground_truth", float(result.success), {
                "benchmark": self.plan.benchmark.name, "task": task, "seed": seed,
                "split": result.split, "done": outcome.done, "raw_reward": outcome.raw_reward,
                "reason": outcome.reason, **outcome.details}))
            steps = await self.store.steps(episode.id)
            result.steps, result.invalid = len(steps), sum(s.invalid for s in steps)
        except TimeoutError:
            result.error = f"the episode did not finish within {self.plan.episode_timeout:g} s"
        except BrowserError as exc:
            result.error = str(exc)
        finally:
            result.seconds = round(time.perf_counter() - started, 3)
            if tab_id is not None:
                await self.browser.close_tab(tab_id)
        return result
