"""A short real learning cycle: MiniWoB++ practice through the extension, the judge, real peft
steps, GGUF export, the gate, promotion, and a daemon that switches to the new adapter."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import DaemonProcess, free_port, launch_browser, nightloop, run_async, wait_until

from daemon.core.settings import Settings
from daemon.core.store import Episode, PracticeRule, Store
from daemon.tasks import splits
from daemon.tasks.practice import PracticeTask, site_of
from trainer.clock import Clock
from trainer.config import CyclePlan, TrainConfig
from trainer.cycle import (
    GATE_SETUP_SECONDS,
    CycleState,
    _Cycle,
    _practised_seeds,
)
from trainer.gate import Arm, GateOutcome, HeldOut, Pairs, compare, decide
from trainer.gate_results import KEEP, GateResults, policy_key


def gate(won: int, lost: int, n: int = 12, held=None, held_serving=None,
         held_n=3) -> GateOutcome:
    return GateOutcome(Arm(0.5, n, held_out=HeldOut(held, held_n) if held is not None else None),
                       Arm(0.5, n, held_out=HeldOut(held_serving, held_n)
                           if held is not None else None),
                       Pairs(won, lost, 1.0))


def passes(outcome: GateOutcome, config: TrainConfig) -> bool:
    return decide(outcome, config).promote


def test_the_gate_promotes_only_on_evidence_and_a_tie_only_when_told():
    better = TrainConfig(gate_reward_margin=0.1)
    assert passes(gate(3, 1), better)
    assert not passes(gate(2, 2), better)                     # a tie is no evidence
    assert not passes(gate(0, 0), better)
    assert passes(gate(2, 2), TrainConfig(gate_promote="not_worse"))
    assert not passes(gate(1, 2), TrainConfig(gate_promote="not_worse"))
    assert passes(gate(0, 5), TrainConfig(gate_promote="always"))
    assert not passes(gate(3, 0, n=0), TrainConfig(gate_promote="not_worse"))  # never ran
    # The user's held-out tasks veto a loss beyond the margin, once there are enough of them.
    assert passes(gate(3, 1, held=0.25, held_serving=0.3), better)
    assert not passes(gate(3, 1, held=0.1, held_serving=0.3), better)
    assert passes(gate(3, 1, held=0.1, held_serving=0.3, held_n=2), better)  # 2: reported only
    # ... and the decision says why, in a sentence the morning report shows.
    assert decide(gate(3, 1), better).why == \
        "promoted: won 3 / lost 1 paired seeds (sign test p 1.000)"
    assert decide(gate(2, 2), better).why.endswith("it needs more won than lost")
    assert decide(gate(3, 1, held=0.1, held_serving=0.3), better).why == (
        "not promoted: on your 3 held-out tasks the judge's reward fell from 0.30 to 0.10, "
        "more than the margin of 0.1")
    assert decide(gate(3, 0, n=0), better).why == \
        "not promoted: the gate measured no paired episode"


def test_a_gate_cut_short_compares_only_what_both_adapters_finished_and_says_what_is_missing():
    candidate = {("click-button", 5): 1.0, ("focus-text", 5): 1.0, "buy milk": 0.5,
                 "water plants": 1.0}
    serving = {("click-button", 5): 0.0, ("focus-text", 5): 1.0, ("focus-text", 10): 1.0,
               ("click-link", 5): 1.0, "buy milk": 0.75, "pay rent": -1.0,
               "water plants": 0.0}
    planned = ("click-button", "click-link", "focus-text")
    # Every user task both measured is reported; only the held-out ones make HeldOut.
    assert compare(candidate, serving, planned, known=3,
                   held={"buy milk", "pay rent"}) == GateOutcome(
        Arm(1.0, 2, {"click-button": 1.0, "focus-text": 1.0}, HeldOut(0.5, 1),
            yours={"buy milk": 0.5, "water plants": 1.0}),
        Arm(0.5, 2, {"click-button": 0.0, "focus-text": 1.0}, HeldOut(0.75, 1), known=3,
            yours={"buy milk": 0.75, "water plants": 0.0}),
        Pairs(1, 0, 1.0), ["click-link"], held=["buy milk"])
    assert compare(candidate, serving).candidate.held_out is None     # none held out
    assert compare({}, serving).candidate == Arm(0.0, 0)
    assert dataclasses.asdict(compare(candidate, serving, held={"buy milk"}))["candidate"][
        "held_out"] == {"reward": 0.5, "n": 1}                  # the JSON the store keeps


def test_earlier_gate_outcomes_count_only_for_the_same_greedy_policy(tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"weights")
    greedy = Settings(temperature=0.0)
    key = policy_key(greedy, model, "abc", 10)
    assert key == policy_key(greedy, model, "abc", 10)
    assert len({key, policy_key(greedy, model, "abd", 10), policy_key(greedy, model, None, 10),
                policy_key(greedy, model, "abc", 11),
                policy_key(Settings(temperature=0.0, obs_tokens=900), model, "abc", 10)}) == 5
    assert policy_key(Settings(temperature=0.7), model, "abc", 10) is None   # a sample
    db = tmp_path / "store.db"
    GateResults.beside(db).add(key, {("click-button", 3): 1.0, ("focus-text", 3): 0.0,
                                     "a held-out user task": 0.4})
    assert GateResults.beside(db).known(key) == {("click-button", 3): 1.0,
                                                 ("focus-text", 3): 0.0}   # MiniWoB++ only
    assert GateResults.beside(db).known(None) == {}
    kept = GateResults.beside(db)
    for n in range(KEEP):
        kept.add(f"later-{n}", {("click-button", 3): 0.0})
    assert GateResults.beside(db).known(key) == {}                 # the oldest made way
    Path(f"{db}.gate.json").write_text("not json")
    assert GateResults.beside(db).runs == {}


def test_a_resumed_cycle_spends_only_the_shares_of_the_phases_it_has_left():
    now = [100.0]
    clock = Clock(1000, TrainConfig().shares, now=lambda: now[0])  # 0.3, 0.05, 0.45, 0.2
    clock.plan("practice")
    assert {p: clock.left(p) for p in clock.deadline} == {
        "practice": 300, "judge": 350, "train": 800, "gate": 1000}
    now[0] = 500.0
    clock.plan("train")              # resumed after practice and judging
    assert {p: clock.left(p) for p in clock.deadline} == {
        "practice": 0, "judge": 0, "train": 450, "gate": 650}
    now[0] = 1200.0
    assert clock.left("gate") == -50                # past its deadline


def test_practice_gets_what_a_gate_sized_to_its_episodes_leaves(home):
    """The gate wants `gate_episodes` for the candidate and for the serving adapter, less what
    an earlier gate measured, at the last gate's pace; the time it will not use is
    practice's, and it never gets more than its share."""
    import types

    from daemon.core.models import shipped_model
    from daemon.core.settings import load_settings
    db = home / "a.db"
    config = TrainConfig(gate_episodes=4)       # 2 tasks: 2 validation seeds
    cycle = _Cycle(load_settings({"db": str(db)}).settings, config,
                   CyclePlan(tasks=("click-button", "focus-text")), 1000, print,
                   lambda *a: None)
    cycle.policy = types.SimpleNamespace(info=types.SimpleNamespace(path=shipped_model()))
    cycle.serving, cycle.yours = None, []
    setup = cycle._gate_need() - 8 * 10 * 2.0 / 2          # unpaced: 10 s an episode
    assert setup == GATE_SETUP_SECONDS
    results = GateResults.beside(db)
    results.paced([4.0, 6.0])
    first = splits.seeds("validation", 1)[0]
    results.add(cycle._gate_key(None), {("click-button", first): 1.0, ("focus-text", first): 0})
    assert GateResults.beside(db).episode_seconds == 5.0
    assert cycle._gate_need() == setup + (8 - 2) * 5.0      # the serving's known: not again
    cycle.yours = [PracticeTask("buy milk", "http://shop.test/", 1)] * 2
    assert cycle._gate_need() == setup + (8 - 2 + 2 * 2) * 5.0   # each of yours, both adapters
    clock = Clock(1000, config.shares, now=lambda: 0.0)
    clock.plan("practice", gate_seconds=30)
    assert clock.left("practice") == 300 + 200 - 30
    assert (clock.left("train"), clock.left("gate")) == (970, 1000)
    clock.plan("practice", gate_seconds=5000)               # never more than its share
    assert clock.left("practice") == 300


