"""What a night did, for the person who slept through it: the figures a cycle records in its
`Night` row as each phase ends, and the morning report built back from the store.

Contract:
- `practised` and `trained_on` summarise a phase from the store when it ends; the cycle keeps
  them in the night's row, so any past night's report can be rebuilt (no log is read).
- `report` turns a night's row (and the adapters' state now) into a `NightReport`: one line
  of outcome, the gate per task (candidate vs serving), the user's tasks before → after,
  whether the night's adapter serves, was undone or never promoted, what failed, and whether
  the night was short (`shortfall`).
- `curve` is the learning curve over every night: the gate's success on its validation seeds
  of what served after each night (they are the same seeds each night, so the points compare).
- `history` is each practice-safe task's record per night: practice attempts, successes, the
  judge's mean p, and the user's verdicts on that night's practice of it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from daemon.core.store import Adapter, Episode, Night, Reward, Store
from judge.reward import reward_that_counts

from .data import Sample, TrainingSet


def _probability(rewards: list[Reward]) -> float | None:
    """The judge's newest p(success) of an episode (its reward is 2p - 1)."""
    judged = [r for r in rewards if r.kind == "judge"]
    return round((judged[-1].value + 1) / 2, 3) if judged else None


def _truth(rewards: list[Reward]) -> dict | None:
    return next((r.details or {} for r in reversed(rewards) if r.kind == "ground_truth"), None)


def _kind(episode: Episode, rewards: list[Reward], mine: set[str]) -> str:
    """Which part of practice an episode was: teacher, replays, miniwob, sites, yours, or
    unscored (a benchmark episode cut short before its page said how it went)."""
    if episode.policy == "oracle":
        return "teacher"
    if any(r.kind == "replay" for r in rewards):
        return "replays"
    truth = _truth(rewards)
    if truth is not None:
        return truth.get("benchmark") or "miniwob"
    return "yours" if episode.task in mine else "unscored"


async def practised(store: Store, after: int, last: int | None = None,
                    mine: set[str] = frozenset()) -> dict:
    """What the night's practice (episodes after `after`, up to `last`) did: per kind the
    episodes and successes (the counted reward above 0: a benchmark's truth, a clean replay,
    the user's word or the judge), MiniWoB++ and sites with how many tasks; the user's tasks
    (`mine`: their texts) by name with the judge's mean p; and how many episodes failed to
    run."""
    kinds: dict[str, dict] = {}
    yours: dict[str, dict] = {}
    broken = 0
    for episode in await store.episodes_after(after, last):
        if episode.source != "practice":
            continue
        rewards = await store.rewards(episode.id)
        kind = _kind(episode, rewards, mine)
        counted = reward_that_counts(rewards)
        won = counted is not None and counted.value > 0
        broken += episode.status in ("failed", "interrupted")
        if kind == "yours":
            entry = yours.setdefault(episode.task, {"task": episode.task, "url": episode.start_url,
                                                    "episodes": 0, "succeeded": 0, "p": []})
            p = _probability(rewards)
            if p is not None:
                entry["p"].append(p)
        else:
            entry = kinds.setdefault(kind, {"episodes": 0, "succeeded": 0, "tasks": set()})
            entry["tasks"].add((_truth(rewards) or {}).get("task") or episode.task)
        entry["episodes"] += 1
        entry["succeeded"] += won
    for entry in kinds.values():
        entry["tasks"] = len(entry["tasks"])
    for entry in yours.values():
        entry["p"] = round(sum(entry["p"]) / len(entry["p"]), 3) if entry["p"] else None
    return {**kinds, "yours": list(yours.values()), "failed_to_run": broken}


