"""Killing the daemon, or the browser, mid-episode loses at most the step in flight."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest
from conftest import (
    NIGHTLOOP,
    DaemonProcess,
    follow,
    free_port,
    launch_browser,
    nightloop,
    run_async,
    wait_until,
)

pytestmark = pytest.mark.browser


def committed_steps(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM steps").fetchone()[0]


def test_killed_daemon_keeps_finished_steps_and_marks_the_episode_interrupted(
        browser, daemon_proc, pages_url):
    runner = subprocess.Popen(
        [NIGHTLOOP, "run", *daemon_proc.args(), "--url", f"{pages_url}/slow.html",
         'fill "First" with "one"; fill "Second" with "two"; wait 30; fill "First" with "three"'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: daemon_proc.db.exists() and committed_steps(daemon_proc.db) == 2,
                   timeout=30, what="two committed steps")
        daemon_proc.kill()          # SIGKILL during the wait step
        out, err = runner.communicate(timeout=15)
    finally:
        runner.kill()
    # The CLI follower says what happened in one line, without a traceback.
    assert runner.returncode == 1
    assert "the daemon closed the connection" in err and "Traceback" not in err

    with sqlite3.connect(daemon_proc.db) as conn:     # the file is intact as the crash left it
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT status FROM episodes").fetchone() == ("running",)

    daemon_proc.start()             # a restart recovers: the episode is interrupted
    episode = json.loads(nightloop("episodes", "show", "1", "--json",
                                   "--db", str(daemon_proc.db)).stdout)
    assert episode["status"] == "interrupted" and episode["ended_at"]
    assert [(s["index"], s["action"]["text"], s["ok"]) for s in episode["steps"]] == [
        (0, "one", True), (1, "two", True)]
    listed = nightloop("episodes", "list", "--db", str(daemon_proc.db)).stdout
    assert "interrupted" in listed and "2 steps" in listed


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_twenty_kills_mid_episode_lose_no_committed_step(browser, daemon_proc, pages_url):
    """kill -9 at a random point of a running episode, twenty times over one store: every step
    committed before a kill is still there after it, and the file passes integrity_check."""
    import random
    rng = random.Random(7)
    task = "; ".join(f'fill "First" with "{i}"' for i in range(12))
    for n in range(20):
        wait_until(lambda: '"browser_connected": true' in nightloop(
            "status", "--json", *daemon_proc.args(), check=False).stdout,
            timeout=30, what="the extension to reconnect")
        before = committed_steps(daemon_proc.db)
        runner = subprocess.Popen([NIGHTLOOP, "run", *daemon_proc.args(), "--url",
                                   f"{pages_url}/slow.html", task],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wanted = before + rng.randrange(1, 8)
            wait_until(lambda: committed_steps(daemon_proc.db) >= wanted, timeout=30,
                       what=f"round {n}: steps to commit")
            seen = committed_steps(daemon_proc.db)
            daemon_proc.kill()
        finally:
            runner.wait(15)
        with sqlite3.connect(daemon_proc.db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert committed_steps(daemon_proc.db) >= seen, f"round {n} lost a step"
        daemon_proc.start()
    with sqlite3.connect(daemon_proc.db) as conn:
        statuses = {s for (s,) in conn.execute("SELECT status FROM episodes")}
    assert statuses <= {"interrupted", "step_limit", "done"} and "running" not in statuses


def test_chromium_crashing_mid_episode_ends_it_with_the_reason_and_the_daemon_serves_on(
        playwright, home, tmp_path, pages_url):
    """kill -9 the browser during an episode: the episode waits its reconnect grace for the
    extension, then fails saying why; every committed step stays; a new browser works."""
    daemon = DaemonProcess(free_port(), home / "store.db", home / "daemon.log").start(
        "--reconnect-grace", "3")
    runner = None
    try:
        with launch_browser(playwright, daemon, tmp_path / "first"):
            runner = subprocess.Popen(
                [NIGHTLOOP, "run", *daemon.args(), "--json", "--url", f"{pages_url}/slow.html",
                 'fill "First" with "one"; wait 5; fill "Second" with "two"'],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_until(lambda: committed_steps(daemon.db) == 1, timeout=30,
                       what="a committed step")
            subprocess.run(["pkill", "-KILL", "-f", str(tmp_path / "first")], check=True)
            out, _ = runner.communicate(timeout=60)
        episode = json.loads(out.splitlines()[-1])["episode"]
        assert runner.returncode == 5 and episode["status"] == "failed"
        assert episode["error"] == "no browser is connected (waited 3 s for the extension to " \
            "reconnect)"
        with sqlite3.connect(daemon.db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert [r for r, in conn.execute('SELECT ok FROM steps ORDER BY "index"')][:2] == \
                [1, 1]                                          # fill, wait: kept
        with launch_browser(playwright, daemon, tmp_path / "second"):
            again = follow("run", *daemon.args(), "--url", f"{pages_url}/slow.html",
                           'fill "First" with "again"', timeout=60)
            assert again["status"] == "done"
    finally:
        if runner:
            runner.kill()
        daemon.stop()


def test_a_full_disk_fails_the_step_in_flight_and_the_daemon_serves_on(playwright, home,
                                                                        tmp_path, pages_url):
    """The store's files may not grow past 192 kB (RLIMIT_FSIZE: the system refuses the write
    as on a full disk): the episode whose step no longer fits fails saying so, every step
    committed before stays, the file passes integrity_check, and the daemon keeps answering."""
    import resource
    import signal
    db = home / "store.db"
    run_async(_open_close(db))
    limit = 192 * 1024

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a refused write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    daemon = DaemonProcess(free_port(), db, home / "daemon.log").start(
        "--screenshots", "off", preexec_fn=small_disk)
    task = "; ".join(f'fill "First" with "{"x" * 40} {i}"' for i in range(12))
    try:
        with launch_browser(playwright, daemon, tmp_path):
            for _ in range(60):
                episode = follow("run", *daemon.args(), "--url", f"{pages_url}/slow.html", task,
                                 timeout=60)
                if episode["status"] != "done":
                    break
            assert episode["status"] == "failed", episode
            assert f"could not write {db}" in episode["error"] and \
                "is the disk full?" in episode["error"]
            committed = committed_steps(db)
            refused = nightloop("run", *daemon.args(), "--url", f"{pages_url}/slow.html",
                                'fill "First" with "more"', check=False)
            # refused at its start (exit 1), or failed at its first step (exit 5): saying why
            assert refused.returncode in (1, 5) and \
                "is the disk full?" in refused.stdout + refused.stderr
            assert json.loads(nightloop("status", "--json", *daemon.args()).stdout)["running"]
        daemon.stop()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert committed_steps(db) == committed > 12    # earlier episodes whole, none lost
    finally:
        daemon.stop()


async def _open_close(db):
    from daemon.core.store import Store
    await (await Store.open(db)).close()


def test_the_model_file_truncated_then_gone_while_the_daemon_runs(playwright, home, tmp_path,
                                                                  pages_url):
    """The policy's weights are in memory: a model file cut short, then deleted, under a
    running daemon changes nothing for its episodes; switching to it again is refused with
    the reason, and the daemon serves on with what it has."""
    import os
    import shutil

    from daemon.bridge.pairing import load_or_create_token
    from daemon.core import protocol as p
    from daemon.core.models import shipped_model
    from daemon.core.settings import config_dir
    from daemon.service.client import DaemonError, connected
    model = tmp_path / "model.gguf"
    shutil.copy(shipped_model(), model)
    daemon = DaemonProcess(free_port(), home / "store.db", home / "daemon.log").start(
        "--max-steps", "2", "--model", str(model), policy="llm")

    async def reload() -> str:
        async with connected(daemon.port, load_or_create_token(config_dir())) as client:
            try:
                await client.request(p.Reload())
            except DaemonError as exc:
                return str(exc)
        return "switched"
    try:
        with launch_browser(playwright, daemon, tmp_path / "profile"):
            for harm in (lambda: os.truncate(model, 1_000_000), model.unlink):
                harm()
                episode = follow("run", *daemon.args(), "--url", f"{pages_url}/form.html",
                                 "Type Ada into the Name field", timeout=120)
                assert episode["status"] in ("done", "gave_up", "step_limit"), episode
                refused = run_async(reload())
                assert refused != "switched" and str(model) in refused, refused
                status = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
                assert status["running"] and status["policy"].startswith("llm:")
    finally:
        daemon.stop()
