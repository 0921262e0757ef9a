"""The store over months on real SQLite files: backups taken while it is written, restores that
check what they restore, compaction, screenshot retention, and what `status` says of its size."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time

import pytest
from conftest import nightloop, run_async

from daemon.core import maintenance
from daemon.core.errors import NightloopError
from daemon.core.screenshots import Screenshots
from daemon.core.store import Episode, Step, Store


async def fill(db, episodes: int, steps: int = 3, shots: bool = False) -> None:
    async with await Store.open(db) as store:
        for n in range(episodes):
            episode = await store.start_episode(Episode(f"task {n}", "cli"))
            for i in range(steps):
                await store.add_step(Step(episode.id, i, {"action": "click", "id": i}, True,
                                          observation={"text": "x" * 2000}))
                if shots:
                    store.screenshots.write(episode.id, i, b"\xff\xd8" + b"j" * 1000)
            await store.finish_episode(episode.id, "done")


def count(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM episodes").fetchone()[0]


def test_a_backup_taken_while_the_store_is_written_is_whole_and_private(tmp_path):
    db = tmp_path / "s.db"
    run_async(fill(db, 20, shots=True))
    writing, written = threading.Event(), []

    def writer():                       # another connection keeps writing, as a daemon does
        with sqlite3.connect(db, timeout=10) as conn:
            while not writing.is_set():
                conn.execute("INSERT INTO episodes (task, source, status, started_at) "
                             "VALUES ('more', 'cli', 'done', '2026-12-07')")
                conn.commit()
                written.append(1)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        found = maintenance.backup(db, tmp_path / "copy" / "b.db")
    finally:
        writing.set()
        thread.join()
    copy = tmp_path / "copy" / "b.db"
    assert written and 20 <= found.episodes <= count(db)        # a snapshot, in between
    maintenance.check(copy)                                     # integrity_check: ok
    assert oct(copy.stat().st_mode & 0o777) == "0o600"
    assert Screenshots(copy).read("3/2.jpg") == Screenshots(db).read("3/2.jpg")
    assert not (tmp_path / "copy" / "b.db.partial").exists()
    with pytest.raises(NightloopError, match="cannot overwrite the store it copies"):
        maintenance.backup(db, db)


def test_a_restore_checks_the_backup_and_keeps_the_store_it_replaces(tmp_path):
    db, other = tmp_path / "s.db", tmp_path / "other.db"
    run_async(fill(db, 3))
    run_async(fill(other, 7, shots=True))
    backup = tmp_path / "b.db"
    maintenance.backup(other, backup)
    kept = maintenance.restore(backup, db)
    assert count(db) == 7 and count(kept) == 3
    assert Screenshots(db).read("1/0.jpg") is not None
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(NightloopError, match="not a nightloop store|damaged"):
        maintenance.restore(broken, db)
    newer = tmp_path / "newer.db"
    maintenance.backup(other, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("INSERT INTO migrations VALUES ('from_the_future', '2030-01-01')")
    with pytest.raises(NightloopError, match="newer nightloop"):
        maintenance.restore(newer, db)
    assert count(db) == 7                                       # refused: untouched


def test_compaction_gives_the_space_of_deleted_episodes_back(tmp_path):
    db = tmp_path / "s.db"
    run_async(fill(db, 60, steps=5))

    async def delete():
        async with await Store.open(db) as store:
            await store.delete_episodes(list(range(1, 56)))
    run_async(delete())
    before, after = maintenance.compact(db)
    assert after < before / 3 and count(db) == 5


def test_screenshots_go_oldest_first_by_age_or_size_and_the_episodes_stay(tmp_path):
    db = tmp_path / "s.db"
    run_async(fill(db, 6, steps=2, shots=True))                 # 6 folders of ~2 kB
    root = Screenshots(db).root
    now = time.time()
    for episode_id in (1, 2):                                   # ten days old
        os.utime(root / str(episode_id), (now - 10 * 86400, now - 10 * 86400))
    assert maintenance.prune_screenshots(db, keep_days=7, now=now) == (2, 2 * 2004)
    assert sorted(int(p.name) for p in root.iterdir()) == [3, 4, 5, 6]
    kept_mb = 3 * 2004 / maintenance.MB                         # room for three folders
    folders, _ = maintenance.prune_screenshots(db, max_mb=kept_mb)
    assert folders == 1 and sorted(int(p.name) for p in root.iterdir()) == [4, 5, 6]
    assert maintenance.prune_screenshots(db) == (0, 0)          # no limits: nothing
    assert count(db) == 6


@pytest.mark.process
def test_the_store_commands_while_a_daemon_serves_it(daemon_proc, tmp_path):
    db = daemon_proc.db
    run_async(fill(db, 4, shots=True))
    backup = tmp_path / "b.db"
    out = nightloop("store", "backup", str(backup), "--db", str(db)).stdout
    assert "backed up 4 episodes" in out and count(backup) == 4
    refused = nightloop("store", "restore", str(backup), "--yes", "--db", str(db),
                        *daemon_proc.args(), check=False)
    assert refused.returncode == 1 and "a daemon is using" in refused.stderr
    status = json.loads(nightloop("status", "--json", *daemon_proc.args()).stdout)
    assert status["running"] and status["store_bytes"] > 0 and "note" not in status
    noted = nightloop("status", *daemon_proc.args(), "--store-note-mb", "0").stdout
    assert "note: the store and its screenshots take" in noted and "store compact" in noted
    size = json.loads(nightloop("store", "size", "--json", "--db", str(db)).stdout)
    assert size["episodes"] == 4 and size["screenshot_bytes"] == 4 * 3 * 1002
    daemon_proc.stop()
    restored = nightloop("store", "restore", str(backup), "--yes", "--db", str(db)).stdout
    assert f"restored {db}" in restored


@pytest.mark.process
def test_the_daemon_applies_screenshot_retention_when_it_starts(home):
    from conftest import DaemonProcess, free_port, wait_until
    db = home / "store.db"
    run_async(fill(db, 3, shots=True))
    old = time.time() - 5 * 86400
    os.utime(Screenshots(db).root / "1", (old, old))
    daemon = DaemonProcess(free_port(), db, home / "daemon.log").start(
        "--screenshots-keep-days", "2")
    try:
        wait_until(lambda: "screenshots of 1 episodes deleted" in daemon.log.read_text(),
                   what="retention at start")
        assert sorted(p.name for p in Screenshots(db).root.iterdir()) == ["2", "3"]
        assert count(db) == 3
    finally:
        daemon.stop()