async def trained_on(store: Store, data: TrainingSet) -> dict:
    """What training learned from, by where its examples came from (episodes, not tokens):
    SFT's demonstrations (and their variants), the teacher, clean replays, verified successes,
    hindsight relabellings, episodes the judge alone vouched for; GRPO's groups; and the
    user's verdicts (👍/👎) among all of them."""
    sources: Counter[str] = Counter()
    by_episode: dict[int, list[Sample]] = {}
    for sample in data.sft:
        by_episode.setdefault(sample.episode_id, []).append(sample)
    for episode_id, samples in by_episode.items():
        episode, rewards = await store.episode(episode_id), await store.rewards(episode_id)
        if all(s.relabelled for s in samples):
            sources["relabelled"] += 1
        elif episode is None:
            continue
        elif episode.policy == "oracle":
            sources["teacher"] += 1
        elif episode.source == "demonstration":
            sources["demonstrations"] += 1
            sources["demonstration_variants"] += len({s.variant for s in samples} - {0})
        else:
            counted = reward_that_counts(rewards)
            sources[{"ground_truth": "verified", "replay": "replays", "user": "thumbs",
                     "judge": "judged"}.get(counted.kind if counted else "", "other")] += 1
    thumbs: Counter[str] = Counter()
    for episode_id in {s.episode_id for s in data.sft + data.grpo}:
        verdicts = [r for r in await store.rewards(episode_id) if r.kind == "user"]
        if verdicts:
            thumbs["up" if verdicts[-1].value > 0 else "down"] += 1
    return {"sft_samples": len(data.sft), "sft_episodes": dict(sources),
            "grpo_samples": len(data.grpo), "groups": len({s.group for s in data.grpo}),
            "thumbs_up": thumbs["up"], "thumbs_down": thumbs["down"],
            "held_out_tasks": sorted(data.held)}


# -- the morning report --------------------------------------------------------------------


@dataclass
class Change:
    """One task at the gate: the serving adapter's figure (before) and the candidate's (after):
    a MiniWoB++ task's success rate, or the judge's p for one of the user's tasks."""
    task: str
    before: float
    after: float
    yours: bool = False
    held_out: bool = False

    @property
    def mark(self) -> str:
        return "better" if self.after > self.before else \
            "worse" if self.after < self.before else "same"


# A training phase that ran under this share of its steps before its time ran out made the
# night a short one (nights alone stopped GRPO at 59% and 85% of its steps; one that shared
# the machine, at a third, and its candidate undid what the night before had learnt).
SHORT_SHARE = 0.5


def shortfall(training: dict | None) -> str | None:
    """A sentence when a training phase of the night stopped at its time with under
    SHORT_SHARE of its steps done, else None (nights recorded before the phases kept their
    planned steps say nothing)."""
    cut = [f"{phase.upper()} ran {done['steps']} of its {done['total_steps']} steps"
           for phase in ("sft", "grpo")
           if (done := (training or {}).get(phase)) and done.get("stopped_early")
           and done.get("total_steps") and done["steps"] < SHORT_SHARE * done["total_steps"]]
    if not cut:
        return None
    return (f"a short night: {' and '.join(cut)} in its time (a machine busy with other work, "
            "or more to learn than the budget fits: give train_budget more minutes)")


@dataclass
class NightReport:
    night: Night
    outcome: str                    # one line: what the night did for the user
    state: str          # serving | superseded | undone | not_promoted | running | failed
    serving_now: int | None         # the adapter serving now (None: the base model)
    changes: list[Change] = field(default_factory=list)
    can_undo: bool = False          # its adapter serves now: rolling back undoes the night
    short: str | None = None        # `shortfall`: training ran far short of its steps

    @property
    def yours(self) -> list[Change]:
        return [c for c in self.changes if c.yours]

    def to_json(self) -> dict:
        """The JSON `nightloop night --json` prints and the popup's panel reads."""
        return {**dataclasses.asdict(self), "changes": [
            {**dataclasses.asdict(c), "mark": c.mark} for c in self.changes]}


def changes(gate: dict | None) -> list[Change]:
    """Per task, serving (before) vs candidate (after), from a night's gate JSON: the MiniWoB++
    tasks, then the user's (the judge's p, from its 2p - 1 reward)."""
    if not gate:
        return []
    after, before = gate["candidate"], gate["serving"]
    found = [Change(t, before["tasks"][t], rate) for t, rate in after["tasks"].items()
             if t in before["tasks"]]
    held = set(gate.get("held") or ())
    found += [Change(t, round((before["yours"][t] + 1) / 2, 3), round((value + 1) / 2, 3),
                     yours=True, held_out=t in held)
              for t, value in (after.get("yours") or {}).items() if t in before.get("yours", {})]
    return found


