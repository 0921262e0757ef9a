"""Episodes on Ray actors (daemon/tasks/cluster.py): a real local Ray instance, real actors each
with a headless Chromium and the extension, MiniWoB++ pages served on the actor's node, and the
driver as the store's one writer. The actors import this module's policies (PYTHONPATH)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import tempfile
from pathlib import Path

import psutil
import pytest
from conftest import nightloop, run_async

from daemon.core.errors import UsageError
from daemon.core.settings import Settings
from daemon.tasks.cluster import Cluster, Recipe, evaluate_on_ray
from daemon.tasks.evaluation import EvalPlan, evaluate
from daemon.tasks.oracle import OraclePolicy

pytestmark = pytest.mark.browser
TESTS = Path(__file__).resolve().parent
PLAN = EvalPlan(["click-button", "click-link"], [0, 5])


@pytest.fixture(scope="module")
def ray_instance():
    """A Ray instance on this machine for the module's tests (three actors' worth of CPUs)."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS),
                                                              os.environ.get("PYTHONPATH")])))
        ray.init(num_cpus=3, include_dashboard=False, object_store_memory=128 * 2**20)
        try:
            yield ray
        finally:
            ray.shutdown()


class Dies(OraclePolicy):
    """The oracle, but the actor's process kills itself at the first step of a task whose
    utterance `deaths` names, as many times as it says (counted in files in its folder)."""

    def __init__(self, deaths: dict[str, tuple[Path, int]]):
        self.deaths = deaths

    async def decide(self, context):
        if context.task in self.deaths and not context.history:
            marks, times = self.deaths[context.task]
            done = len(list(marks.glob("kill-*")))
            if done < times:
                (marks / f"kill-{done}").write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        return await super().decide(context)


