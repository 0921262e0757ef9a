"""One learning cycle: practice → judge → SFT / GRPO → export → gate → promote.

Contract:
- Practice repeats MiniWoB++ tasks (by default every DOM-level task) on train seeds (always
  safe to repeat; a new block of seeds every night, seed by seed across the tasks so a budget
  cut spares no task) and the user's newest practice-safe tasks (daemon/tasks/practice.py:
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
- The gate runs the MiniWoB test split seed by seed across the tasks (`gate_episodes` per
  adapter when the budget allows; a cut leaves no task unmeasured, and one with no pair is
  reported) with the candidate and with the serving adapter, and the held-out user tasks once
  each, scored by the judge, both at `gate_temperature` (greedy). The candidate is promoted on
  evidence: by `gate_promote`, more paired test seeds won than lost (a sign test is reported
  beside it); the judge's reward on held-out user tasks vetoes only with `gate_min_held_out`
  of them and a loss beyond `gate_reward_margin`. The serving adapter's outcomes an earlier
  gate measured greedily under the same conditions are reused, not measured again
  (trainer/gate_results.py). A running daemon is told to switch.
- `budget` seconds cap the whole cycle: each phase stops cleanly at its share and the cycle goes
  on with what it has (a resumed cycle gives the phases it has left their own shares). On
  any failure the serving adapter stays and `CycleResult.error` says why.
- Resumable: the cycle's state (data window, phase, candidate) lives in ``<store>.cycle.json``
  beside the store it belongs to, and training saves its state every few steps; a cycle
  started while an unfinished one is on record for the same store and serving adapter goes on
  from there (`fresh` discards it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from daemon.agent.episode import Limits
from daemon.agent.replay import recorded_demonstrations
from daemon.core.settings import Settings, data_dir
from daemon.core.store import Adapter, Store, now
from daemon.tasks import miniwob, splits
from daemon.tasks.evaluation import EvalPlan, evaluate
from daemon.tasks.practice import (
    Rules,
    demonstrations_to_replay,
    held_out,
    practice_tasks,
    practise,
    replay_demonstrations,
)
from daemon.tasks.report import sign_test, won_lost
from daemon.tasks.sites import Sites
from daemon.tasks.sites.replays import demonstrated, fitting_seeds, replay_with_values

from .config import CyclePlan, TrainConfig
from .data import training_set
from .gate_results import GateResults, policy_key
from .starting import serving_adapter
from .train import Report, train

# A greedy model step on 2 cores, with time to spare: the gate plans with it when this
# process has not timed its own episodes (a resumed cycle).
STEP_SECONDS = 2.0

Say = Callable[[str], None]
Progress = Callable[[str, int, int], None]      # (what, done, total)


@dataclass
class CycleResult:
    adapter_id: int | None = None
    promoted: bool = False
    gate: dict = field(default_factory=dict)
    practice_episodes: int = 0
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
    night: int = 0                  # cycles the store saw before: picks new practice seeds
    started: str = field(default_factory=now)

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


def _rate(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


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
    """One cycle's run; each phase is a method, `run` chains them from the saved phase."""

    def __init__(self, settings: Settings, config: TrainConfig, plan: CyclePlan, budget: float,
                 say: Say, progress: Progress):
        plan = plan if plan.tasks else dataclasses.replace(plan, tasks=tuple(miniwob.suite("all")))
        self.settings, self.config, self.plan = settings, config, plan
        self.say, self.progress = say, progress
        self.db = settings.db_path
        self.result = CycleResult()
        self.start, self.budget = time.monotonic(), budget
        self.plan_time("practice")

    def plan_time(self, first: str) -> None:
        """Deadlines from now for phase `first` and those after it, each at its share of the
        budget (a resumed cycle spends only the shares of the phases it has left)."""
        phases = list(self.config.shares)
        left = phases[phases.index(first):]
        end = time.monotonic()
        self.deadline = dict.fromkeys(phases, end)
        for name in left:
            end += self.budget * self.config.shares[name]
            self.deadline[name] = end

    def left(self, phase: str) -> float:
        return self.deadline[phase] - time.monotonic()

    async def run(self, fresh: bool) -> CycleResult:
        from daemon.agent.llama_policy import LlamaPolicy
        async with await Store.open(self.db, recover=False) as store:
            self.serving = await serving_adapter(store, self.settings)
            serving_id = self.serving.id if self.serving else None
            state = None if fresh else CycleState.load(self.db)
            if state and state.serving == serving_id:
                self.result.resumed = state.phase
                self.plan_time(state.phase)
                self.say(f"going on with the cycle started {state.started} at its "
                         f"{state.phase} phase (--fresh starts over)")
            else:
                first = max((e.id for e in await store.episodes(1)), default=0)
                state = CycleState(str(self.db), first, serving_id,
                                   str(data_dir() / "adapters" / time.strftime("%Y%m%d-%H%M%S")),
                                   night=len(await store.adapters()))
            user = await practice_tasks(store, self.config.practice_user_tasks)
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
        self.current = dataclasses.replace(
            self.settings, adapter=self.serving.path if self.serving else "")
        # Practice samples the policy's whole distribution: no top-k / top-p / min-p cut (which
        # llama.cpp applies by default), and a fresh seed every step (recorded with it; a fixed
        # `seed` setting would make every attempt the same), so attempts differ as the model
        # really would.
        self.policy = LlamaPolicy(dataclasses.replace(
            self.current, temperature=self.config.practice_temperature, top_k=0, top_p=1.0,
            min_p=0.0, seed=-1, explore=self.config.practice_explore))
        if state.phase == "practice":
            await self.practise()
            state.phase = "train"
            state.save()
        if state.phase == "train":
            state.candidate = await self.train()
            state.phase = "gate"
            state.save()
        await self.gate()
        state.done()
        return self.result

    # -- practice and the judge ---------------------------------------------------------------

    async def practise(self) -> None:
        from daemon.tasks.oracle import SOLVERS, OraclePolicy
        t0, plan, k = time.monotonic(), self.plan, self.config.practice_k
        # New seeds every night: the block after the one the last cycle practised.
        seeds = splits.seeds("train", plan.practice_seeds,
                              skip=self.state.night * plan.practice_seeds)
        taught = [t for t in plan.tasks if t in SOLVERS]
        if plan.teacher_seeds and taught:
            teach = splits.seeds("train", plan.teacher_seeds)
            self.say(f"teacher: oracle on {len(taught)} tasks x {len(teach)} train seeds")
            await _bounded(evaluate(EvalPlan(taught, teach, plan.max_steps, source="practice",
                                             by_seed=True), policy=OraclePolicy(), db=self.db),
                           self.left("practice"), self.say, "teacher")
        name = f"{self.policy.name} (adapter {self.state.serving or 'none'})"
        self.say(f"practice: {name} on {len(plan.tasks)} tasks x {len(seeds)} seeds x {k}")
        site_replays = fitting_seeds(self.recorded, list(plan.sites), seeds)
        tick = _counter(self.progress, "practice",
                        (len(plan.tasks) + len(plan.sites)) * len(seeds) * k + len(self.mine) * k
                        + len(self.demos) * self.config.demo_replays
                        + sum(map(len, site_replays.values())))

        def count(done: object) -> None:
            self.result.practice_episodes += 1
            tick(done)
        # Replays first: they need no model and take seconds, whatever practice leaves.
        if self.demos and self.config.demo_replays:
            self.say(f"practice: {len(self.demos)} of your demonstrations replayed "
                     f"x {self.config.demo_replays} on fresh loads (no model)")
            await _bounded(replay_demonstrations(self.demos, self.config.demo_replays,
                                                 db=self.db, rules=self.rules,
                                                 screenshots=plan.screenshots, on_episode=count),
                           self.left("practice"), self.say, "replays of your demonstrations")
        if site_replays:
            self.say(f"practice: your demonstrations replayed with the values of "
                     f"{sum(map(len, site_replays.values()))} site tasks (no model)")
            await _bounded(replay_with_values(self.recorded, site_replays, db=self.db,
                                              max_steps=2 * plan.max_steps,
                                              screenshots=plan.screenshots, on_result=count),
                           self.left("practice"), self.say, "replays with the sites' values")
        attempts = [s for s in seeds for _ in range(k)]
        await _bounded(evaluate(EvalPlan(list(plan.tasks), attempts, plan.max_steps,
                                         source="practice", by_seed=True,
                                         screenshots=plan.screenshots),
                                policy=self.policy, db=self.db, on_result=count),
                       self.left("practice") * (self.config.miniwob_practice_share if self.mine
                                                else 1) * (0.5 if plan.sites else 1),
                       self.say, "practice")      # with sites to practise, MiniWoB++ gets half
        if plan.sites:
            self.say(f"practice: {len(plan.sites)} site templates x {len(seeds)} seeds x {k}")
            await _bounded(evaluate(EvalPlan(list(plan.sites), attempts, 2 * plan.max_steps,
                                             source="practice", by_seed=True,
                                             benchmark=Sites(), screenshots=plan.screenshots),
                                    policy=self.policy, db=self.db, on_result=count),
                           self.left("practice") * (self.config.miniwob_practice_share
                                                    if self.mine else 1),
                           self.say, "practice on the bundled sites")
        if self.mine:
            self.say(f"practice: {len(self.mine)} of your tasks x {k}"
                     + (f" ({len(self.held)} held out for the gate)" if self.held else ""))
            await _bounded(practise(self.mine, k, policy=self.policy, db=self.db,
                                    rules=self.rules, limits=Limits.of(self.settings),
                                    screenshots=plan.screenshots, on_episode=count),
                           self.left("practice"), self.say, "practice on your tasks")
        async with await Store.open(self.db, recover=False) as store:
            pending = [i for i in await store.unjudged() if i > self.state.first_id]
            self.result.judged = await self._judge(store, pending)
            if self.config.judge_refit_episodes:
                await self._refit_judge(store)
        self.result.seconds["practice"] = round(time.monotonic() - t0, 1)

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
            if self.left(phase) <= 0:
                self.say(f"judge: budget reached after {done} of {len(episode_ids)}; the "
                         "daemon's queue judges the rest")
                return done
            await judge_episode(store, judge, episode_id)
            tick(episode_id)
        return len(episode_ids)

    # -- training and export ------------------------------------------------------------------

    async def train(self) -> int:
        t0, config = time.monotonic(), self.config
        held = {t.task for t in self.held}

        async with await Store.open(self.db, recover=False) as store:
            sft, grpo, window = await training_set(store, config, self.policy.render,
                                                   after=self.state.first_id, held=held)
        self.say(f"training: {len(sft)} SFT samples ({sum(s.relabelled for s in sft)} "
                 f"relabelled, {sum(s.variant > 0 for s in sft)} demonstration variants), "
                 f"{len(grpo)} GRPO samples "
                 f"({len({s.group for s in grpo})} informative groups)")
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
        sft_end = time.monotonic() + self.left("train") * share
        for phase, samples, end in (("sft", sft, sft_end), ("grpo", grpo, self.deadline["train"])):
            report: Report = await asyncio.to_thread(
                train, model, tokenizer, samples, config, phase, end,
                lambda r: self.progress(r.phase, r.steps, r.total_steps),
                self.folder / f"{phase}-state.pt")
            if report.resumed_at:
                self.say(f"{phase}: went on after step {report.resumed_at}")
            self.say(f"{phase}: {report.steps} steps, final loss {report.final_loss}"
                     + (f", {report.fitted:.0%} of probed samples reproduced"
                        if report.fitted is not None else "")
                     + (" (stopped at the budget)" if report.stopped_early else ""))
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
                data_window={"after_episode": self.state.first_id, "episodes": window,
                             "held_out_tasks": sorted(held)}))
        self.say(f"adapter {candidate.id} written: {gguf}")
        return candidate.id

    # -- the gate -----------------------------------------------------------------------------

    async def gate(self) -> None:
        from daemon.agent.llama_policy import LlamaPolicy
        t0, plan = time.monotonic(), self.plan
        self.result.adapter_id = self.state.candidate
        async with await Store.open(self.db, recover=False) as store:
            candidate = await store.adapter(self.state.candidate)
        test = splits.seeds("test", self._gate_seeds())
        settings = dataclasses.replace(self.settings, temperature=self.config.gate_temperature)
        earlier = GateResults.beside(self.db)
        keys = {name: policy_key(settings, self.policy.info.path, sha, plan.max_steps)
                for name, sha in (("candidate", candidate.sha256),
                                  ("serving", self.serving.sha256 if self.serving else None))}
        known = {(t, s): v for (t, s), v in earlier.known(keys["serving"]).items()
                 if t in plan.tasks and s in test}
        unknown = [s for s in test if any((t, s) not in known for t in plan.tasks)]
        if known:
            self.say(f"gate: the serving adapter's outcomes on {len(known)} of "
                     f"{len(plan.tasks) * len(test)} episodes are known from an earlier gate")
        seen: dict[str, dict] = {}          # adapter → {(task, seed) or task: outcome}
        for name, adapter, seeds in (("candidate", candidate.path, test),
                                     ("serving", self.current.adapter, unknown)):
            policy = LlamaPolicy(dataclasses.replace(settings, adapter=adapter)) \
                if seeds or self.held else None     # nothing left to measure: nothing to load
            # of the gate time left: half for the candidate, unless the serving adapter has
            # nothing left to measure
            share = 0.5 if name == "candidate" and (unknown or self.held) else 1.0
            tick = _counter(self.progress, f"gate {name}",
                            len(plan.tasks) * len(seeds) + len(self.held))
            seen[name] = {} if name == "candidate" else dict(known)

            def record(r, seen=seen[name], tick=tick) -> None:
                seen[(r.task, r.seed)] = float(r.success)
                tick(r)
            if seeds:
                await _bounded(evaluate(EvalPlan(list(plan.tasks), seeds, plan.max_steps,
                                                 by_seed=True), policy=policy,
                                        db=self.folder / "gate.db", on_result=record),
                               self.left("gate") * share * (self.config.miniwob_gate_share
                                                            if self.held else 1),
                               self.say, "gate")
            if self.held:
                seen[name].update(await self._held_out_rewards(policy, tick,
                                                               self.left("gate") * share))
            earlier.add(keys[name], seen[name])
        rates = _compare(seen["candidate"], seen["serving"], plan.tasks)
        rates["serving"]["known"] = len(known)
        self.say(f"gate: {rates}")
        if rates["unmeasured"]:
            self.say(f"gate: no pair of episodes within the budget for "
                     f"{', '.join(rates['unmeasured'])}: not measured")
        self.result.seconds["gate"] = round(time.monotonic() - t0, 1)
        self.result.gate = rates
        self.result.promoted = _passes(rates, self.config)
        async with await Store.open(self.db, recover=False) as store:
            await store.set_adapter_status(
                candidate.id, "promoted" if self.result.promoted else "rejected",
                metrics={"training": self.result.training or (candidate.metrics or {}).get(
                    "training"), "gate": rates})
        self.say(f"adapter {candidate.id} {'promoted' if self.result.promoted else 'rejected'}")

    def _gate_seeds(self) -> int:
        """Test seeds per task: the plan's, or enough for `gate_episodes` per adapter, cut to
        what the gate's time fits at the speed this cycle's episodes ran (said either way)."""
        tasks, config = len(self.plan.tasks), self.config
        if self.plan.gate_seeds:
            return self.plan.gate_seeds
        wanted = math.ceil(config.gate_episodes / tasks)
        practised = self.result.practice_episodes
        per_episode = self.result.seconds.get("practice", 0) / practised if practised else \
            self.plan.max_steps * STEP_SECONDS
        seconds = self.left("gate") * (config.miniwob_gate_share if self.held else 1) / 2
        fits = int(seconds / (tasks * per_episode))
        seeds = max(1, min(wanted, fits))
        self.say(f"gate: {seeds} test seeds x {tasks} tasks = {seeds * tasks} episodes per "
                 f"adapter" + ("" if seeds == wanted else
                               f" (the budget fits {seeds * tasks} of the {config.gate_episodes} "
                               f"wanted, at {per_episode:.1f} s an episode)"))
        return seeds

    async def _held_out_rewards(self, policy, tick, seconds: float) -> dict[str, float]:
        """The judge's reward for one attempt at each held-out user task, by task."""
        db = self.folder / "gate.db"
        episodes = []
        await _bounded(practise(self.held, 1, policy=policy, db=db, rules=self.rules,
                                limits=Limits.of(self.settings),
                                on_episode=lambda e: (episodes.append(e), tick(e))),
                       seconds, self.say, "gate on held-out tasks")
        async with await Store.open(db, recover=False) as store:
            await self._judge(store, [e.id for e in episodes], "gate")
            return {e.task: next(r.value for r in reversed(await store.rewards(e.id))
                                 if r.kind == "judge") for e in episodes}