async def report(store: Store, night: Night) -> NightReport:
    """The morning report of `night`, against the adapters' state now."""
    serving = await store.promoted_adapter()
    serving_id = serving.id if serving else None
    candidate: Adapter | None = await store.adapter(night.candidate) \
        if night.candidate else None
    found = changes(night.gate)
    better = sum(c.mark == "better" for c in found)
    worse = sum(c.mark == "worse" for c in found)
    serves = f"adapter {serving_id} serving" if serving_id else "the base model serving"
    if night.status == "running":
        state, outcome = "running", f"still running ({night.phase}), or stopped there: " \
            "`nightloop train --now` goes on with it"
    elif night.status == "failed":
        state, outcome = "failed", f"failed during {night.phase}: {night.error}; {serves}"
    elif not night.promoted:
        state, outcome = "not_promoted", f"{better} tasks better, {worse} worse, not enough to " \
            f"switch: {serves} still"
    elif candidate is not None and candidate.status == "retired":
        later = any(a.parent == candidate.id and a.promoted_at for a in await store.adapters())
        state, outcome = ("superseded", f"learned: {better} tasks better, {worse} worse; a later "
                          f"night went on from it — {serves}") if later else \
            ("undone", f"undone: adapter {candidate.id} retired — {serves}")
    else:
        state, outcome = "serving", f"learned: {better} tasks better, {worse} worse — {serves}"
    return NightReport(night, outcome, state, serving_id, found,
                       can_undo=bool(night.promoted and serving_id is not None
                                     and serving_id == night.candidate),
                       short=shortfall(night.training))


async def last_report(store: Store, night_id: int | None = None) -> NightReport | None:
    """The report of night `night_id`, or of the newest night; None when there is none."""
    night = await store.night(night_id) if night_id is not None else \
        next(iter(await store.nights(1)), None)
    return await report(store, night) if night else None


def curve(nights: list[Night]) -> list[dict]:
    """Oldest first: what served before the first night, then after each night, as the gate's
    success on its validation seeds (nights whose gate did not run are left out)."""
    points: list[dict] = []
    for night in sorted(nights, key=lambda n: n.id):
        gate = night.gate
        if not gate or not gate["candidate"]["n"]:
            continue
        if not points:
            points.append({"night": None, "label": "before", "success": gate["serving"]["success"]})
        arm = gate["candidate"] if night.promoted else gate["serving"]
        points.append({"night": night.id, "label": night.started_at[:10],
                       "success": arm["success"]})
    return points


async def history(store: Store, nights: list[Night]) -> dict[str, list[dict]]:
    """Each user task practised on some night → its record per night, oldest first: attempts,
    successes, the judge's mean p, and the user's verdicts on that night's practice of it."""
    found: dict[str, list[dict]] = {}
    ordered = sorted(nights, key=lambda n: n.id)
    for night in ordered:
        verdicts = await _verdicts(store, night)
        for entry in (night.practice or {}).get("yours", []):
            up, down = verdicts.get(entry["task"], (0, 0))
            found.setdefault(entry["task"], []).append({
                "night": night.id, "date": night.started_at[:10], "episodes": entry["episodes"],
                "succeeded": entry["succeeded"], "p": entry["p"], "thumbs_up": up,
                "thumbs_down": down})
    return found


async def _verdicts(store: Store, night: Night) -> dict[str, tuple[int, int]]:
    """Per task: the user's 👍 and 👎 (newest verdict each) on the night's practice episodes."""
    counts: dict[str, list[int]] = {}
    for episode in await store.episodes_after(night.after_episode, night.last_episode):
        if episode.source != "practice":
            continue
        verdicts = [r for r in await store.rewards(episode.id) if r.kind == "user"]
        if verdicts:
            up_down = counts.setdefault(episode.task, [0, 0])
            up_down[verdicts[-1].value <= 0] += 1
    return {task: (up, down) for task, (up, down) in counts.items()}