def test_practice_leaves_out_the_tasks_last_nights_practice_solved_every_time(home):
    """Last night: click-button solved by every attempt of every seed, focus-text not;
    tonight practises focus-text only (before any night, or with sft_skip_solved off, all),
    on the train seeds after those last night practised."""
    from daemon.core.settings import load_settings
    from daemon.core.store import Adapter, Reward, Step
    db = home / "a.db"
    settings = load_settings({"db": str(db)}).settings
    plan = CyclePlan(tasks=("click-button", "focus-text"), sites=())

    async def go():
        async with await Store.open(db) as store:
            await store.start_episode(Episode("before last night", "toolbar"))
            night = await store.add_adapter(Adapter("a.gguf", "0", "m",
                                                    data_window={"after_episode": 1}))
            for task, seed, won in [("click-button", 1, 1.0), ("click-button", 1, 1.0),
                                    ("click-button", 2, 1.0), ("click-button", 2, 1.0),
                                    ("focus-text", 1, 1.0), ("focus-text", 1, 0.0)]:
                e = await store.start_episode(Episode(task, "practice", policy="llm:m"))
                await store.add_step(Step(e.id, 0, {"action": "done"}, True))
                await store.finish_episode(e.id, "done")
                await store.add_reward(Reward(e.id, "ground_truth", won, {
                    "benchmark": "miniwob", "task": task, "seed": seed}))
            state = CycleState(str(db), first_id=7, serving=night.id, folder=str(home))
            found = {}
            for name, config in (("skip", TrainConfig()),
                                 ("all", TrainConfig(sft_skip_solved=False))):
                cycle = _Cycle(settings, config, plan, 1000, print, lambda *a: None)
                found[name] = await cycle._mastered_last_night(store, state)
            first = _Cycle(settings, TrainConfig(), plan, 1000, print, lambda *a: None)
            found["first night"] = await first._mastered_last_night(
                store, CycleState(str(db), first_id=1, serving=None, folder=str(home)))
            found["seeds"] = splits.seeds("train", 2, skip=await _practised_seeds(store))
            return found
    assert run_async(go()) == {"skip": {"miniwob:click-button"}, "all": set(),
                               "first night": set(), "seeds": [3, 4]}   # after 1 and 2


