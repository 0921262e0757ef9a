"""One learning cycle: practice → judge → SFT / GRPO → export → gate → promote.

Contract:
- Practice repeats MiniWoB++ tasks on train seeds (always safe to repeat) K times each through
  the normal daemon → extension path with the serving adapter, source ``practice``; the
  scripted teacher (the oracle) runs the same seeds once for warm-up demonstrations. The judge
  scores every practice episode it has not scored.
- Training starts from the serving adapter's weights (kept as a peft folder beside its GGUF)
  or a fresh LoRA; SFT on teacher / demonstration / good episodes, then GRPO on the groups of
  this cycle's practice. The adapter is exported to GGUF and recorded as a candidate.
- The gate runs the MiniWoB test split with the candidate and with the serving adapter; the
  candidate is promoted unless its success is lower by more than `gate_margin`, else rejected.
  A running daemon is told to switch (`reload`).
- `budget` seconds cap the whole cycle: each phase stops cleanly at its share and the cycle goes
  on with what it has. On any failure the serving adapter stays and `CycleResult.error` says
  why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from daemon import miniwob
from daemon.config import Settings, data_dir
from daemon.evaluation import EpisodeResult, EvalPlan, evaluate
from daemon.store import Adapter, Store

from .config import TrainConfig
from .data import grpo_samples, load_samples, sft_samples
from .train import Report, train

Say = Callable[[str], None]
# Shares of the budget: practice, training, gate (the judge runs inside practice's share).
SHARES = {"practice": 0.45, "train": 0.3, "gate": 0.25}


@dataclass(frozen=True)
class CyclePlan:
    tasks: tuple[str, ...] = ("click-button", "click-link", "click-checkboxes", "click-dialog",
                              "enter-text", "focus-text")     # the oracle can teach these
    practice_seeds: int = 3         # train seeds per task; each attempted `practice_k` times
    gate_seeds: int = 3             # test seeds per task
    max_steps: int = 6
    teacher: bool = True


@dataclass
class CycleResult:
    adapter_id: int | None = None
    promoted: bool = False
    gate: dict = field(default_factory=dict)
    practice_episodes: int = 0
    judged: int = 0
    training: list[dict] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    error: str | None = None


def _results_rate(results: list[EpisodeResult]) -> float:
    return sum(r.success for r in results) / len(results) if results else 0.0


async def _bounded(coro, seconds: float, say: Say, what: str):
    """Await `coro` for at most `seconds`; on the cap, cancel it cleanly and return None."""
    try:
        return await asyncio.wait_for(coro, max(1.0, seconds))
    except asyncio.TimeoutError:
        say(f"{what}: budget reached, going on with what finished")
        return None


async def run_cycle(settings: Settings, config: TrainConfig, plan: CyclePlan, *,
                    budget: float, say: Say = print) -> CycleResult:
    from daemon.llama_policy import LlamaPolicy
    from daemon.oracle import OraclePolicy
    from judge.judge import judge_from_settings
    from judge.scoring import judge_episode

    result = CycleResult()
    start = time.monotonic()
    deadline = {name: start + budget * sum(list(SHARES.values())[:i + 1])
                for i, name in enumerate(SHARES)}
    db = settings.db_path
    try:
        async with await Store.open(db, recover=False) as store:
            serving = await store.promoted_adapter()
            first_id = max((e.id for e in await store.episodes(1)), default=0)
        current = dataclasses.replace(settings, adapter=serving.path if serving else "")
        policy = LlamaPolicy(current)
        seeds = miniwob.seeds("train", plan.practice_seeds)

        # -- practice (and the teacher) -------------------------------------------------------
        t0 = time.monotonic()
        if plan.teacher:
            say(f"teacher: oracle on {len(plan.tasks)} tasks x {len(seeds)} train seeds")
            await _bounded(evaluate(EvalPlan(list(plan.tasks), seeds, plan.max_steps,
                                             source="practice"), policy=OraclePolicy(), db=db),
                           deadline["practice"] - time.monotonic(), say, "teacher")
        attempts = [s for s in seeds for _ in range(config.practice_k)]
        say(f"practice: {policy.name} (adapter {serving.id if serving else 'none'}) on "
            f"{len(plan.tasks)} tasks x {len(seeds)} seeds x {config.practice_k} attempts")
        done: list[EpisodeResult] = []
        await _bounded(evaluate(EvalPlan(list(plan.tasks), attempts, plan.max_steps,
                                         source="practice"), policy=policy, db=db,
                                on_result=done.append),
                       deadline["practice"] - time.monotonic(), say, "practice")
        result.practice_episodes = len(done)
        async with await Store.open(db, recover=False) as store:
            pending = [i for i in await store.unjudged() if i > first_id]
            if pending:
                judge = judge_from_settings(settings)
                for n, episode_id in enumerate(pending, 1):
                    await judge_episode(store, judge, episode_id)
                    say(f"judged {n}/{len(pending)}")
            result.judged = len(pending)
            window = {e.id for e in await store.episodes() if e.id > first_id}
            practice = await load_samples(store, config, ("practice",),
                                          render_prompt=policy.render, after=first_id)
            demos = await load_samples(store, config, ("demonstration",),
                                       render_prompt=policy.render)
            teacher = [s for s in await load_samples(     # this cycle's successes, any policy
                store, dataclasses.replace(config, reward="ground_truth"), ("practice",),
                render_prompt=policy.render, after=first_id) if s.reward > 0]
        result.seconds["practice"] = round(time.monotonic() - t0, 1)

        # -- training -------------------------------------------------------------------------
        t0 = time.monotonic()
        sft = list({(s.episode_id, s.index): s
                    for s in sft_samples(demos + practice, config) + teacher}.values())
        grpo = grpo_samples(practice, config)
        say(f"training: {len(sft)} SFT samples, {len(grpo)} GRPO samples "
            f"({len({s.group for s in grpo})} informative groups)")
        from .export import export_adapter
        from .model import add_lora, load_base, load_lora
        base_path = policy.info.path
        model, tokenizer, arch = await asyncio.to_thread(load_base, base_path)
        model = load_lora(model, Path(serving.path).parent / "peft") if serving else \
            add_lora(model, config)
        for phase, samples in (("sft", sft), ("grpo", grpo)):
            report: Report = await asyncio.to_thread(
                train, model, tokenizer, samples, config, phase, deadline["train"],
                lambda r: say(f"{r.phase} step {r.steps}: loss {r.final_loss:.4f}"))
            result.training.append(dataclasses.asdict(report))
        result.seconds["train"] = round(time.monotonic() - t0, 1)

        # -- export and record the candidate ---------------------------------------------------
        folder = data_dir() / "adapters" / time.strftime("%Y%m%d-%H%M%S")
        gguf = await asyncio.to_thread(export_adapter, model, folder / "adapter.gguf", arch)
        await asyncio.to_thread(model.save_pretrained, str(folder / "peft"))
        async with await Store.open(db, recover=False) as store:
            candidate = await store.add_adapter(Adapter(
                path=str(gguf), sha256=hashlib.sha256(gguf.read_bytes()).hexdigest(),
                base_model=base_path.name, parent=serving.id if serving else None,
                config=_jsonable(config), metrics={"training": result.training},
                data_window={"after_episode": first_id, "episodes": sorted(window)}))
        result.adapter_id = candidate.id
        say(f"adapter {candidate.id} written: {gguf}")

        # -- gate -----------------------------------------------------------------------------
        t0 = time.monotonic()
        test = miniwob.seeds("test", plan.gate_seeds)
        rates = {}
        for name, adapter in (("candidate", str(gguf)), ("serving", current.adapter)):
            gate_policy = LlamaPolicy(dataclasses.replace(settings, adapter=adapter))
            results: list[EpisodeResult] = []
            share = 0.5 if name == "candidate" else 1.0      # of the gate time left
            await _bounded(evaluate(EvalPlan(list(plan.tasks), test, plan.max_steps),
                                    policy=gate_policy, db=folder / "gate.db",
                                    on_result=results.append),
                           (deadline["gate"] - time.monotonic()) * share, say, "gate")
            rates[name] = {"success": round(_results_rate(results), 4), "n": len(results)}
            say(f"gate {name}: {rates[name]['success']:.2f} on {len(results)} test episodes")
        result.seconds["gate"] = round(time.monotonic() - t0, 1)
        result.gate = rates
        result.promoted = rates["candidate"]["n"] > 0 and \
            rates["candidate"]["success"] >= rates["serving"]["success"] - config.gate_margin
        async with await Store.open(db, recover=False) as store:
            await store.set_adapter_status(
                candidate.id, "promoted" if result.promoted else "rejected",
                metrics={"training": result.training, "gate": rates})
        say(f"adapter {candidate.id} {'promoted' if result.promoted else 'rejected'}")
    except Exception as exc:           # the serving adapter stays; say why
        result.error = f"{type(exc).__name__}: {exc}"
        say(f"cycle failed, the serving adapter stays: {result.error}")
    result.seconds["total"] = round(time.monotonic() - start, 1)
    return result


def _jsonable(config: TrainConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items()}