class KillsItsBrowser(OraclePolicy):
    """The oracle, but at the first step of `utterance`, once (a file in `marks` says so), it
    kills the actor's Chromium: every process under the actor's that runs a harness profile."""

    def __init__(self, utterance: str, marks: Path):
        self.utterance, self.marks = utterance, marks

    async def decide(self, context):
        if context.task == self.utterance and not context.history \
                and not (self.marks / "killed").exists():
            browsers = [pid for pid in descendants(os.getpid())
                        if b"nightloop-harness-" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            (self.marks / "killed").write_text(" ".join(map(str, browsers)))
            for pid in browsers:
                os.kill(pid, signal.SIGKILL)
        return await super().decide(context)


def descendants(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


RAY_PROCESSES = ("ray::", "/raylet", "gcs_server", "ray/_private/")


def ray_processes() -> set[int]:
    """Every process on this machine that belongs to some Ray instance (its workers, raylet,
    GCS and helper scripts), whoever started it."""
    found = set()
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(process.cmdline())
            if any(mark in cmdline for mark in RAY_PROCESSES):
                found.add(process.pid)
    return found


def actors_alive(ray) -> int:
    return sum(a["State"] == "ALIVE" for a in ray._private.state.actors().values())


class ShippedAdapter(OraclePolicy):
    """The oracle, naming as its adapter the file the actor was given and a hash of its bytes
    (recorded with each episode)."""

    def __init__(self, settings):
        path = Path(settings.adapter)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        where = "a copy" if path.parent.name.startswith("nightloop-actor-") else str(path)
        self.adapter = f"{where} of {path.name}, {digest}"


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(
            "SELECT e.task, e.status, e.error, count(s.episode_id), "
            "(SELECT group_concat(kind || '=' || value) FROM rewards r WHERE r.episode_id = e.id) "
            "FROM episodes e LEFT JOIN steps s ON s.episode_id = e.id "
            "GROUP BY e.id ORDER BY e.id").fetchall()


def test_two_actors_run_the_plan_as_a_local_run_does_and_only_the_driver_writes(ray_instance,
                                                                                 tmp_path):
    """Same (task, seed) pairs, same pages (utterances), same outcomes and result shape as a
    local run; every episode stored once, with its steps and its ground truth."""
    seen, actor_folders = [], set(Path(tempfile.gettempdir()).glob("nightloop-actor-*"))
    adapter = tmp_path / "adapter.gguf"                 # shipped: the actor reads its copy
    adapter.write_bytes(os.urandom(300_000))
    told = []
    recipe = Recipe(ShippedAdapter, Settings(adapter=str(adapter)))
    on_ray = run_async(evaluate_on_ray(PLAN, recipe, db=tmp_path / "ray.db",
                                       cluster=Cluster(actors=2),
                                       on_result=seen.append,
                                       on_ready=lambda *named: told.append(named)))
    here = run_async(evaluate(PLAN, policy=OraclePolicy(), db=tmp_path / "local.db"))

    def shape(results):
        return [(r.task, r.seed, r.split, r.utterance, r.success, r.done, r.steps, r.status,
                 r.error) for r in results]
    assert shape(on_ray) == shape(here) and all(r.success for r in on_ray)
    assert sorted(seen, key=lambda r: (r.task, r.seed)) == \
        sorted(on_ray, key=lambda r: (r.task, r.seed))          # each told once, as it landed
    stored = rows(tmp_path / "ray.db")
    assert sorted(stored) == sorted(rows(tmp_path / "local.db"))
    assert len(stored) == 4 and all(r[1:] == ("done", None, 1, "ground_truth=1.0")
                                    for r in stored)
    shipped = f"a copy of adapter.gguf, {hashlib.sha256(adapter.read_bytes()).hexdigest()[:12]}"
    assert told == [("oracle", shipped)]
    with sqlite3.connect(tmp_path / "ray.db") as c:
        assert c.execute("SELECT DISTINCT adapter FROM episodes").fetchall() == [(shipped,)]
    ids = {r.episode_id for r in on_ray}
    assert len(ids) == 4 and None not in ids            # the driver's ids, not the actors'
    # the actors closed their browsers and removed their scratch stores (and may have swept
    # a folder an earlier, killed run left: the set can shrink, never grow)
    assert set(Path(tempfile.gettempdir()).glob("nightloop-actor-*")) <= actor_folders


def test_an_actor_killed_mid_episode_is_restarted_and_its_episode_run_again_once(ray_instance,
                                                                                 tmp_path):
    """click-link seed 0: the actor dies once at its first step (Ray restarts it, the group
    runs again and is stored once); click-button seed 5: it dies every time (run twice, then
    stored as a failed episode that says so). Nothing half-written, every episode accounted
    for."""
    utterance = {(r.task, r.seed): r.utterance
                 for r in run_async(evaluate(PLAN, policy=OraclePolicy(),
                                             db=tmp_path / "peek.db"))}
    once, always = tmp_path / "once", tmp_path / "always"
    once.mkdir(), always.mkdir()
    folders = set(Path(tempfile.gettempdir()).glob("nightloop-actor-*"))
    deaths = {utterance["click-link", 0]: (once, 1), utterance["click-button", 5]: (always, 99)}
    results = run_async(evaluate_on_ray(PLAN, Recipe(lambda _: Dies(deaths)),
                                        db=tmp_path / "ray.db", cluster=Cluster(actors=2)))
    outcome = {(r.task, r.seed): (r.success, r.error) for r in results}
    assert len(list(once.glob("kill-*"))) == 1 and len(list(always.glob("kill-*"))) == 2
    assert outcome[("click-link", 0)] == (True, None)
    assert outcome[("click-button", 5)][0] is False
    assert "no actor could run it" in outcome[("click-button", 5)][1]
    assert [outcome[k] for k in (("click-button", 0), ("click-link", 5))] == [(True, None)] * 2
    stored = rows(tmp_path / "ray.db")
    assert len(stored) == 4                                 # one per (task, seed): no duplicate
    failed = [r for r in stored if r[1] == "failed"]
    assert len(failed) == 1 and failed[0][0] == "miniwob click-button, seed 5"
    assert "no actor could run it" in failed[0][2] and failed[0][3] == 0
    assert sum(r[1] == "done" and r[4] == "ground_truth=1.0" for r in stored) == 3
    # the killed actors' folders went too: each restarted actor swept its dead ones'
    assert set(Path(tempfile.gettempdir()).glob("nightloop-actor-*")) <= folders


@pytest.mark.parametrize("plan, refusal", [
    (EvalPlan(["click-button"], [0], screenshots=True), "screenshots stay on the node"),
    (EvalPlan(["click-button"], [0], parallel=2), "--actors says how many episodes"),
])
def test_what_ray_cannot_do_is_refused_before_anything_starts(tmp_path, plan, refusal):
    with pytest.raises(UsageError, match=refusal):
        run_async(evaluate_on_ray(plan, Recipe(lambda _: OraclePolicy()), db=tmp_path / "s.db",
                                  cluster=Cluster()))
    assert not (tmp_path / "s.db").exists()


@pytest.mark.slow
def test_an_actor_whose_browser_dies_gets_a_new_one_and_runs_the_group_again(ray_instance,
                                                                             tmp_path):
    """The extension's reconnect grace (45 s) passes, the episode fails, the actor finds its
    browser gone, starts another and raises BrowserGone; Ray runs the group again on it."""
    utterance = run_async(evaluate(EvalPlan(["click-link"], [0]), policy=OraclePolicy(),
                                   db=tmp_path / "peek.db"))[0].utterance
    results = run_async(evaluate_on_ray(
        EvalPlan(["click-link"], [0, 5]), Recipe(lambda _: KillsItsBrowser(utterance, tmp_path)),
        db=tmp_path / "ray.db", cluster=Cluster(actors=1)))
    assert (tmp_path / "killed").read_text().strip()           # it did kill a browser
    assert [(r.seed, r.success, r.error) for r in results] == [(0, True, None), (5, True, None)]
    assert [r[1:] for r in rows(tmp_path / "ray.db")] == [("done", None, 1, "ground_truth=1.0")] * 2


def test_a_run_cut_short_keeps_what_finished_and_leaves_no_actor_behind(ray_instance, tmp_path):
    """As the nightly budget or Ctrl-C cuts a run: stored episodes are whole, the rest never
    started in the store, and the actors are gone."""
    plan = EvalPlan(["click-button", "click-link"], list(range(0, 100, 5)))
    seen = []

    async def cut():
        some_stored = asyncio.Event()

        def heard(result):
            seen.append(result)
            if len(seen) >= 4:
                some_stored.set()
        run = asyncio.ensure_future(evaluate_on_ray(
            plan, Recipe(lambda _: OraclePolicy()), db=tmp_path / "ray.db",
            cluster=Cluster(actors=2), on_result=heard))
        waiting = asyncio.ensure_future(some_stored.wait())
        await asyncio.wait([run, waiting], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        assert not run.done(), "the run ended before it could be cut"
        run.cancel()                            # as the budget's timeout or Ctrl-C does
        with contextlib.suppress(asyncio.CancelledError):
            await run
    run_async(cut())
    stored = rows(tmp_path / "ray.db")
    assert 4 <= len(seen) == len(stored) < 40
    assert all(r[1:] == ("done", None, 1, "ground_truth=1.0") for r in stored)
    assert actors_alive(ray_instance) == 0


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_night_practises_and_gates_on_ray_actors_and_stores_each_episode_once(home, tmp_path):
    """`nightloop train --now --ray --actors 2`: a Ray instance of its own, the teacher's,
    practice's and the gate's MiniWoB++ episodes on two actors each loading the shipped model
    (the serving adapter shipped to them), judging and training here; every (task, seed,
    attempt) stored once, whole, and the night recorded as finished."""
    db = home / "store.db"
    config = tmp_path / "train.toml"
    config.write_text("practice_k = 2\nsft_epochs = 1\nbatch_size = 2\n"
                      'gate_promote = "always"\nlora_r = 4\nlora_alpha = 8\n')
    sessions = set(Path(tempfile.gettempdir(), "ray").glob("session_2*"))
    result = json.loads(nightloop(
        "train", "--now", "--ray", "--actors", "2", "--tasks", "click-button,focus-text",
        "--seeds", "1", "--gate-seeds", "1", "--teacher-seeds", "1", "--sites", "none",
        "--config", str(config), "--budget", "14", "--max-steps", "3", "--json",
        "--db", str(db), timeout=1100).stdout)
    assert result["error"] is None, result
    assert set(Path(tempfile.gettempdir(), "ray").glob("session_2*")) - sessions  # its own Ray
    with sqlite3.connect(db) as c:
        practice = c.execute(
            "SELECT e.policy, json_extract(r.details, '$.task'), json_extract(r.details, "
            "'$.seed'), (SELECT count(*) FROM steps s WHERE s.episode_id = e.id) FROM episodes e "
            "JOIN rewards r ON r.episode_id = e.id AND r.kind = 'ground_truth' "
            "WHERE e.source = 'practice'").fetchall()
        night = c.execute("SELECT status, practice, gate FROM nights").fetchone()
    teacher = sorted((t, s) for p, t, s, n in practice if p == "oracle")
    model = sorted((t, s) for p, t, s, n in practice if p.startswith("llm:"))
    assert teacher == [("click-button", 1), ("focus-text", 1)]
    # a new store's first night: the model practises the first train seed, as the teacher did
    assert model == [("click-button", 1)] * 2 + [("focus-text", 1)] * 2     # k = 2 attempts
    assert all(n >= 1 for *_, n in practice)                # whole: every one has its steps
    assert night[0] == "finished" and json.loads(night[2])["candidate"]["n"] >= 1


@pytest.mark.slow
def test_nightloop_eval_with_ray_reports_like_a_local_run(home, tmp_path):
    """The command a user types: its own Ray instance, the report of a local run's shape with
    where it ran in its meta, the store written by the command's process."""
    out = tmp_path / "run"
    report = json.loads(nightloop(
        "eval", "miniwob", "--tasks", "click-button,click-link", "--seeds", "2", "--policy",
        "oracle", "--ray", "--actors", "2", "--out", str(out), "--json",
        "--db", str(home / "store.db"), timeout=300).stdout)
    meta, episodes = report["meta"], report["episodes"]
    assert meta["ray"] == {"address": "local", "actors": 2} and meta["policy"] == "oracle"
    assert sorted((e["task"], e["seed"], e["success"]) for e in episodes) == [
        ("click-button", 0, True), ("click-button", 5, True),
        ("click-link", 0, True), ("click-link", 5, True)]
    assert sorted(r[1] for r in rows(home / "store.db")) == ["done"] * 4
    assert (out / "report.md").exists()


@pytest.mark.slow
def test_actors_share_one_openai_compatible_server(ray_instance, model_server, tmp_path):
    """`backend = "openai"`: two actors' policies ask the one llama.cpp server; no actor loads
    a model of its own."""
    from daemon.core.settings import Settings
    from daemon.service.app import make_policy
    settings = Settings(policy="llm", backend="openai", server_url=model_server,
                        temperature=0.0, adapter="none")
    results = run_async(evaluate_on_ray(
        EvalPlan(["click-button", "click-link"], [0, 5], max_steps=3),
        Recipe(make_policy, settings), db=tmp_path / "ray.db", cluster=Cluster(actors=2)))
    assert len(results) == 4 and not [r.error for r in results if r.error]
    with sqlite3.connect(tmp_path / "ray.db") as c:
        policies = {p for (p,) in c.execute("SELECT DISTINCT policy FROM episodes")}
        decided = c.execute("SELECT count(*) FROM steps WHERE raw_output IS NOT NULL").fetchone()
    assert policies == {f"server:{model_server}"}
    assert decided[0] >= 4                  # every episode's steps came from the server


@pytest.mark.slow
def test_ctrl_c_stops_a_ray_run_keeping_what_finished_and_nothing_of_ray(home, tmp_path):
    import subprocess

    from conftest import NIGHTLOOP, wait_until
    db, out = home / "store.db", tmp_path / "run"
    before = ray_processes()        # the module's own Ray instance, and anyone else's
    run = subprocess.Popen([NIGHTLOOP, "eval", "miniwob", "--suite", "smoke", "--seeds", "20",
                            "--policy", "oracle", "--ray", "--actors", "2", "--db", str(db),
                            "--out", str(out)], stderr=subprocess.PIPE, text=True)
    def stored_some() -> bool:
        with contextlib.suppress(sqlite3.OperationalError):     # the schema not yet made
            return db.exists() and len(rows(db)) >= 6
        return False
    wait_until(stored_some, timeout=180, what="some episodes")
    run.send_signal(signal.SIGINT)
    code, err = run.wait(60), run.stderr.read()
    assert code == 0, err
    assert "interrupted: the report covers the episodes that finished" in err
    stored = rows(db)
    report = json.loads((out / "results.json").read_text())
    assert report["meta"]["interrupted"] and len(report["episodes"]) == len(stored) < 100
    assert all(r[1:] == ("done", None, r[3], "ground_truth=1.0") for r in stored)
    # Ray went with it. The run has exited, so an orphan of its Ray has left this process's
    # tree (which holds the module's own Ray): look machine-wide for one that is new
    def strays() -> set[int]:
        return ray_processes() - before - set(descendants(os.getpid()))
    wait_until(lambda: not strays(), timeout=10, what="the run's Ray processes to exit")