def test_a_cycle_state_survives_on_disk_until_done(home):
    db, other = home / "a.db", home / "b.db"
    assert CycleState.load(db) is None
    state = CycleState(str(db), first_id=7, serving=None, folder=str(home / "a"))
    state.save()
    state.phase, state.candidate = "gate", 3
    state.save()
    assert CycleState.load(db) == state
    assert CycleState.load(other) is None               # a cycle on another store starts afresh
    CycleState.path(db).write_text("{not json")
    assert CycleState.load(db) is None                         # a broken file: start over
    state.done()
    assert CycleState.load(db) is None


def user_tasks(url: str) -> tuple[str, str]:
    """Two task texts for `url`: one the cycle practises, one it holds out for the gate."""
    candidates = [f'fill "Name" with "Ada {i}"' for i in range(50)]
    held = [t for t in candidates if PracticeTask(t, url, 0).held_out]
    return next(t for t in candidates if t not in held), held[0]


async def seed_user_tasks(db, url: str, tasks) -> None:
    async with await Store.open(db) as store:
        for task in tasks:
            episode = await store.start_episode(Episode(task, "toolbar", start_url=url))
            await store.finish_episode(episode.id, "done")
        await store.allow_practice(PracticeRule(site_of(url)))


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(1200)
def test_a_tiny_cycle_trains_exports_gates_and_the_daemon_serves_it(home, tmp_path, pages_url,
                                                                    monkeypatch, playwright):
    db = home / "store.db"
    url = f"{pages_url}/form.html"
    mine, held = user_tasks(url)
    run_async(seed_user_tasks(db, url, (mine, held)))
    daemon = DaemonProcess(free_port(), db, home / "daemon.log").start(policy="llm")
    try:
        before = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
        assert before["adapter_serving"] == "1, the shipped starting adapter"
        config = tmp_path / "train.toml"
        config.write_text("practice_k = 2\nsft_epochs = 1\nbatch_size = 2\n"
                          'gate_promote = "always"\nlora_r = 4\nlora_alpha = 8\n'
                          "practice_explore = 0.5\n")

        def train(*extra: str) -> dict:
            return json.loads(nightloop(
                "train", "--now", "--tasks", "click-button,focus-text", "--seeds", "1",
                "--gate-seeds", "1", "--teacher-seeds", "2", "--config", str(config),
                "--budget", "14", "--max-steps", "3", "--json",
                "--db", str(db), *daemon.args(), *extra, timeout=840).stdout)
        monkeypatch.setenv("NIGHTLOOP_SEED", "5")      # a fixed seed for the user's runs...
        result = train()
        assert result["error"] is None, result
        with sqlite3.connect(db) as conn:               # ... yet every practice step draws anew
            steps = conn.execute(
                "SELECT s.seed, s.mode, s.sampled IS NULL FROM steps s "
                "JOIN episodes e ON e.id = s.episode_id "
                "WHERE e.source = 'practice' AND e.policy LIKE 'llm:%'").fetchall()
        seeds = [seed for seed, _, _ in steps]
        assert len(seeds) >= 4 and len(set(seeds)) == len(seeds) and 5 not in seeds
        # About half its steps explored a kind of action; every step carries its sampler
        # record (the mixture's odds with it), so GRPO weighs explored steps back, not away.
        assert {mode for _, mode, _ in steps} <= {None, "explored"}
        assert any(mode for _, mode, _ in steps), steps
        assert not any(unrecorded for _, _, unrecorded in steps), steps
        # The user task's practice is judged; MiniWoB++ episodes carry ground truth, and the
        # judge scores them too, to measure itself: too few yet for its calibration's refit.
        with sqlite3.connect(db) as conn:
            (truth,), = conn.execute("SELECT count(DISTINCT episode_id) FROM rewards "
                                     "WHERE kind = 'ground_truth'")
        assert result["practice_episodes"] == 4 + 2 and result["judged"] == 2 + truth
        assert result["calibration"].startswith(f"judge calibration kept ({truth} episodes, 2 "
                                                "templates): too little ground truth yet")
        phases = {r["phase"]: r for r in result["training"]}
        assert phases["sft"]["steps"] > 0, result                    # the oracle taught
        assert 0 <= phases["sft"]["fitted"] <= 1 and phases["grpo"]["fitted"] is None
        assert (result["sft_steps"], result["grpo_steps"]) == (phases["sft"]["steps"],
                                                               phases["grpo"]["steps"])
        losses = phases["sft"]["losses"] + phases["grpo"]["losses"]
        assert all(isinstance(x, float) for x in losses)
        assert result["gate"]["candidate"]["n"] == 2 and result["promoted"]   # "always"
        assert set(result["gate"]["candidate"]["tasks"]) == {"click-button", "focus-text"}
        assert result["gate"]["unmeasured"] == [] and "p" in result["gate"]["pairs"]
        assert result["gate"]["candidate"]["held_out"]["n"] == 1      # the user's held-out task
        assert -1 <= result["gate"]["serving"]["held_out"]["reward"] <= 1
        # ... and both of the user's tasks measured, for the morning report's before → after
        assert set(result["gate"]["candidate"]["yours"]) == {mine, held} == \
            set(result["gate"]["serving"]["yours"]) and result["gate"]["held"] == [held]

        # The night is on record as it ran: `nightloop night` tells it from the store.
        night = json.loads(nightloop("night", "--json", "--db", str(db)).stdout)
        assert (night["state"], night["can_undo"]) == ("serving", True)
        assert night["night"]["status"] == "finished" and night["night"]["gate"] == \
            result["gate"] and night["night"]["decision"].startswith("promoted")
        assert night["night"]["practice"]["yours"][0]["task"] == mine
        assert night["night"]["practice"]["yours"][0]["episodes"] == 2
        assert night["night"]["practice"]["miniwob"]["episodes"] == 4
        assert night["night"]["training"]["sft_samples"] > 0
        assert {c["task"] for c in night["changes"] if c["yours"]} == {mine, held}

        # The allowed user task was practised; the held-out one never was, nor trained on.
        episodes = sqlite3.connect(db).execute(
            "SELECT task FROM episodes WHERE source = 'practice'").fetchall()
        assert episodes.count((mine,)) == 2 and (held,) not in episodes
        adapters = json.loads(nightloop("adapters", "list", "--json", "--db", str(db)).stdout)
        assert [a["status"] for a in adapters] == ["promoted", "retired"]
        assert adapters[0]["parent"] == 1                  # it went on from the shipped one
        assert adapters[0]["data_window"]["held_out_tasks"] == [held]
        first = adapters[0]["path"]
        with sqlite3.connect(Path(first).parent / "gate.db") as conn:     # never a test seed:
            gated = {json.loads(d)["seed"] for d, in conn.execute(     # those measure
                "SELECT details FROM rewards WHERE kind = 'ground_truth'")}
        assert gated == {1_000_001}
        status = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
        assert status["adapter"] == first       # llama.cpp loaded it; no restart was needed

        # An interrupted cycle goes on from its last finished phase: here, training (whose
        # saved state is complete, so no step is repeated), then export and the gate.
        folder = tmp_path / "interrupted"
        folder.mkdir()
        for state in Path(first).parent.glob("*-state.pt"):
            shutil.copy(state, folder)
        CycleState(str(db), first_id=2, serving=adapters[0]["id"], folder=str(folder),
                   phase="train").save()              # episodes 1-2 are the user's, before it
        resumed = train()
        assert resumed["error"] is None and resumed["resumed"] == "train", resumed
        assert resumed["practice_episodes"] == 0
        # Its serving adapter is the first cycle's candidate, whose gate outcomes on the same
        # test seeds are on record: reused, not measured again (only the held-out task is).
        serving = resumed["gate"]["serving"]
        assert serving["known"] == 2 and serving["tasks"] == result["gate"]["candidate"]["tasks"]
        assert [(r["steps"], r["resumed_at"]) for r in resumed["training"]] == [
            (r["steps"], r["steps"]) for r in result["training"]]
        assert CycleState.load(db) is None                             # done: nothing to resume
        assert (folder / "adapter.gguf").exists()

        # In the morning: the popup's panel tells the (resumed) night, and Undo serves the
        # adapter from before it at once.
        with launch_browser(playwright, daemon, tmp_path) as browser:
            popup = browser.popup()
            popup.wait_for_selector("#night:not([hidden])", timeout=20_000)
            last = json.loads(nightloop("night", "--json", "--db", str(db)).stdout)
            assert popup.text_content("#night-outcome") == last["outcome"]
            assert popup.locator("#night-tasks li").count() == 2    # both of the user's tasks
            popup.click("#undo")
            popup.click("#undo-yes")
            wait_until(lambda: popup.text_content("#night-outcome").startswith("undone"),
                       timeout=30, what="the night undone")
        status = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
        assert status.get("adapter") == first                          # the parent again
    finally:
        daemon.stop()
