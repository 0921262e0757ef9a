"""Killing the daemon mid-episode loses at most the step in flight."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest
from conftest import NIGHTLOOP, nightloop, wait_until

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
