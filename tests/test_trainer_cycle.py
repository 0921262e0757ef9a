"""A short real learning cycle: MiniWoB++ practice through the extension, the judge, real peft
steps, GGUF export, the gate, promotion, and a daemon that switches to the new adapter."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import DaemonProcess, free_port, nightloop, run_async

from daemon.core.settings import Settings
from daemon.core.store import Episode, PracticeRule, Store
from daemon.tasks.practice import PracticeTask, site_of
from trainer.config import CyclePlan, TrainConfig
from trainer.cycle import CycleState, _compare, _Cycle, _passes
from trainer.gate_results import KEEP, GateResults, policy_key


def gate(won: int, lost: int, n: int = 12, held=None, held_serving=None, held_n=3) -> dict:
    rates = {"candidate": {"success": 0.5, "n": n}, "serving": {"success": 0.5, "n": n},
             "pairs": {"won": won, "lost": lost}, "unmeasured": []}
    if held is not None:
        rates["candidate"]["held_out"] = {"reward": held, "n": held_n}
        rates["serving"]["held_out"] = {"reward": held_serving, "n": held_n}
    return rates


def test_the_gate_promotes_only_on_evidence_and_a_tie_only_when_told():
    better = TrainConfig(gate_reward_margin=0.1)
    assert _passes(gate(3, 1), better)
    assert not _passes(gate(2, 2), better)                     # a tie is no evidence
    assert not _passes(gate(0, 0), better)
    assert _passes(gate(2, 2), TrainConfig(gate_promote="not_worse"))
    assert not _passes(gate(1, 2), TrainConfig(gate_promote="not_worse"))
    assert _passes(gate(0, 5), TrainConfig(gate_promote="always"))
    assert not _passes(gate(3, 0, n=0), TrainConfig(gate_promote="not_worse"))  # never ran
    # The user's held-out tasks veto a loss beyond the margin, once there are enough of them.
    assert _passes(gate(3, 1, held=0.25, held_serving=0.3), better)
    assert not _passes(gate(3, 1, held=0.1, held_serving=0.3), better)
    assert _passes(gate(3, 1, held=0.1, held_serving=0.3, held_n=2), better)  # 2: reported only


def test_a_gate_cut_short_compares_only_what_both_adapters_finished_and_says_what_is_missing():
    candidate = {("click-button", 5): 1.0, ("focus-text", 5): 1.0, "buy milk": 0.5}
    serving = {("click-button", 5): 0.0, ("focus-text", 5): 1.0, ("focus-text", 10): 1.0,
               ("click-link", 5): 1.0, "buy milk": 0.75, "pay rent": -1.0}
    planned = ("click-button", "click-link", "focus-text")
    assert _compare(candidate, serving, planned) == {
        "candidate": {"success": 1.0, "n": 2, "tasks": {"click-button": 1.0, "focus-text": 1.0},
                      "held_out": {"reward": 0.5, "n": 1}},
        "serving": {"success": 0.5, "n": 2, "tasks": {"click-button": 0.0, "focus-text": 1.0},
                    "held_out": {"reward": 0.75, "n": 1}},
        "pairs": {"won": 1, "lost": 0, "p": 1.0}, "unmeasured": ["click-link"]}
    assert _compare({}, serving)["candidate"] == {"success": 0.0, "n": 0, "tasks": {}}


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


def test_a_resumed_cycle_spends_only_the_shares_of_the_phases_it_has_left(home):
    from daemon.core.settings import load_settings
    config = TrainConfig()           # practice 0.3, judge 0.05, train 0.45, gate 0.2
    cycle = _Cycle(load_settings({"db": str(home / "a.db")}).settings, config,
                   CyclePlan(tasks=("click-button",)), 1000, print, lambda *a: None)
    assert cycle.left("judge") == pytest.approx(350, abs=2)
    assert cycle.left("gate") == pytest.approx(1000, abs=2)
    cycle.plan_time("train")        # resumed after practice and judging
    assert cycle.left("practice") <= 0 and cycle.left("judge") <= 0
    assert cycle.left("train") == pytest.approx(450, abs=2)
    assert cycle.left("gate") == pytest.approx(650, abs=2)


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
                                                                    monkeypatch):
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
        # About half its steps explored a kind of action; those give GRPO no sampler record.
        assert {mode for _, mode, _ in steps} <= {None, "explored"}
        assert any(mode for _, mode, _ in steps), steps
        assert all(unrecorded for _, mode, unrecorded in steps if mode), steps
        assert any(not unrecorded for _, mode, unrecorded in steps if not mode), steps
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

        # The allowed user task was practised; the held-out one never was, nor trained on.
        episodes = sqlite3.connect(db).execute(
            "SELECT task FROM episodes WHERE source = 'practice'").fetchall()
        assert episodes.count((mine,)) == 2 and (held,) not in episodes
        adapters = json.loads(nightloop("adapters", "list", "--json", "--db", str(db)).stdout)
        assert [a["status"] for a in adapters] == ["promoted", "retired"]
        assert adapters[0]["parent"] == 1                  # it went on from the shipped one
        assert adapters[0]["data_window"]["held_out_tasks"] == [held]
        first = adapters[0]["path"]
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

        nightloop("adapters", "rollback", "--db", str(db), *daemon.args())
        status = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
        assert status.get("adapter") == first                          # the parent again
    finally:
        daemon.stop()