def _compare(candidate: dict, serving: dict, tasks_planned: tuple[str, ...] = ()) -> dict:
    """Both adapters' figures on what both finished (a gate cut short by the budget compares
    like with like): MiniWoB++ success over (task, seed) keys, overall and per task, the
    (task, seed) pairs the candidate won and lost with a two-sided sign test, the planned tasks
    with no pair (unmeasured), and the judge's mean reward over held-out task keys."""
    pairs = [k for k in candidate if isinstance(k, tuple) and k in serving]
    tasks = [k for k in candidate if isinstance(k, str) and k in serving]
    rates: dict = {}
    for name, seen in (("candidate", candidate), ("serving", serving)):
        rates[name] = {"success": round(_rate([seen[k] for k in pairs]), 4), "n": len(pairs),
                       "tasks": {t: round(_rate([seen[k] for k in pairs if k[0] == t]), 4)
                                 for t in dict.fromkeys(k[0] for k in pairs)}}
        if tasks:
            rates[name]["held_out"] = {"reward": round(_rate([seen[k] for k in tasks]), 4),
                                       "n": len(tasks)}
    won, lost = won_lost({k: serving[k] for k in pairs}, candidate)
    rates["pairs"] = {"won": won, "lost": lost, "p": round(sign_test(won, lost), 4)}
    measured = {k[0] for k in pairs}
    rates["unmeasured"] = [t for t in tasks_planned if t not in measured]
    return rates


def _passes(rates: dict, config: TrainConfig) -> bool:
    """The gate's rule: evidence on the paired MiniWoB++ test seeds (`gate_promote`: more
    seeds won than lost; or a tie too; or always), and no loss beyond `gate_reward_margin` in
    the judge's reward on held-out user tasks once there are `gate_min_held_out` of them."""
    candidate, serving, pairs = rates["candidate"], rates["serving"], rates["pairs"]
    if config.gate_promote == "always":
        return True
    if candidate["n"] == 0:
        return False                    # no evidence at all
    mine, theirs = candidate.get("held_out"), serving.get("held_out")
    if mine and theirs and mine["n"] >= config.gate_min_held_out and \
            mine["reward"] < theirs["reward"] - config.gate_reward_margin:
        return False
    if config.gate_promote == "better":
        return pairs["won"] > pairs["lost"]
    if config.gate_promote == "not_worse":
        return pairs["won"] >= pairs["lost"]
    raise ValueError(f"unknown gate_promote {config.gate_promote!r}")


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
    return cycle.result
