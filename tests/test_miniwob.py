"""MiniWoB++ through the real extension: the oracle solves, a wrong policy fails, seeds split."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3

import pytest
from conftest import nightloop, run_async

from daemon.agent.policy import Decision
from daemon.core.actions import Action
from daemon.tasks import miniwob, splits
from daemon.tasks.evaluation import EvalPlan, evaluate
from daemon.tasks.oracle import SOLVERS, OraclePolicy

ORACLE_TASKS = sorted(SOLVERS)


def test_the_seed_split_is_disjoint_and_stable():
    assert splits.seeds("test", 5) == [0, 5, 10, 15, 20]
    assert splits.seeds("train", 6) == [1, 2, 3, 4, 6, 7]
    assert splits.seeds("train", 3, skip=3) == [4, 6, 7]      # the next night's block
    test, train = set(splits.seeds("test", 200)), set(splits.seeds("train", 800))
    assert not test & train and test | train == set(range(1000))
    assert all(splits.split_of(s) == "test" for s in test)
    validation = splits.seeds("validation", 8)      # the gate's: practice never gets there
    assert validation[:4] == [1_000_001, 1_000_002, 1_000_003, 1_000_004]
    assert not set(validation) & (test | train) and 1_000_005 not in validation
    assert {splits.split_of(s) for s in validation} == {"validation"}
    with pytest.raises(ValueError, match="unknown split"):
        splits.seeds("dev", 1)


def test_suites_name_tasks_the_package_ships():
    assert len(miniwob.suite("smoke")) == 5
    assert 28 <= len(miniwob.suite("core")) <= 35
    every = miniwob.suite("all")
    assert set(miniwob.suite("core")) <= set(every)
    assert not set(every) & miniwob.UNSUPPORTED and len(every) > 80
    miniwob.check_tasks(miniwob.suite("core"))
    with pytest.raises(ValueError, match="unknown MiniWoB\\+\\+ task 'click-everything'"):
        miniwob.check_tasks(["click-button", "click-everything"])


class WrongPolicy:
    """Deliberately wrong: clicks a button or link that is not the one asked for, types the
    wrong text, submits without choosing."""

    name = "wrong"
    adapter = None

    async def decide(self, context):
        if context.history:
            return Decision(Action("done"))
        target = re.search(r'"(.*?)"', context.task)
        target = target.group(1) if target else None
        obs = context.observation
        editable = [e for e in obs.elements if e.editable]
        if editable and "Enter" in context.task:
            return Decision(Action("fill", {"id": editable[0].id, "text": "wrong text"}))
        for element in obs.elements:
            if element.role in ("button", "link", "clickable") and element.name != target \
                    and element.name != "Submit":
                return Decision(Action("click", {"id": element.id}))
        return Decision(Action("give_up", {"reason": "nothing wrong to do"}))


@pytest.mark.browser
def test_the_oracle_solves_its_tasks_and_a_wrong_policy_fails_them(home):
    db = home / "eval.db"
    seeds = splits.seeds("test", 3)
    oracle = run_async(evaluate(EvalPlan(ORACLE_TASKS, seeds, parallel=2),
                                policy=OraclePolicy(), db=db))
    assert len(oracle) == len(ORACLE_TASKS) * 3
    assert [(r.task, r.seed) for r in oracle] == [(t, s) for t in ORACLE_TASKS for s in seeds]
    assert all(r.success and r.done and r.raw_reward > 0 and r.error is None for r in oracle), \
        [(r.task, r.seed, r.status, r.error) for r in oracle if not r.success]

    wrong_tasks = ["click-button", "click-link", "enter-text"]
    wrong = run_async(evaluate(EvalPlan(wrong_tasks, seeds), policy=WrongPolicy(), db=db))
    assert [r.success for r in wrong] == [False] * 9
    assert all(r.raw_reward <= 0 for r in wrong)

    # The ground truth is in the store, beside ordinary eval episodes.
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT e.id, e.source, e.task, e.policy, r.kind, r.value, r.details "
                        "FROM episodes e JOIN rewards r ON r.episode_id = e.id").fetchall()
    assert len(rows) == len(oracle) + len(wrong)
    by_episode = {r.episode_id: r for r in oracle + wrong}
    # The score board (it shows rewards) is hidden: the agent and the judge never see it.
    texts = [t for (t,) in conn.execute("SELECT observation FROM steps")]
    assert texts and not any("Last reward" in t for t in texts)
    for episode_id, source, task, policy, kind, value, details in rows:
        result, details = by_episode[episode_id], json.loads(details)
        assert (source, kind, task) == ("eval", "ground_truth", result.utterance)
        assert value == float(result.success) and details["raw_reward"] == result.raw_reward
        assert policy == ("oracle" if result.success else "wrong")
        assert (details["task"], details["seed"], details["split"]) == (
            result.task, result.seed, "test")


class KeepsClicking:
    """Solves the task at step 1 (the oracle's first action), then would go on clicking: the
    START cover when the page shows one (it begins a new problem and erases the reward),
    else the first element."""

    name, adapter = "keeps-clicking", None

    def __init__(self):
        self.oracle = OraclePolicy()

    async def decide(self, context):
        if not context.history:
            return await self.oracle.decide(context)
        elements = context.observation.elements
        start = [e for e in elements if e.name.strip().upper() == "START"]
        return Decision(Action("click", {"id": (start or elements)[0].id}))


@pytest.mark.browser
def test_the_episode_ends_when_the_page_says_done_so_nothing_can_undo_a_success(home):
    """BrowserGym's rule: the page's state is read after every step and the episode ends at
    the page's own end. A one-click task solved at step 1 is a 1-step success."""
    db = home / "eval.db"
    seeds = splits.seeds("test", 2)
    results = run_async(evaluate(EvalPlan(["click-dialog", "click-button"], seeds, max_steps=4),
                                 policy=KeepsClicking(), db=db))
    assert [(r.task, r.success, r.steps, r.status) for r in results] == [
        (task, True, 1, "done") for task in ("click-dialog", "click-button") for _ in seeds]
    assert all(r.raw_reward > 0 for r in results)
    rows = sqlite3.connect(db).execute("SELECT value, details FROM rewards").fetchall()
    assert [value for value, _ in rows] == [1.0] * 4          # binary success, as BrowserGym
    assert all(json.loads(d)["raw_reward"] > 0 for _, d in rows)      # the raw reward kept


class TypesItAsAsked:
    """Fills the task's date or time exactly as the instruction writes it, then submits."""

    name, adapter = "types-as-asked", None

    async def decide(self, context):
        elements = context.observation.elements
        if context.history:
            return Decision(Action("click", {"id": next(
                e.id for e in elements if e.name.strip().lower() == "submit")}))
        value = re.match(r"Enter (.+) as the (?:date|time)", context.task).group(1)
        return Decision(Action("fill", {"id": next(e.id for e in elements if e.editable),
                                        "text": value}))


@pytest.mark.browser
def test_a_date_or_time_typed_as_the_task_writes_it_solves_the_task(home):
    """enter-date asks for "09/10/2012" and enter-time for "8:22 AM"; their inputs take
    "2012-09-10" and "08:22": the extension's fill turns one into the other."""
    seeds = splits.seeds("test", 2)
    results = run_async(evaluate(EvalPlan(["enter-date", "enter-time"], seeds, max_steps=3),
                                 policy=TypesItAsAsked(), db=home / "eval.db"))
    assert [(r.task, r.success, r.steps) for r in results] == [
        (task, True, 2) for task in ("enter-date", "enter-time") for _ in seeds], \
        [(r.task, r.status, r.error) for r in results]


@pytest.mark.browser
def test_a_broken_task_page_is_a_failure_with_its_reason_and_the_run_goes_on(home, monkeypatch):
    real_url = miniwob.task_url
    monkeypatch.setattr(miniwob, "task_url", lambda base, task: real_url(base, task).replace(
        "focus-text", "no-such-task"))
    results = run_async(evaluate(EvalPlan(["click-button", "focus-text", "click-link"], [0]),
                                 policy=OraclePolicy(), db=home / "eval.db"))
    assert [r.success for r in results] == [True, False, True]
    assert results[1].error == "probe miniwob.start failed: this page is not a MiniWoB++ task"


@pytest.mark.browser
def test_the_eval_command_writes_a_report_and_compares_runs(home):
    runs = []
    for name in ("a", "b"):
        out = home / name
        result = nightloop("eval", "miniwob", "--policy", "oracle", "--tasks",
                           "click-button,focus-text", "--seeds", "2", "--out", str(out),
                           "--db", str(home / "eval.db"), "--json")
        data = json.loads(result.stdout)
        assert [e["success"] for e in data["episodes"]] == [True] * 4
        assert data["meta"]["policy"] == "oracle" and data["meta"]["seeds"] == [0, 5]
        assert (out / "success.png").stat().st_size > 1000
        report = (out / "report.md").read_text()
        assert "| click-button | 2 | 1.00 | 0.34–1.00 |" in report
        runs.append(out)
    compared = nightloop("eval", "compare", str(runs[0]), str(runs[1])).stdout
    assert re.search(r"click-button\s+1.00\s+1.00\s+\+0.00", compared)
    assert (runs[1] / "compare.png").exists()
    bad = nightloop("eval", "miniwob", "--seed-list", "1,5", check=False)
    assert bad.returncode == 2 and "seeds [1] are not test seeds" in bad.stderr


@pytest.mark.browser
def test_ctrl_c_stops_the_run_and_keeps_what_finished(home):
    import signal
    import subprocess

    from conftest import NIGHTLOOP, wait_until

    out = home / "run"
    proc = subprocess.Popen([NIGHTLOOP, "eval", "miniwob", "--policy", "oracle", "--suite",
                             "smoke", "--seeds", "20", "--out", str(out),
                             "--db", str(home / "eval.db")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell that ran us in the background ignores SIGINT, and so
                            # would the child: give it the default, as in a terminal
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    wait_until(lambda: lines.append(proc.stderr.readline()) or "[3/100]" in lines[-1],
               timeout=60, what="three finished episodes")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert "interrupted: the report covers the episodes that finished" in stderr
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["interrupted"] is True
    assert 3 <= len(data["episodes"]) < 100
    assert all(e["success"] for e in data["episodes"])
    assert "Traceback" not in stderr


def test_compare_pairs_the_seeds_both_runs_ran_and_tests_the_difference():
    from daemon.tasks.evaluation import EpisodeResult
    from daemon.tasks.report import compare, sign_test

    def run(solved: dict) -> list[EpisodeResult]:
        return [EpisodeResult(task, seed, "test", ok, 1.0 if ok else 0.0, True)
                for (task, seed), ok in solved.items()]
    a = run({("x", 0): False, ("x", 5): False, ("x", 10): True, ("y", 0): True})
    b = run({("x", 0): True, ("x", 5): True, ("x", 10): True, ("y", 0): False, ("y", 5): True})
    by_task = {d.task: d for d in compare(a, b)}
    assert (by_task["x"].won, by_task["x"].lost) == (2, 0)
    assert (by_task["y"].won, by_task["y"].lost) == (0, 1)     # seed 5 ran in B only
    assert (by_task["all"].won, by_task["all"].lost) == (2, 1)
    assert sign_test(0, 0) == 1.0 and sign_test(2, 1) == 1.0
    assert sign_test(8, 1) == pytest.approx(2 * 10 / 512)      # 0.039
    assert sign_test(6, 0) == sign_test(0, 6) == pytest.approx(2 / 64)


def test_a_report_of_tasks_all_solved_or_all_failed_draws_its_chart(tmp_path):
    """6 of 6 (and 0 of 11) once put the Wilson interval's end a float's width inside the
    rate: the chart's error bar went negative and matplotlib refused the whole report."""
    from daemon.tasks.evaluation import EpisodeResult
    from daemon.tasks.report import wilson, write_run
    assert all(wilson(n, n)[1] == 1.0 and wilson(0, n)[0] == 0.0 for n in range(1, 300))
    assert wilson(3, 6)[0] < 0.5 < wilson(3, 6)[1]
    results = [EpisodeResult("x", seed, "test", True, 1.0, True) for seed in range(6)] + \
        [EpisodeResult("y", seed, "test", False, 0.0, True) for seed in range(11)]
    write_run(tmp_path, results, {"benchmark": "miniwob", "policy": "p"})
    assert (tmp_path / "success.png").stat().st_size > 1000


def test_a_plan_runs_task_by_task_or_seed_by_seed_each_group_back_to_back():
    plan = EvalPlan(["a", "b"], [0, 5])
    assert plan.jobs == [("a", 0), ("a", 5), ("b", 0), ("b", 5)]
    assert dataclasses.replace(plan, by_seed=True).jobs == [("a", 0), ("b", 0), ("a", 5),
                                                            ("b", 5)]   # a cut spares no task
    groups = dataclasses.replace(plan, by_seed=True, attempts=2).jobs   # a group back to back:
    assert groups == [("a", 0), ("a", 0), ("b", 0), ("b", 0),           # its first prompt is
                      ("a", 5), ("a", 5), ("b", 5), ("b", 5)]           # cached for the next
