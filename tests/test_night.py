"""The morning report's parts on a real store: what practice did, what training learned from,
the report's outcome line and states, the learning curve and each task's history."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import nightloop, run_async
from recorded_night import HELD, MINE, record_nights

from daemon.cli.nights import describe
from daemon.core.store import Adapter, Episode, Night, Reward, Store
from trainer.data import Sample, TrainingSet
from trainer.gate import compare
from trainer.night import Change, curve, history, last_report, practised, report, trained_on


async def _episode(store: Store, task: str, *rewards: tuple[str, float, dict | None],
                   source: str = "practice", policy: str = "llm:x", status: str = "done",
                   url: str = "http://shop.test/") -> int:
    episode = await store.start_episode(Episode(task, source, start_url=url, policy=policy))
    await store.finish_episode(episode.id, status)
    for kind, value, details in rewards:
        await store.add_reward(Reward(episode.id, kind, value, details))
    return episode.id


def truth(task: str, benchmark: str = "miniwob") -> dict:
    return {"benchmark": benchmark, "task": task, "seed": 1}


def test_practice_is_summed_up_by_kind_and_your_tasks_by_name(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            await _episode(store, "before the night", ("ground_truth", 1.0, truth("a")))
            after = 1
            await _episode(store, "Click it", ("ground_truth", 1.0, truth("click-button")))
            await _episode(store, "Click it", ("ground_truth", 0.0, truth("click-button")))
            await _episode(store, "Focus", ("ground_truth", 0.0, truth("focus-text")),
                           status="failed")
            await _episode(store, "Book a flight", ("ground_truth", 1.0, truth("book", "sites")))
            await _episode(store, "Click it", ("ground_truth", 1.0, truth("click-button")),
                           policy="oracle")
            await _episode(store, "Order tea", ("replay", 1.0, None))
            await _episode(store, "buy milk", ("judge", 0.5, None))          # p 0.75
            await _episode(store, "buy milk", ("judge", -0.5, None))         # p 0.25
            await _episode(store, "buy milk", ("judge", -0.5, None), ("user", 1.0, None))
            await _episode(store, "my own run", ("judge", 1.0, None), source="toolbar")
            await _episode(store, "Focus", status="interrupted")     # cut short: no truth
            return await practised(store, after, mine={"buy milk"}), \
                await practised(store, after, last=3, mine={"buy milk"})
    summary, cut = run_async(go())
    assert summary == {
        "miniwob": {"episodes": 3, "succeeded": 1, "tasks": 2},
        "sites": {"episodes": 1, "succeeded": 1, "tasks": 1},
        "teacher": {"episodes": 1, "succeeded": 1, "tasks": 1},
        "replays": {"episodes": 1, "succeeded": 1, "tasks": 1},
        # the user's word outranks the judge for success; p is the judge's alone
        "yours": [{"task": "buy milk", "url": "http://shop.test/", "episodes": 3,
                   "succeeded": 2, "p": round((0.75 + 0.25 + 0.25) / 3, 3)}],
        "unscored": {"episodes": 1, "succeeded": 0, "tasks": 1},    # not one of yours
        "failed_to_run": 2}
    assert cut["miniwob"] == {"episodes": 2, "succeeded": 1, "tasks": 1} and cut["yours"] == []


def test_training_is_told_by_where_its_examples_came_from(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            demo = await _episode(store, "buy milk", ("user", 1.0, None), source="demonstration")
            oracle = await _episode(store, "t", ("ground_truth", 1.0, truth("a")),
                                    policy="oracle")
            won = await _episode(store, "t", ("ground_truth", 1.0, truth("a")))
            liked = await _episode(store, "buy milk", ("judge", -1, None), ("user", 1.0, None))
            disliked = await _episode(store, "buy milk", ("judge", 1, None), ("user", -1, None))
            relabelled = await _episode(store, "t", ("ground_truth", 0.0, truth("a")))

            def sample(episode_id, group="g", **kw):
                return Sample(episode_id, 0, "p", "c", 1.0, group, **kw)
            data = TrainingSet(
                sft=[sample(demo), sample(demo, variant=1), sample(demo, variant=2),
                     sample(oracle), sample(won), sample(liked), sample(relabelled,
                                                                        relabelled=True)],
                grpo=[sample(disliked, "g1"), sample(liked, "g1"), sample(won, "g2")],
                window=[], held={"pay rent"})
            return await trained_on(store, data)
    assert run_async(go()) == {
        "sft_samples": 7, "grpo_samples": 3, "groups": 2,
        "sft_episodes": {"demonstrations": 1, "demonstration_variants": 2, "teacher": 1,
                         "verified": 1, "thumbs": 1, "relabelled": 1},
        "thumbs_up": 2, "thumbs_down": 1, "held_out_tasks": ["pay rent"]}


def gate_json(candidate: dict, serving: dict, held=()) -> dict:
    return dataclasses.asdict(compare(candidate, serving, held=set(held)))


GATE = gate_json({("click-button", 1): 1.0, ("focus-text", 1): 0.0, ("click-link", 1): 1.0,
                  "buy milk": 0.5, "pay rent": -1.0},
                 {("click-button", 1): 0.0, ("focus-text", 1): 1.0, ("click-link", 1): 1.0,
                  "buy milk": -0.5, "pay rent": -1.0}, held=["pay rent"])


def test_a_gate_becomes_a_change_per_task_with_your_tasks_as_the_judges_p():
    from trainer.night import changes
    assert changes(GATE) == [
        Change("click-button", 0.0, 1.0), Change("focus-text", 1.0, 0.0),
        Change("click-link", 1.0, 1.0),
        Change("buy milk", 0.25, 0.75, yours=True), Change("pay rent", 0.0, 0.0, yours=True,
                                                          held_out=True)]
    assert [c.mark for c in changes(GATE)] == ["better", "worse", "same", "better", "same"]
    assert changes(None) == []


def test_the_report_says_what_the_night_did_and_whether_it_can_be_undone(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            first = await store.add_adapter(Adapter("a1.gguf", "1", "m", status="promoted"))
            night = await store.start_night(Night(0, serving=first.id))
            assert (await report(store, night)).state == "running"
            candidate = await store.add_adapter(Adapter("a2.gguf", "2", "m", parent=first.id))
            await store.set_adapter_status(candidate.id, "promoted")
            await store.update_night(night.id, status="finished", candidate=candidate.id,
                                     promoted=True, gate=GATE, decision="promoted: won 1")
            served = await last_report(store)
            await store.rollback_adapter()
            undone = await last_report(store, night.id)
            failed = await store.start_night(Night(0, serving=first.id))
            await store.update_night(failed.id, status="failed", phase="train",
                                     error="OSError: disk full")
            broken = await last_report(store)
            kept = await store.start_night(Night(0, serving=first.id))
            await store.update_night(kept.id, status="finished", promoted=False, gate=GATE)
            return served, undone, broken, await last_report(store), await last_report(
                store, 99)
    served, undone, broken, kept, missing = run_async(go())
    assert served.state == "serving" and served.can_undo and served.serving_now == 2
    assert served.outcome == "learned: 2 tasks better, 1 worse — adapter 2 serving"
    assert [(c.task, c.mark) for c in served.yours] == [("buy milk", "better"),
                                                        ("pay rent", "same")]
    assert served.to_json()["changes"][0] == {"task": "click-button", "before": 0.0,
                                              "after": 1.0, "yours": False,
                                              "held_out": False, "mark": "better"}
    assert undone.state == "undone" and not undone.can_undo
    assert undone.outcome == "undone: adapter 2 retired — adapter 1 serving"
    assert broken.state == "failed" and not broken.can_undo
    assert broken.outcome == "failed during train: OSError: disk full; adapter 1 serving"
    assert kept.state == "not_promoted"
    assert kept.outcome == "2 tasks better, 1 worse, not enough to switch: adapter 1 " \
        "serving still"
    assert missing is None


def test_a_night_a_later_one_built_on_is_superseded_not_undone(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            first = await store.add_adapter(Adapter("a1.gguf", "1", "m", status="promoted"))
            nights = []
            parent = first.id
            for n in range(2):
                candidate = await store.add_adapter(Adapter(f"b{n}", "x", "m", parent=parent))
                await store.set_adapter_status(candidate.id, "promoted")
                night = await store.start_night(Night(0, serving=parent))
                await store.update_night(night.id, status="finished", promoted=True,
                                         candidate=candidate.id, gate=GATE)
                nights.append(night.id)
                parent = candidate.id
            return [(await last_report(store, n)).state for n in nights]
    assert run_async(go()) == ["superseded", "serving"]


def test_a_night_whose_training_ran_far_short_of_its_steps_says_so(tmp_path):
    """As a night that shared the machine did (GRPO 65 of 181 steps); a night alone that
    stops GRPO near its end, or one recorded before phases kept their planned steps, does
    not."""
    def phase(steps, total, stopped=True):
        return {"steps": steps, "total_steps": total, "stopped_early": stopped}

    learnt_from = {"sft_samples": 229, "sft_episodes": {"verified": 120}, "groups": 37,
                   "thumbs_up": 0, "thumbs_down": 0}

    async def go(phases):
        training = phases and learnt_from | phases
        async with await Store.open(tmp_path / f"{len(seen)}.db") as store:
            first = await store.add_adapter(Adapter("a1.gguf", "1", "m", status="promoted"))
            night = await store.start_night(Night(0, serving=first.id))
            await store.update_night(night.id, status="finished", promoted=False, gate=GATE,
                                     training=training)
            seen.append(await last_report(store))
            return seen[-1]
    seen = []
    starved = run_async(go({"sft": phase(93, 116), "grpo": phase(65, 181)}))
    assert starved.short == "a short night: GRPO ran 65 of its 181 steps in its time (a " \
        "machine busy with other work, or more to learn than the budget fits: give " \
        "train_budget more minutes)"
    assert starved.to_json()["short"] == starved.short
    assert describe(starved, None)[2] == f"  {starved.short}"
    both = run_async(go({"sft": phase(10, 116), "grpo": phase(0, 181)}))
    assert both.short.startswith("a short night: SFT ran 10 of its 116 steps and GRPO ran 0 "
                                 "of its 181 steps in its time")
    for fine in ({"sft": phase(86, 86, False), "grpo": phase(179, 211)},
                 {"grpo": phase(40, 181, stopped=False)},       # it had no more to do
                 {"grpo": {"steps": 65, "stopped_early": True}},         # an older night
                 None):
        assert run_async(go(fine)).short is None


def test_the_curve_follows_what_served_after_each_night_and_history_each_task(tmp_path):
    def night(i, promoted, candidate, serving, yours=()):
        return Night(0, status="finished", promoted=promoted, id=i,
                     started_at=f"2026-12-0{i}T03:00:00.000Z",
                     gate={"candidate": {"n": 10, "success": candidate},
                           "serving": {"n": 10, "success": serving}},
                     practice={"yours": list(yours)})
    nights = [night(2, False, 0.2, 0.4), night(1, True, 0.4, 0.3),
              Night(0, status="failed", id=3, gate=None)]
    assert curve(nights) == [
        {"night": None, "label": "before", "success": 0.3},
        {"night": 1, "label": "2026-12-01", "success": 0.4},
        {"night": 2, "label": "2026-12-02", "success": 0.4}]   # not promoted: still 0.4
    assert curve([]) == []

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            first = await _episode(store, "buy milk", ("judge", 0.0, None), ("user", -1, None))
            await _episode(store, "buy milk", ("judge", 0.0, None), ("user", 1, None))
            await _episode(store, "buy milk", ("judge", 0.0, None), ("user", 1, None),
                           ("user", -1, None))          # the newest verdict counts
            later = await _episode(store, "buy milk", ("user", 1, None))
            entry = {"task": "buy milk", "url": "u", "episodes": 3, "succeeded": 1, "p": 0.5}
            return await history(store, [
                Night(later - 1, id=2, started_at="2026-12-02T03:00:00Z",
                      practice={"yours": [{**entry, "episodes": 1, "succeeded": 1}]}),
                Night(first - 1, id=1, last_episode=later - 1,
                      started_at="2026-12-01T03:00:00Z", practice={"yours": [entry]})])
    assert run_async(go()) == {"buy milk": [
        {"night": 1, "date": "2026-12-01", "episodes": 3, "succeeded": 1, "p": 0.5,
         "thumbs_up": 1, "thumbs_down": 2},
        {"night": 2, "date": "2026-12-02", "episodes": 1, "succeeded": 1, "p": 0.5,
         "thumbs_up": 1, "thumbs_down": 0}]}


@pytest.mark.process
def test_nightloop_night_tells_the_stored_night_in_words_json_and_an_offline_report(home):
    db = home / "store.db"
    assert "no night has run yet" in nightloop("night", "--db", str(db), check=False).stderr
    recorded = run_async(record_nights(db, "http://127.0.0.1:9/newsletter.html"))
    data = json.loads(nightloop("night", "--json", "--db", str(db)).stdout)

    async def stored():
        async with await Store.open(db) as store:
            return await store.night(recorded["nights"][-1])
    night = run_async(stored())
    assert data["night"] == json.loads(json.dumps(dataclasses.asdict(night)))  # as stored
    assert (data["state"], data["serving_now"], data["can_undo"]) == ("serving", 3, True)
    assert data["outcome"] == "learned: 2 tasks better, 1 worse — adapter 3 serving"
    assert [(c["task"], c["mark"]) for c in data["changes"] if c["yours"]] == [
        (MINE[0], "better"), (MINE[1], "worse"), (HELD, "same")]
    assert [p["success"] for p in data["curve"]] == [0.6667, 0.6667, 1.0]  # night 1 kept
    assert [r["episodes"] for r in data["history"][MINE[0]]] == [2, 3]
    listed = json.loads(nightloop("practice", "list", "--history", "--json", "--db",
                                  str(db)).stdout)
    assert listed["history"] == data["history"]
    assert "night 2 (2026-12-07): 2 of 3 succeeded, judge's mean p 63%" in nightloop(
        "practice", "list", "--history", "--db", str(db)).stdout
    earlier = json.loads(nightloop("night", "--id", "1", "--json", "--db", str(db)).stdout)
    assert earlier["state"] == "not_promoted" and not earlier["can_undo"]
    assert "there is no night 7" in nightloop("night", "--id", "7", "--db", str(db),
                                              check=False).stderr

    report = home / "out" / "night.html"
    report.parent.mkdir()
    text = nightloop("night", "--report", str(report), "--db", str(db)).stdout
    assert text.splitlines()[1] == data["outcome"] and "undo it: nightloop adapters " \
        "rollback" in text and f"wrote {report}" in text
    html = report.read_text()
    assert "learned: 2 tasks better, 1 worse" in html and "<script" not in html
    for episode_id in recorded["practice"][(1, MINE[0])]:      # the night's, linked
        assert f'href="night-episodes.html#episode-{episode_id}"' in html
    companion = (home / "out" / "night-episodes.html").read_text()
    assert all(f'id="episode-{i}"' in companion for i in recorded["practice"][(1, MINE[1])])
    assert 'id="episode-1"' not in companion                   # night 1's are not this one's


@pytest.mark.model
def test_a_night_that_fails_half_way_keeps_what_it_finished_and_says_what_failed(home,
                                                                                 monkeypatch):
    """The real cycle (llama.cpp loads the serving adapter) whose practice finds nothing to do
    and whose training then fails: its row says failed, in which phase and why."""
    from daemon.core.settings import load_settings
    from trainer.config import CyclePlan, TrainConfig
    from trainer.cycle import _Cycle, run_cycle

    async def practise(self):
        self.result.practice_episodes = 0

    async def train(self):
        raise RuntimeError("out of memory")
    monkeypatch.setattr(_Cycle, "practise", practise)
    monkeypatch.setattr(_Cycle, "train", train)
    settings = load_settings({"db": str(home / "store.db")}).settings
    result = run_async(run_cycle(settings, TrainConfig(), CyclePlan(tasks=("click-button",)),
                                 budget=60, say=lambda line: None))
    assert result.error == "RuntimeError: out of memory"

    async def stored():
        async with await Store.open(home / "store.db") as store:
            return await store.nights(), await last_report(store)
    nights, found = run_async(stored())
    assert len(nights) == 1
    night = nights[0]
    assert (night.status, night.phase, night.error) == ("failed", "train",
                                                        "RuntimeError: out of memory")
    assert night.serving == 1 and night.ended_at and night.seconds["total"] >= 0
    assert found.outcome == "failed during train: RuntimeError: out of memory; adapter 1 " \
        "serving"
    text = nightloop("night", "--db", str(home / "store.db")).stdout
    assert "failed during train: RuntimeError: out of memory" in text
