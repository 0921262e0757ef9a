"""One learning cycle: practice → judge → SFT / GRPO → export → gate → promote.

Contract:
- Practice repeats MiniWoB++ tasks (by default every DOM-level task) on train seeds (always
  safe to repeat; new seeds every night, after the last one an earlier night's practice
  reached, seed by seed across the tasks so a budget cut spares no task, by default as many
  as practice's time allows) and the user's newest practice-safe tasks (daemon/tasks/practice.py:
  only those the user allowed, forms submitted only on allowed sites), K times each, through
  the normal daemon → extension path in a browser of its own, with the serving adapter
  sampling its whole distribution (no top-k/top-p/min-p cut) at `practice_temperature`, a
  `practice_explore` share of its steps with a kind of action drawn at random, source
  ``practice``; the scripted teacher (the oracle), where it knows a task, runs `teacher_seeds`
  MiniWoB++ train seeds once, one source of demonstrations among others. The user's good
  practice-safe demonstrations are replayed `demo_replays` times on fresh loads (no model):
  each that finishes on its recorded steps alone is a new positive example (a ``replay``
  reward of 1); with bundled site templates to practise (by default those your
  demonstrations fit), your demonstrations are also replayed with the values of the practice
  seeds' tasks they fit (daemon/tasks/sites/replays.py), each verified by the site's ground
  truth. The judge scores every episode of the cycle that has no other reward, then up to
  `judge_refit_episodes` of those with ground truth (spread over the templates) to refit its
  calibration on the store's record (judge/refit.py; adopted only where it ranks them at
  least as well as the shipped fit; training still counts the ground truth).
- One user task in four is held out (`PracticeTask.held_out`): never practised or trained on,
  it is what the gate's second half measures.
- Training starts from the serving adapter's weights (kept as a peft folder beside its GGUF)
  or a fresh LoRA; SFT on teacher / demonstration (with variants: trainer/augment.py) / good
  user and practice episodes, a thumbs-up episode that never said done ending with it, then GRPO
  on the groups of this cycle's practice. The adapter is exported to GGUF and recorded as a
  candidate.
- The gate runs MiniWoB++ validation seeds (`splits`: train seeds practice never reaches; the
  test seeds stay for measuring) seed by seed across the tasks (`gate_episodes` per
  adapter when the budget allows; a cut leaves no task unmeasured, and one with no pair is
  reported) with the candidate and with the serving adapter, and each practice-safe user task
  once each (so the morning report can say which got better), scored by the judge, both at
  `gate_temperature` (greedy). The candidate is promoted on
  evidence: by `gate_promote`, more paired seeds won than lost (a sign test is reported
  beside it); the judge's reward on held-out user tasks vetoes only with `gate_min_held_out`
  of them and a loss beyond `gate_reward_margin`. The serving adapter's outcomes an earlier
  gate measured greedily under the same conditions are reused, not measured again
  (trainer/gate_results.py). A running daemon is told to switch.
- `budget` seconds cap the whole cycle: each phase stops cleanly at its share and the cycle goes
  on with what it has (a resumed cycle gives the phases it has left their own shares). The
  gate's share is what its episodes need at the last gate's pace (`_gate_need`, at most
  `gate_share`); practice gets what it leaves. On
  any failure the serving adapter stays and `CycleResult.error` says why.
- Recorded as it runs: a `Night` row in the store, started with the cycle and written as each
  phase ends (trainer/night.py: what practice did, what training learned from, the gate, the
  decision and why), finished or failed with the error and the phase it failed in; a resumed
  cycle goes on with the same row. `nightloop night` and the popup's panel read it.
- Resumable: the cycle's state (data window, phase, candidate) lives in ``<store>.cycle.json``
  beside the store it belongs to, and training saves its state every few steps; a cycle
  started while an unfinished one is on record for the same store and serving adapter goes on
  from there (`fresh` discards it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from daemon.agent.episode import Limits
from daemon.agent.policy import Policy
from daemon.agent.replay import recorded_demonstrations
from daemon.core.settings import Settings, data_dir
from daemon.core.store import Adapter, Night, Store, now
from daemon.tasks import miniwob, splits
from daemon.tasks.cluster import Recipe, evaluate_on_ray
from daemon.tasks.evaluation import EpisodeResult, EvalPlan, evaluate
from daemon.tasks.practice import (
    Rules,
    demonstrations_to_replay,
    held_out,
    practice_tasks,
    practise,
    replay_demonstrations,
)
from daemon.tasks.sites import Sites
from daemon.tasks.sites.replays import demonstrated, fitting_seeds, replay_with_values

from .clock import Clock
from .config import CyclePlan, TrainConfig
from .data import mastered, practice_outcomes, training_set, windows
from .gate import GateOutcome, compare, decide
from .gate_results import GateResults, policy_key
from .night import practised, trained_on
from .starting import serving_adapter
from .train import Report, train

# A greedy model step on 2 cores, with time to spare: the gate plans with it when this
# process has not timed its own episodes (a resumed cycle).
STEP_SECONDS = 2.0
GATE_SETUP_SECONDS = 60     # the gate's two models and its browser, started
PRACTICE_SEEDS = 30         # the most train seeds a night practises when its time allows
SITE_REPLAY_SEEDS = 3       # of those, the seeds whose site tasks replays with values try

Say = Callable[[str], None]
Progress = Callable[[str, int, int], None]      # (what, done, total)


@dataclass
class CycleResult:
    adapter_id: int | None = None
    promoted: bool = False
    gate: GateOutcome | None = None
    practice_episodes: int = 0
    groups: int = 0                 # informative GRPO groups (attempts whose rewards differ)
    judged: int = 0
    calibration: str | None = None  # what the judge's refit did (judge/refit.py)
    training: list[dict] = field(default_factory=list)     # each phase's train.Report
    sft_steps: int = 0
    grpo_steps: int = 0
    seconds: dict = field(default_factory=dict)
    resumed: str | None = None      # the phase an unfinished cycle went on from
    error: str | None = None


@dataclass
class CycleState:
    """What a cycle needs to go on after an interruption (``<store>.cycle.json``: a cycle on
    another store never picks it up)."""
    db: str                         # the store the cycle reads and writes
    first_id: int                   # the cycle's episodes are those with a higher id
    serving: int | None             # the adapter serving when it started
    folder: str                     # where its adapter, training state and gate db go
    phase: str = "practice"
    candidate: int | None = None
    seed_skip: int = 0              # train seeds earlier practice used: tonight's come after
    started: str = field(default_factory=now)
    night: int | None = None        # its row in the store's nights

    @staticmethod
    def path(db: Path | str) -> Path:
        return Path(f"{db}.cycle.json")

    @classmethod
    def load(cls, db: Path | str) -> CycleState | None:
        try:
            return cls(**json.loads(cls.path(db).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self) -> None:
        path = self.path(self.db)
        tmp = path.with_suffix(".partial")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2))
        tmp.replace(path)

    def done(self) -> None:
        self.path(self.db).unlink(missing_ok=True)


async def _bounded(coro, seconds: float, say: Say, what: str):
    """Await `coro` for at most `seconds`; on the cap, cancel it cleanly and return None.
    (`asyncio.timeout`, not `wait_for`: on Python 3.11 a `wait_for` inside can swallow the
    cancellation — cpython#86296 — and practice then ran on past its share.)"""
    try:
        async with asyncio.timeout(max(1.0, seconds)):
            return await coro
    except TimeoutError:
        say(f"{what}: budget reached, going on with what finished")
        return None


def _counter(progress: Progress, what: str, total: int) -> Callable[[object], None]:
    """A callback that reports one more of `total` each time it is called."""
    done = [0]
    progress(what, 0, total)

    def tick(_: object) -> None:
        done[0] += 1
        progress(what, done[0], total)
    return tick


class _Cycle:
    """One cycle's context, built once by `prepare`; each phase is a method of it, and `run`
    goes through them in order (TrainConfig.shares') from the phase the cycle's state is in."""

    def __init__(self, settings: Settings, config: TrainConfig, plan: CyclePlan, budget: float,
                 say: Say, progress: Progress):
        plan = plan if plan.tasks else dataclasses.replace(plan, tasks=tuple(miniwob.suite("all")))
        self.settings, self.config, self.plan = settings, config, plan
        self.say, self.progress = say, progress
        self.db = settings.db_path
        self.result = CycleResult()
        self.start, self.budget = time.monotonic(), budget
        self.clock = Clock(budget, config.shares)      # planned once the phase is known

    async def run(self, fresh: bool) -> CycleResult:
        await self.prepare(fresh)
        phases = {"practice": self.practise, "judge": self.judge, "train": self.train,
                  "gate": self.gate}
        names = list(phases)
        for phase in names[names.index(self.state.phase):]:
            await self.set_phase(phase)
            await phases[phase]()
        self.state.done()
        return self.result

    async def prepare(self, fresh: bool) -> None:
        """The context every phase reads: the serving adapter, the cycle's state (an
        unfinished one's, to go on with), its night row, the user's tasks, demonstrations and
        rules, the practice policy, and the deadlines of the phases left."""
        from daemon.agent.llama_policy import LlamaPolicy
        async with await Store.open(self.db, recover=False) as store:
            self.serving = await serving_adapter(store, self.settings)
            serving_id = self.serving.id if self.serving else None
            state = None if fresh else CycleState.load(self.db)
            if state and state.serving == serving_id:
                self.result.resumed = state.phase
                self.say(f"going on with the cycle started {state.started} at its "
                         f"{state.phase} phase (--fresh starts over)")
            else:
                first = max((e.id for e in await store.episodes(1)), default=0)
                state = CycleState(str(self.db), first, serving_id,
                                   str(data_dir() / "adapters" / time.strftime("%Y%m%d-%H%M%S")),
                                   seed_skip=await _practised_seeds(store))
            if state.night is None:
                state.night = (await store.start_night(Night(
                    state.first_id, serving_id, self.budget, phase=state.phase))).id
            else:
                await store.update_night(state.night, status="running", phase=state.phase,
                                         error=None, ended_at=None)
            user = await practice_tasks(store, self.config.practice_user_tasks)
            self.mastered = await self._mastered_last_night(store, state)
            self.rules = Rules(await store.practice_rules())
            self.demos = [d for d in await demonstrations_to_replay(store) if not d.held_out]
            self.recorded = [  # for the bundled sites' tasks; the held-out ones stay out
                (demo, steps) for demo, steps in await recorded_demonstrations(store)
                if not await held_out(store, demo)]
        if self.plan.sites is None:
            self.plan = dataclasses.replace(self.plan, sites=demonstrated(self.recorded))
        self.state = state
        state.save()
        self.folder = Path(state.folder)
        self.mine = [t for t in user if not t.held_out]
        self.held = [t for t in user if t.held_out]
        self.yours = self.mine + self.held          # all of them are measured at the gate
        self.current = dataclasses.replace(
            self.settings, adapter=self.serving.path if self.serving else "")
        # Practice samples the policy's whole distribution: no top-k / top-p / min-p cut (which
        # llama.cpp applies by default), and a fresh seed every step (recorded with it; a fixed
        # `seed` setting would make every attempt the same), so attempts differ as the model
        # really would.
        self.recipe = Recipe(
            functools.partial(LlamaPolicy,
                              distinct_openings=self.config.practice_distinct_openings),
            dataclasses.replace(self.current, temperature=self.config.practice_temperature,
                                top_k=0, top_p=1.0, min_p=0.0, seed=-1,
                                explore=self.config.practice_explore))
        self.policy = self.recipe.build()       # your tasks, and the training data's prompts
        self.clock.plan(state.phase, self._gate_need())

    async def episodes(self, plan: EvalPlan, recipe: Recipe, db: Path,
                       on_result: Callable[[EpisodeResult], None] = lambda r: None,
                       policy: Policy | None = None) -> list[EpisodeResult]:
        """A benchmark plan's episodes: on the night's Ray actors when it has a cluster
        (each builds `recipe`'s policy), else here with `policy` (`recipe`'s if none)."""
        if self.plan.cluster:
            return await evaluate_on_ray(plan, recipe, db=db, cluster=self.plan.cluster,
                                         on_result=on_result)
        return await evaluate(plan, policy=policy or recipe.build(), db=db,
                              on_result=on_result)

    async def set_phase(self, phase: str) -> None:
        """The cycle is in `phase` now: on record in its state and its night row."""
        self.state.phase = phase
        self.state.save()
        await self.record(phase=phase)

    async def record(self, **changes) -> None:
        """Write some of this night's fields (`Night`'s) to the store."""
        async with await Store.open(self.db, recover=False) as store:
            await store.update_night(self.state.night, **changes)

    async def finish(self) -> None:
        """The night's end in its row: finished, or failed with the error and its phase."""
        if getattr(self, "state", None) is None or self.state.night is None:
            return                  # it failed before it had a row
        await self.record(status="failed" if self.result.error else "finished",
                          phase=self.state.phase if self.result.error else "done",
                          error=self.result.error, ended_at=now(),
                          seconds=self.result.seconds)

    # -- practice -----------------------------------------------------------------------------

    async def _mastered_last_night(self, store: Store, state: CycleState) -> set[str]:
        """The benchmark tasks (`benchmark:task`) last night's practice solved in every
        attempt of every seed (with `sft_skip_solved`): tonight's practice leaves them out."""
        if not self.config.sft_skip_solved:
            return set()
        starts = await windows(store, before=state.first_id)
        if not starts:
            return set()
        return mastered(await practice_outcomes(store, max(starts), before=state.first_id + 1))

    async def practise(self) -> None:
        from daemon.tasks.oracle import SOLVERS, OraclePolicy
        t0, k = time.monotonic(), self.config.practice_k
        def to_learn(names: tuple[str, ...], benchmark: str) -> tuple[str, ...]:
            return tuple(n for n in names if f"{benchmark}:{n}" not in self.mastered)
        plan = dataclasses.replace(self.plan, tasks=to_learn(self.plan.tasks, "miniwob"),
                                   sites=to_learn(self.plan.sites, "sites"))
        if self.mastered:
            self.say(f"practice: leaves out {', '.join(sorted(self.mastered))}, solved in every "
                     "attempt last night")
        seeds = splits.seeds("train", plan.practice_seeds or PRACTICE_SEEDS,
                             skip=self.state.seed_skip)
        taught = [t for t in plan.tasks if t in SOLVERS]
        if plan.teacher_seeds and taught:
            teach = splits.seeds("train", plan.teacher_seeds)
            self.say(f"teacher: oracle on {len(taught)} tasks x {len(teach)} train seeds")
            await _bounded(self.episodes(EvalPlan(taught, teach, plan.max_steps,
                                                  source="practice", by_seed=True),
                                         Recipe(lambda _: OraclePolicy()), self.db),
                           self.clock.left("practice"), self.say, "teacher")
        name = f"{self.policy.name} (adapter {self.state.serving or 'none'})"
        self.say(f"practice: {name} on {len(plan.tasks)} tasks x "
                 + (f"{len(seeds)} seeds" if plan.practice_seeds else
                    f"as many seeds as time allows (from train seed {seeds[0]})") + f" x {k}")
        site_replays = fitting_seeds(self.recorded, list(plan.sites),
                                     seeds[:plan.practice_seeds or SITE_REPLAY_SEEDS])
        tick = _counter(self.progress, "practice",
                        (len(plan.tasks) + len(plan.sites)) * len(seeds) * k + len(self.mine) * k
                        + len(self.demos) * self.config.demo_replays
                        + sum(map(len, site_replays.values())))

        def count(done: object) -> None:
            self.result.practice_episodes += 1
            tick(done)
        # of practice's time left, the benchmarks' share when the user's tasks follow them
        benchmarks_share = self.config.miniwob_practice_share if self.mine else 1
        # Replays first: they need no model and take seconds, whatever practice leaves.
        if self.demos and self.config.demo_replays:
            self.say(f"practice: {len(self.demos)} of your demonstrations replayed "
                     f"x {self.config.demo_replays} on fresh loads (no model)")
            await _bounded(replay_demonstrations(self.demos, self.config.demo_replays,
                                                 db=self.db, rules=self.rules,
                                                 screenshots=plan.screenshots, on_episode=count),
                           self.clock.left("practice"), self.say, "replays of your demonstrations")
        if site_replays:
            self.say(f"practice: your demonstrations replayed with the values of "
                     f"{sum(map(len, site_replays.values()))} site tasks (no model)")
            await _bounded(replay_with_values(self.recorded, site_replays, db=self.db,
                                              max_steps=2 * plan.max_steps,
                                              screenshots=plan.screenshots, on_result=count),
                           self.clock.left("practice"), self.say, "replays with the sites' values")
        await _bounded(self.episodes(EvalPlan(list(plan.tasks), seeds, plan.max_steps,
                                              source="practice", by_seed=True, attempts=k,
                                              screenshots=plan.screenshots),
                                     self.recipe, self.db, count, self.policy),
                       self.clock.left("practice") * benchmarks_share * (0.5 if plan.sites else 1),
                       self.say, "practice")      # with sites to practise, MiniWoB++ gets half
        if plan.sites:
            self.say(f"practice: {len(plan.sites)} site templates x {len(seeds)} seeds x {k}")
            await _bounded(self.episodes(EvalPlan(list(plan.sites), seeds, 2 * plan.max_steps,
                                                  source="practice", by_seed=True, attempts=k,
                                                  benchmark=Sites(),
                                                  screenshots=plan.screenshots),
                                         self.recipe, self.db, count, self.policy),
                           self.clock.left("practice") * benchmarks_share,
                           self.say, "practice on the bundled sites")
        if self.mine:
            self.say(f"practice: {len(self.mine)} of your tasks x {k}"
                     + (f" ({len(self.held)} held out for the gate)" if self.held else ""))
            await _bounded(practise(self.mine, k, policy=self.policy, db=self.db,
                                    rules=self.rules, limits=Limits.of(self.settings),
                                    screenshots=plan.screenshots, on_episode=count),
                           self.clock.left("practice"), self.say, "practice on your tasks")
        async with await Store.open(self.db, recover=False) as store:
            last = max((e.id for e in await store.episodes(1)), default=self.state.first_id)
            await store.update_night(
                self.state.night, practice=await practised(store, self.state.first_id, last,
                                                           {t.task for t in self.mine}),
                last_episode=last)
        self.result.seconds["practice"] = round(time.monotonic() - t0, 1)

    # -- the judge ----------------------------------------------------------------------------

    async def judge(self) -> None:
        """The judge scores the cycle's episodes that have no other reward, then (with
        `judge_refit_episodes`) some with ground truth to refit its calibration; what is left
        when its time ends, the daemon's queue judges."""
        t0 = time.monotonic()
        async with await Store.open(self.db, recover=False) as store:
            pending = await store.unjudged(after=self.state.first_id)
            self.result.judged = await self._judge(store, pending)
            if self.config.judge_refit_episodes:
                await self._refit_judge(store)
            await store.update_night(self.state.night, judge={
                "judged": self.result.judged, "calibration": self.result.calibration})
        self.result.seconds["judge"] = round(time.monotonic() - t0, 1)

    async def _refit_judge(self, store: Store) -> None:
        """Let the judge score some of the cycle's episodes with ground truth, spread over the
        task templates, then refit its calibration on the store's record (judge/refit.py)."""
        from judge.calibration import local_path
        from judge.judge import template
        from judge.refit import refit
        ids = await store.unjudged_with_truth(after=self.state.first_id)
        turn, seen = {}, Counter()          # the n-th episode of its template: n
        for i in ids:
            key = template((await store.episode(i)).start_url)
            turn[i], seen[key] = seen[key], seen[key] + 1
        sample = sorted(ids, key=lambda i: (turn[i], i))[:self.config.judge_refit_episodes]
        self.result.judged += await self._judge(store, sample)
        outcome = await refit(store, local_path(self.db))
        self.result.calibration = outcome.describe()
        self.say(outcome.describe())

    async def _judge(self, store: Store, episode_ids: list[int], phase: str = "judge") -> int:
        """Score `episode_ids` with the judge while `phase`'s time lasts; how many it scored."""
        from judge.judge import judge_from_settings
        from judge.scoring import judge_episode
        if not episode_ids:
            return 0
        judge = judge_from_settings(self.settings)
        tick = _counter(self.progress, "judge", len(episode_ids))
        for done, episode_id in enumerate(episode_ids):
            if self.clock.left(phase) <= 0:
                self.say(f"judge: budget reached after {done} of {len(episode_ids)}; the "
                         "daemon's queue judges the rest")
                return done
            await judge_episode(store, judge, episode_id)
            tick(episode_id)
        return len(episode_ids)

    # -- training and export ------------------------------------------------------------------

    async def train(self) -> None:
        """SFT then GRPO from the serving adapter on the cycle's training set, exported to GGUF
        and recorded as the candidate (in the cycle's state for the gate)."""
        t0, config = time.monotonic(), self.config
        async with await Store.open(self.db, recover=False) as store:
            data = await training_set(store, config, self.policy.render,
                                      after=self.state.first_id)
            learnt_from = await trained_on(store, data)
        sft, grpo = data.sft, data.grpo
        self.result.groups = len({s.group for s in grpo})
        self.say(f"training: {len(sft)} SFT samples ({sum(s.relabelled for s in sft)} "
                 f"relabelled, {sum(s.variant > 0 for s in sft)} demonstration variants), "
                 f"{len(grpo)} GRPO samples "
                 f"({self.result.groups} informative groups)")
        from .export import export_adapter
        from .model import add_lora, load_base, load_lora
        base_path = self.policy.info.path
        model, tokenizer, arch = await asyncio.to_thread(load_base, base_path)
        model = load_lora(model, Path(self.serving.path).parent / "peft") if self.serving \
            else add_lora(model, config)
        self.folder.mkdir(parents=True, exist_ok=True)
        # SFT may use at most sft_share of the training time when GRPO has groups to learn
        # from (unsplit, SFT used all of it and GRPO never ran: bench/learning.py, first run).
        share = config.sft_share if grpo and config.grpo_epochs else 1.0
        sft_end = time.monotonic() + self.clock.left("train") * share
        grpo_end = self.clock.deadline["train"]
        for phase, samples, end in (("sft", sft, sft_end), ("grpo", grpo, grpo_end)):
            report: Report = await asyncio.to_thread(
                train, model, tokenizer, samples, config, phase, end,
                lambda r: self.progress(r.phase, r.steps, r.total_steps),
                self.folder / f"{phase}-state.pt")
            if report.resumed_at:
                self.say(f"{phase}: went on after step {report.resumed_at}")
            self.say(f"{phase}: {report.steps} steps, final loss {report.final_loss}"
                     + (f", {report.fitted:.0%} of probed samples reproduced"
                        if report.fitted is not None else "")
                     + (" (stopped at the budget)" if report.stopped_early else "")
                     + (f"; its tokens: {report.grpo}" if report.grpo else ""))
            self.result.training.append(dataclasses.asdict(report))
            setattr(self.result, f"{phase}_steps", report.steps)
        self.result.seconds["train"] = round(time.monotonic() - t0, 1)

        gguf = await asyncio.to_thread(export_adapter, model, self.folder / "adapter.gguf", arch)
        await asyncio.to_thread(model.save_pretrained, str(self.folder / "peft"))
        async with await Store.open(self.db, recover=False) as store:
            candidate = await store.add_adapter(Adapter(
                path=str(gguf), sha256=hashlib.sha256(gguf.read_bytes()).hexdigest(),
                base_model=base_path.name, parent=self.state.serving,
                config=config.to_json(), metrics={"training": self.result.training},
                data_window={"after_episode": self.state.first_id, "episodes": data.window,
                             "held_out_tasks": sorted(data.held)}))
        self.say(f"adapter {candidate.id} written: {gguf}")
        await self.record(candidate=candidate.id, training={
            **learnt_from, **{r["phase"]: {k: r[k] for k in ("steps", "total_steps",
                                                             "stopped_early", "seconds")}
                              | {"final_loss": r["losses"][-1] if r["losses"] else None}
                              for r in self.result.training}})
        self.state.candidate = candidate.id

    # -- the gate -----------------------------------------------------------------------------

    async def gate(self) -> None:
        from daemon.agent.llama_policy import LlamaPolicy
        t0, plan = time.monotonic(), self.plan
        self.result.adapter_id = self.state.candidate
        async with await Store.open(self.db, recover=False) as store:
            candidate = await store.adapter(self.state.candidate)
        gated = splits.seeds("validation", self._gate_seeds())
        settings = self._gate_settings
        earlier = GateResults.beside(self.db)
        keys = {name: self._gate_key(sha)
                for name, sha in (("candidate", candidate.sha256),
                                  ("serving", self.serving.sha256 if self.serving else None))}
        pace: list[float] = []              # seconds of each MiniWoB++ episode
        known = {(t, s): v for (t, s), v in earlier.known(keys["serving"]).items()
                 if t in plan.tasks and s in gated}
        unknown = [s for s in gated if any((t, s) not in known for t in plan.tasks)]
        if known:
            self.say(f"gate: the serving adapter's outcomes on {len(known)} of "
                     f"{len(plan.tasks) * len(gated)} episodes are known from an earlier gate")
        seen: dict[str, dict] = {}          # adapter → {(task, seed) or task: outcome}
        for name, adapter, seeds in (("candidate", candidate.path, gated),
                                     ("serving", self.current.adapter, unknown)):
            recipe = Recipe(LlamaPolicy, dataclasses.replace(settings, adapter=adapter))
            # loaded here only for what runs here: nothing left to measure, nothing to load
            policy = recipe.build() if self.yours or (seeds and not self.plan.cluster) \
                else None
            # of the gate time left: half for the candidate, unless the serving adapter has
            # nothing left to measure
            share = 0.5 if name == "candidate" and (unknown or self.yours) else 1.0
            tick = _counter(self.progress, f"gate {name}",
                            len(plan.tasks) * len(seeds) + len(self.yours))
            seen[name] = {} if name == "candidate" else dict(known)

            def record(r, seen=seen[name], tick=tick) -> None:
                seen[(r.task, r.seed)] = float(r.success)
                pace.append(r.seconds)
                tick(r)
            if seeds:
                await _bounded(self.episodes(EvalPlan(list(plan.tasks), seeds, plan.max_steps,
                                                      by_seed=True), recipe,
                                             self.folder / "gate.db", record, policy),
                               self.clock.left("gate") * share * (self.config.miniwob_gate_share
                                                            if self.yours else 1),
                               self.say, "gate")
            if self.yours:
                seen[name].update(await self._your_rewards(policy, tick,
                                                           self.clock.left("gate") * share))
            earlier.add(keys[name], seen[name])
        earlier.paced(pace)
        outcome = compare(seen["candidate"], seen["serving"], plan.tasks, known=len(known),
                          held={t.task for t in self.held})
        self.say(f"gate: {outcome.summary()}")
        if outcome.unmeasured:
            self.say(f"gate: no pair of episodes within the budget for "
                     f"{', '.join(outcome.unmeasured)}: not measured")
        self.result.seconds["gate"] = round(time.monotonic() - t0, 1)
        self.result.gate = outcome
        decision = decide(outcome, self.config)
        self.result.promoted = decision.promote
        async with await Store.open(self.db, recover=False) as store:
            await store.set_adapter_status(
                candidate.id, "promoted" if self.result.promoted else "rejected",
                metrics={"training": self.result.training or (candidate.metrics or {}).get(
                    "training"), "gate": dataclasses.asdict(outcome)})
            await store.update_night(self.state.night, candidate=candidate.id,
                                     gate=dataclasses.asdict(outcome),
                                     promoted=decision.promote, decision=decision.why)
        self.say(f"adapter {candidate.id}: {decision.why}")

    @property
    def _gate_settings(self) -> Settings:
        return dataclasses.replace(self.settings, temperature=self.config.gate_temperature)

    def _gate_key(self, adapter_sha256: str | None) -> str | None:
        """The key of an adapter's outcomes at the gate (`gate_results.policy_key`)."""
        return policy_key(self._gate_settings, self.policy.info.path, adapter_sha256,
                          self.plan.max_steps)

    def _gate_need(self) -> float:
        """Seconds the gate will take at the last gate's pace (at first, half the step limit
        at STEP_SECONDS a step), set-up included: `gate_episodes` for the candidate, as many
        for the serving adapter less those an earlier gate measured, and each held-out user
        task twice."""
        earlier, tasks = GateResults.beside(self.db), self.plan.tasks
        seeds = splits.seeds("validation", self.plan.gate_seeds or
                             math.ceil(self.config.gate_episodes / len(tasks)))
        known = earlier.known(self._gate_key(self.serving.sha256 if self.serving else None))
        wanted = [(t, s) for s in seeds for t in tasks]
        episodes = 2 * len(wanted) - sum(k in known for k in wanted) + 2 * len(self.yours)
        pace = earlier.episode_seconds or self.plan.max_steps * STEP_SECONDS / 2
        return GATE_SETUP_SECONDS + episodes * pace

    def _gate_seeds(self) -> int:
        """Validation seeds per task: the plan's, or enough for `gate_episodes` per adapter, cut to
        what the gate's time fits at the speed this cycle's episodes ran (said either way)."""
        tasks, config = len(self.plan.tasks), self.config
        if self.plan.gate_seeds:
            return self.plan.gate_seeds
        wanted = math.ceil(config.gate_episodes / tasks)
        practised = self.result.practice_episodes
        per_episode = self.result.seconds.get("practice", 0) / practised if practised else \
            self.plan.max_steps * STEP_SECONDS
        seconds = self.clock.left("gate") * (config.miniwob_gate_share if self.yours else 1) / 2
        fits = int(seconds / (tasks * per_episode))
        seeds = max(1, min(wanted, fits))
        self.say(f"gate: {seeds} validation seeds x {tasks} tasks = {seeds * tasks} episodes per "
                 f"adapter" + ("" if seeds == wanted else
                               f" (the budget fits {seeds * tasks} of the {config.gate_episodes} "
                               f"wanted, at {per_episode:.1f} s an episode)"))
        return seeds

    async def _your_rewards(self, policy, tick, seconds: float) -> dict[str, float]:
        """The judge's reward for one attempt at each of the user's tasks, by task."""
        db = self.folder / "gate.db"
        episodes = []
        await _bounded(practise(self.yours, 1, policy=policy, db=db, rules=self.rules,
                                limits=Limits.of(self.settings),
                                on_episode=lambda e: (episodes.append(e), tick(e))),
                       seconds, self.say, "gate on your tasks")
        async with await Store.open(db, recover=False) as store:
            await self._judge(store, [e.id for e in episodes], "gate")
            return {e.task: next(r.value for r in reversed(await store.rewards(e.id))
                                 if r.kind == "judge") for e in episodes}


async def _practised_seeds(store: Store) -> int:
    """How many train seeds the local model's practice has used: up to the highest one."""
    seeds = [group.seed for group in await practice_outcomes(store, 0) if group.benchmark]
    last = max((s for s in seeds if splits.split_of(s) == "train"), default=-1)
    return sum(splits.split_of(s) == "train" for s in range(last + 1))


async def run_cycle(settings: Settings, config: TrainConfig, plan: CyclePlan, *,
                    budget: float, say: Say = print,
                    progress: Progress = lambda what, done, total: None,
                    fresh: bool = False) -> CycleResult:
    """Run (or go on with) one cycle; never raises: a failure leaves the serving adapter and
    is told in `CycleResult.error`."""
    cycle = _Cycle(settings, config, plan, budget, say, progress)
    try:
        await cycle.run(fresh)
    except Exception as exc:           # the serving adapter stays; say why
        cycle.result.error = f"{type(exc).__name__}: {exc}"
        say(f"cycle failed, the serving adapter stays: {cycle.result.error} (run `nightloop "
            f"train --now` again to go on from the last finished phase)")
    cycle.result.seconds["total"] = round(time.monotonic() - cycle.start, 1)
    try:
        await cycle.finish()
    except Exception as exc:           # the store itself failed: the result still tells
        say(f"the night's record could not be finished: {type(exc).__name__}: {exc}")
    return cycle.result
