"""Episodes on a Ray cluster: an evaluation or a practice run spread over Ray actors, each a
headless Chromium with the extension, an endpoint and a policy of its own, and the benchmark's
pages served on its own node.

Contract:
- The driver is the store's one writer. An actor records each episode into a scratch store of
  its own (a temporary SQLite file on its node, emptied after every group) and returns the
  episode, its steps and its rewards; the driver stores them under new ids in one transaction
  (`Store.import_episode`): the store never holds half an episode, and an episode run again
  after an actor died is stored once.
- A job is a (task, seed) group of `plan.attempts` episodes, run back to back on one actor (its
  model's prefix cache then serves the group's first prompt); groups are handed out in the
  plan's order, so the same plan gives the same (task, seed) pairs as a local run, and the
  results have the same shape (`EpisodeResult`, in plan order).
- Faults, with Ray's own options: an actor that dies is started again (`max_restarts`) and its
  group run again once (`max_task_retries`); an actor whose browser is gone at an episode's
  end (the extension's reconnect grace passed) relaunches it and raises `BrowserGone`, which
  Ray retries once too (`retry_exceptions`). A group that fails
  twice is stored as failed episodes that say why. A cluster that goes away, or Ctrl-C, stops
  the run: what finished is stored, nothing else.
- Ray is an optional extra (`pip install .[ray]`): nothing imports this module's Ray parts
  unless a run asks for a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.agent.policy import Policy
from daemon.core.errors import UsageError
from daemon.core.settings import Settings
from daemon.core.store import Episode, Reward, Step, Store, now

from . import splits
from .evaluation import EpisodeResult, EvalPlan, Runner, share_out
from .harness import harness

log = logging.getLogger(__name__)

LOCAL = "local"                 # the address that means: start a Ray instance on this machine
CLOSE_TIMEOUT = 30.0            # seconds for the actors to close their browsers at the end
FOLDER_PREFIX = "nightloop-actor-"      # an actor's temporary folder: then its pid, then -


@dataclass(frozen=True)
class Cluster:
    """Where and how wide: `address` of a running cluster (``ray://host:10001``, ``auto``), or
    LOCAL for an instance of this process's own; `actors` browsers at once, each reserving
    `cpus` of its node."""
    address: str = LOCAL
    actors: int = 2
    cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.actors < 1 or self.cpus <= 0:
            raise UsageError("a Ray run needs at least one actor and a positive CPU share")


@dataclass(frozen=True)
class Recipe:
    """How each actor builds its policy: `make(settings)`, called on the actor. An adapter
    file the settings name travels with the recipe (its bytes, through Ray's object store), so
    a node needs only nightloop and its model package installed, not the driver's files."""
    make: Callable[[Settings | None], Policy]
    settings: Settings | None = None

    def build(self) -> Policy:
        return self.make(self.settings)

    def adapter_bytes(self) -> bytes | None:
        path = self.settings.adapter if self.settings else ""
        return Path(path).read_bytes() if path and path != "none" else None


@dataclass
class Recorded:
    """One episode as an actor ran it: the result, and the rows to store (none when it never
    started: the page did not open)."""
    result: EpisodeResult
    episode: Episode | None = None
    steps: list[Step] = dataclasses.field(default_factory=list)
    rewards: list[Reward] = dataclasses.field(default_factory=list)


class BrowserGone(Exception):
    """The actor's browser died during a group; it has a new one, and the group may be run
    again."""


class EpisodeActor:
    """A Ray actor's state: one policy, one browser with the extension, one endpoint, one
    scratch store, the benchmark's pages; `run` plays one (task, seed) group."""

    def __init__(self, plan: EvalPlan, recipe: Recipe, adapter: bytes | None):
        _sweep()
        self.plan = plan
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        settings = recipe.settings
        if adapter is not None and settings is not None:
            path = self.folder / Path(settings.adapter).name
            path.write_bytes(adapter)
            settings = dataclasses.replace(settings, adapter=str(path))
        self.policy = Recipe(recipe.make, settings).build()
        self.stack: contextlib.AsyncExitStack | None = None
        self.runner: Runner | None = None
        self.busy = asyncio.Lock()         # one group at a time; `close` does not wait for it

    async def ready(self) -> tuple[str, str | None]:
        """Start the browser and serve the pages now (so a node that cannot fails the run at
        once, with its reason); the policy's name and adapter."""
        await self._runner()
        return self.policy.name, self.policy.adapter

    async def run(self, task: str, seed: int) -> list[Recorded]:
        async with self.busy:
            runner = await self._runner()
            group = []
            for _ in range(self.plan.attempts):
                result = await runner.run_one(task, seed)
                if not runner.browser.connected:    # it ended without a browser: not trusted
                    await self._close()             # the next try gets a new browser
                    raise BrowserGone(result.error or f"the browser went away ({result.status})")
                group.append(await self._rows(runner.store, result))
            return group

    async def close(self) -> None:
        """The browser closed, the pages no longer served, the scratch store removed."""
        await self._close()
        shutil.rmtree(self.folder, ignore_errors=True)

    async def _runner(self) -> Runner:
        if self.runner is None:
            stack = contextlib.AsyncExitStack()
            try:
                base_url = stack.enter_context(self.plan.benchmark.serve())
                endpoint, store = await stack.enter_async_context(
                    harness(self.folder / "scratch.db", self.plan.step_timeout))
            except BaseException:
                await stack.aclose()
                raise
            self.stack = stack
            self.runner = Runner(self.plan, endpoint.browser, store, self.policy, base_url)
        return self.runner

    async def _close(self) -> None:
        stack, self.stack, self.runner = self.stack, None, None
        if stack:
            with contextlib.suppress(Exception):
                await stack.aclose()

    @staticmethod
    async def _rows(store: Store, result: EpisodeResult) -> Recorded:
        """The episode's rows, then gone from the scratch store."""
        if result.episode_id is None:
            return Recorded(result)
        recorded = Recorded(result, await store.episode(result.episode_id),
                            await store.steps(result.episode_id),
                            await store.rewards(result.episode_id))
        await store.delete_episodes([result.episode_id], purge=False)   # the file goes at close
        return recorded


async def evaluate_on_ray(plan: EvalPlan, recipe: Recipe, *, db: Path, cluster: Cluster,
                          on_result: Callable[[EpisodeResult], None] = lambda r: None,
                          on_ready: Callable[[str, str | None], None] = lambda n, a: None
                          ) -> list[EpisodeResult]:
    """`evaluation.evaluate` on Ray actors: every (task, seed) of `plan`, stored in the store
    at `db` by this process alone; results in plan order (also passed to `on_result` as each
    is stored, so an interrupted run keeps what it finished). `on_ready` hears the policy's
    name and adapter once the actors have started."""
    if plan.screenshots:
        raise UsageError("screenshots stay on the node that took them: run without "
                         "--screenshots on Ray")
    if plan.parallel > 1:
        raise UsageError("on Ray, --actors says how many episodes run at once (one tab each): "
                         "leave out --parallel")
    ray = _ray()
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, cluster)
    try:
        actor_class = ray.remote(       # 2: `close` runs beside a group (which `busy` keeps
            num_cpus=cluster.cpus, max_concurrency=2, max_restarts=-1, max_task_retries=1,
        )(EpisodeActor)                 # to one at a time)
        adapter = recipe.adapter_bytes()        # in the object store once, for every actor
        adapter = ray.put(adapter) if adapter is not None else None
        actors = [actor_class.remote(plan, recipe, adapter) for _ in range(cluster.actors)]
        on_ready(*await _all_ready(ray, actors))
        try:
            async with await Store.open(db, recover=False) as store:
                return await _Driver(ray, plan, store, on_result).run(actors)
        finally:
            await _close(ray, actors)
    finally:
        if started_here:
            ray.shutdown()


class _Driver:
    """Hands the plan's groups to actors as they come free and stores what they return."""

    def __init__(self, ray: Any, plan: EvalPlan, store: Store,
                 on_result: Callable[[EpisodeResult], None]):
        self.ray, self.plan, self.store, self.on_result = ray, plan, store, on_result

    async def run(self, actors: list) -> list[EpisodeResult]:
        groups = list(dict.fromkeys(self.plan.jobs))        # (task, seed) once, in plan order
        done = await share_out(groups, actors, lambda actor, group: self.group(actor, *group))
        return [r for results in done for r in results]

    async def group(self, actor, task: str, seed: int) -> list[EpisodeResult]:
        started = time.perf_counter()
        try:
            recorded = await actor.run.options(
                retry_exceptions=[BrowserGone]).remote(task, seed)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError) as exc:
            recorded = await self.lost(task, seed, _reason(exc), time.perf_counter() - started)
        results = []
        for r in recorded:
            if r.episode is not None:
                episode = await self.store.import_episode(r.episode, r.steps, r.rewards)
                r.result.episode_id = episode.id
            results.append(r.result)
            self.on_result(r.result)
        return results

    async def lost(self, task: str, seed: int, reason: str, seconds: float) -> list[Recorded]:
        """A group no actor could run, twice: failed episodes that say why."""
        error = f"no actor could run it: {reason}"
        return [Recorded(
            EpisodeResult(task, seed, splits.split_of(seed), success=False, raw_reward=None,
                          done=False, seconds=round(seconds, 3), status="failed", error=error),
            Episode(task=f"{self.plan.benchmark.name} {task}, seed {seed}",
                    source=self.plan.source, status="failed", error=error, ended_at=now()))
            for _ in range(self.plan.attempts)]


def _sweep() -> None:
    """Remove the folders of actors on this node whose process is gone (killed, so they could
    not clean up): their scratch stores and adapters do not outlive them by more than this."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:             # another user's: alive, and not ours to remove
        return True
    return True


async def _close(ray: Any, actors: list) -> None:
    """Each actor closes its browser and removes its scratch store (within CLOSE_TIMEOUT),
    then ends: a cluster that outlives the run (a daemon's nights) keeps nothing of it."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await asyncio.gather(*(actor.close.remote() for actor in actors),
                                 return_exceptions=True)
    for actor in actors:
        ray.kill(actor)


def _reason(exc: Exception) -> str:
    cause = getattr(exc, "cause", None)
    return str(cause or exc).strip().splitlines()[-1][:500]


async def _all_ready(ray: Any, actors: list) -> tuple[str, str | None]:
    """Every actor's browser is up (the policy's name and adapter), or the run stops here
    saying why."""
    try:
        return (await asyncio.gather(*(actor.ready.remote() for actor in actors)))[0]
    except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
        raise UsageError(f"a Ray actor could not start its browser: {_reason(exc)}") from None


def _connect(ray: Any, cluster: Cluster) -> None:
    """Join the cluster, or start one here. Actors' output and Ray's retry notices stay in
    Ray's session logs (`/tmp/ray/session_latest/logs` on each node), out of this process's
    stdout, which a command's --json owns; what failed comes back as each group's reason."""
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if cluster.address == LOCAL:
        ray.init(num_cpus=max(cluster.actors * cluster.cpus, 1), include_dashboard=False,
                 object_store_memory=256 * 2**20, **quiet)
        return
    try:
        ray.init(address=cluster.address, **quiet)
    except ConnectionError as exc:
        raise UsageError(f"no Ray cluster at {cluster.address}: {exc}") from None


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("Ray is not installed: pip install 'nightloop[ray]'") from None
    return ray
