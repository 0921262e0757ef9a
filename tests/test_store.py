"""The store on a real SQLite file: migrations, commits, recovery, deletion, redaction."""

from __future__ import annotations

import contextlib
import json
import sqlite3

import pytest
from conftest import run_async

from daemon.core.errors import UsageError
from daemon.core.migrations import SCHEMA_VERSION
from daemon.core.store import Episode, Night, Reward, Step, Store, StoreError


def step(episode_id: int, index: int, **kw) -> Step:
    return Step(episode_id, index, {"action": "click", "id": index}, True, url="http://x/", **kw)


def test_a_new_store_is_migrated_and_in_wal_mode(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "deep" / "dir" / "s.db") as store:
            assert await store.schema_version() == SCHEMA_VERSION
    run_async(go())
    conn = sqlite3.connect(tmp_path / "deep" / "dir" / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY rowid")] == [
        "initial", "model_usage", "demonstrations", "adapters", "practice_rules", "sampled",
        "final_observation", "screenshots", "nights", "status_index"]


def test_the_store_and_its_wal_are_private_to_the_user(tmp_path):
    import os
    folder, shared = tmp_path / "new" / "data", tmp_path / "shared"
    shared.mkdir(mode=0o755)
    old = shared / "old.db"
    old.touch(mode=0o644)

    async def go(path):
        async with await Store.open(path) as store:
            await store.start_episode(Episode("buy milk", "cli"))   # a write: WAL and SHM
            return {p.name: os.stat(p).st_mode & 0o777 for p in path.parent.glob("*.db*")}
    modes = run_async(go(folder / "s.db")) | run_async(go(old))
    assert set(modes) == {"s.db", "s.db-wal", "s.db-shm", "old.db", "old.db-wal", "old.db-shm"}
    assert set(modes.values()) == {0o600}
    assert os.stat(folder).st_mode & 0o777 == 0o700            # a folder it created
    assert os.stat(shared).st_mode & 0o777 == 0o755            # one the user had: as it was


def test_an_older_store_is_migrated_in_place_and_keeps_its_rows(tmp_path, monkeypatch):
    import daemon.core.store as store_module
    db = tmp_path / "s.db"
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
    conn = sqlite3.connect(db)      # a version-1 store with one episode and one step in it
    run_async(_open_close(db))
    conn.execute("INSERT INTO episodes (task, source, status, started_at) "
                 "VALUES ('old', 'cli', 'done', '2026-01-01')")
    conn.execute('INSERT INTO steps (episode_id, "index", ok, started_at) '
                 "VALUES (1, 0, 1, '2026-01-01')")
    conn.commit()
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    monkeypatch.undo()

    async def go():
        async with await Store.open(db) as store:
            return await store.schema_version(), await store.steps(1)
    version, steps = run_async(go())
    assert version == SCHEMA_VERSION == 10
    assert steps[0].invalid is False and steps[0].prompt_tokens is None
    assert steps[0].mode is None and steps[0].target is None and steps[0].sampled is None


def test_rows_round_trip_and_each_write_is_committed_at_once(tmp_path):
    db = tmp_path / "s.db"

    async def go():
        store = await Store.open(db)
        episode = await store.start_episode(Episode("buy milk", "cli", start_url="http://x/"))
        await store.add_step(step(episode.id, 0, observation={"url": "http://x/", "elements": []},
                                  observe_ms=1.5))
        # Another connection sees the step before anything else happens: it is committed.
        other = sqlite3.connect(db)
        assert other.execute("SELECT count(*) FROM steps").fetchone() == (1,)
        other.close()
        await store.add_reward(Reward(episode.id, "user", 1.0, {"client": "cli"}))
        await store.finish_episode(episode.id, "done", final_answer="ok")
        got = await store.episode(episode.id)
        steps = await store.steps(episode.id)
        rewards = await store.rewards(episode.id)
        counts = await store.counts()
        await store.close()
        return got, steps, rewards, counts

    got, steps, rewards, counts = run_async(go())
    assert (got.task, got.status, got.final_answer, got.n_steps) == ("buy milk", "done", "ok", 1)
    assert got.ended_at >= got.started_at
    assert steps[0].observation == {"url": "http://x/", "elements": []}
    assert steps[0].action == {"action": "click", "id": 0} and steps[0].ok is True
    assert rewards[0].details == {"client": "cli"} and rewards[0].value == 1.0
    assert counts == {"done": 1}


def test_an_episode_from_another_store_is_imported_whole_under_a_new_id_or_not_at_all(tmp_path):
    """What the Ray driver does with an actor's episode: its rows, renumbered, in one
    transaction (a reward the store refuses takes the episode and its steps with it)."""
    async def go():
        async with await Store.open(tmp_path / "actor.db") as scratch:
            e = await scratch.start_episode(Episode("click ok", "eval", start_url="http://x/"))
            await scratch.add_step(step(e.id, 0, observation={"url": "http://x/"}))
            await scratch.add_step(step(e.id, 1))
            await scratch.add_reward(Reward(e.id, "ground_truth", 1.0, {"seed": 3}))
            await scratch.finish_episode(e.id, "done")
            rows = (await scratch.episode(e.id), await scratch.steps(e.id),
                    await scratch.rewards(e.id))
        async with await Store.open(tmp_path / "main.db") as store:
            await store.start_episode(Episode("already here", "cli"))
            imported = await store.import_episode(*rows)
            got = (await store.episode(imported.id), await store.steps(imported.id),
                   await store.rewards(imported.id))
            bad = Reward(0, "ground_truth", float("nan"), {"x": object()})    # not JSON
            with pytest.raises(TypeError):
                await store.import_episode(rows[0], rows[1], [bad])
            return rows, imported, got, await store.counts()

    (episode, steps, rewards), imported, got, counts = run_async(go())
    assert imported.id == 2 != episode.id
    assert (got[0].task, got[0].status, got[0].n_steps) == ("click ok", "done", 2)
    assert [s.index for s in got[1]] == [0, 1] and got[1][0].observation == {"url": "http://x/"}
    assert [(r.kind, r.value, r.details) for r in got[2]] == [("ground_truth", 1.0, {"seed": 3})]
    assert counts == {"running": 1, "done": 1}          # the refused one left nothing behind


def test_coroutines_sharing_a_store_never_write_inside_each_others_transactions(tmp_path):
    """Imports from two Ray actors landing at once, beside a running episode's steps, on one
    connection: each import whole, each step committed; an import cancelled half-way (the
    night's budget) leaves nothing and the store writable."""
    import asyncio

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            running = await store.start_episode(Episode("live", "toolbar"))
            rows = (Episode("imported", "eval", status="done"),
                    [step(0, i) for i in range(30)], [Reward(0, "ground_truth", 1.0)])
            await asyncio.gather(*(store.import_episode(*rows) for _ in range(4)),
                                 *(store.add_step(step(running.id, i)) for i in range(30)))
            cut = asyncio.ensure_future(store.import_episode(*rows))
            await asyncio.sleep(0)
            cut.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cut
            await store.add_reward(Reward(running.id, "user", 1.0))     # still writable
            return [(e.task, e.n_steps) for e in await store.episodes()], await store.counts()

    episodes, counts = run_async(go())
    assert sorted(episodes) == [("imported", 30)] * 4 + [("live", 30)] or \
        sorted(episodes) == [("imported", 30)] * 5 + [("live", 30)]      # cancelled late
    assert counts["running"] == 1


def test_reopening_marks_running_episodes_interrupted_only_when_recovering(tmp_path):
    db = tmp_path / "s.db"

    async def go():
        store = await Store.open(db)
        running = await store.start_episode(Episode("a", "cli"))
        finished = await store.start_episode(Episode("b", "cli"))
        await store.finish_episode(finished.id, "done")
        await store.close()        # as if the daemon died: `running` never finished
        async with await Store.open(db, recover=False) as reader:
            before = (await reader.episode(running.id)).status
        async with await Store.open(db) as daemon_store:
            after = [(e.id, e.status) for e in await daemon_store.episodes()]
        return running.id, finished.id, before, after

    running, finished, before, after = run_async(go())
    assert before == "running"
    assert after == [(finished, "done"), (running, "interrupted")]


def test_delete_by_id_and_by_date_takes_steps_and_rewards_along(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            ids = []
            for started in ("2026-01-01T00:00:00.000Z", "2026-06-01T00:00:00.000Z",
                            "2026-09-01T00:00:00.000Z"):
                e = await store.start_episode(Episode("t", "cli", started_at=started))
                await store.add_step(step(e.id, 0))
                await store.add_reward(Reward(e.id, "user", -1.0))
                ids.append(e.id)
            n_by_id = await store.delete_episodes([ids[2]])
            n_by_date = await store.delete_episodes(before="2026-03-01T00:00:00.000Z")
            left = [e.id for e in await store.episodes()]
            orphans = [await store.steps(i) for i in ids] + [await store.rewards(i) for i in ids]
            with pytest.raises(ValueError):
                await store.delete_episodes()
            return ids, n_by_id, n_by_date, left, orphans

    ids, n_by_id, n_by_date, left, orphans = run_async(go())
    assert (n_by_id, n_by_date, left) == (1, 1, [ids[1]])
    assert sum(map(len, orphans)) == 2      # only the kept episode's step and reward


def test_redaction_leaves_no_trace_of_the_secret_in_any_file(tmp_path):
    db = tmp_path / "s.db"

    async def go():
        async with await Store.open(db) as store:
            e = await store.start_episode(Episode('log in with "pa\\"ss"', "cli"))
            drawn = {"temperature": 1.0, "tokens": [1, 2], "logprobs": [0, 0], "choices": [2, 2]}
            await store.add_step(step(e.id, 0, prompt='type pa"ss now',
                                      raw_output='{"text": "pa\\"ss"}', sampled=drawn))
            await store.add_step(step(e.id, 1, prompt='Task: log in with "pa\\"ss"',
                                      raw_output='{"action": "click"}', sampled=drawn))
            await store.add_step(step(e.id, 2, raw_output='{"action": "done"}', sampled=drawn))
            await store.redact(e.id, 'pa"ss', "•••")
            return (await store.episode(e.id)).task, await store.steps(e.id)

    task, (s, prompted, clean) = run_async(go())
    assert task == 'log in with "•••"'
    assert s.prompt == "type ••• now" and s.raw_output == '{"text": "•••"}'
    assert s.sampled is None                    # its token ids spell the secret: dropped
    assert prompted.prompt == 'Task: log in with "•••"' and prompted.sampled is None  # drawn
    assert clean.sampled["tokens"] == [1, 2]    # from another prompt; untouched: kept
    for path in tmp_path.glob("s.db*"):
        data = path.read_bytes()
        assert b'pa"ss' not in data and b'pa\\"ss' not in data, path


def test_redacting_a_one_character_secret_leaves_every_json_column_json(tmp_path):
    """A model that typed "1" into a password box: the digit goes from the page's values and
    the action's text, while ids, counts and every JSON column stay intact and readable."""
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            e = await store.start_episode(Episode("enter the password", "cli"))
            await store.add_step(Step(
                e.id, 0, {"action": "fill", "id": 12, "text": "1"}, True, url="http://x/",
                observation={"url": "http://x/", "elements": [{"id": 12, "value": "1"}]},
                result={"tab_id": 1245}))
            await store.redact(e.id, "1", "•••")
            return await store.steps(e.id)

    (s,) = run_async(go())
    assert s.action == {"action": "fill", "id": 12, "text": "•••"}
    assert s.observation["elements"] == [{"id": 12, "value": "•••"}]
    assert s.result == {"tab_id": 1245}


def test_a_short_secret_is_masked_where_it_stands_alone_and_words_holding_it_stay(tmp_path):
    """MiniWoB++'s login-user types passwords such as "ab": the typed value and the page's
    echo of it go, "table" and "about" stay (they went to "t•••le" before); a long secret is
    masked even inside other text."""
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            e = await store.start_episode(Episode("Enter the password and press login", "cli"))
            await store.add_step(Step(
                e.id, 0, {"action": "fill", "id": 3, "text": "ab"}, True,
                prompt='Typed "ab". A table about cabs. key=hunter2x9;',
                observation={"text": "ab (your password) in the table",
                             "elements": [{"id": 3, "value": "ab"}]}))
            await store.redact(e.id, "ab", "•••")
            await store.redact(e.id, "hunter2x9", "•••")
            return await store.steps(e.id)

    (s,) = run_async(go())
    assert s.action["text"] == "•••" and s.observation["elements"][0]["value"] == "•••"
    assert s.prompt == 'Typed "•••". A table about cabs. key=•••;'
    assert s.observation["text"] == "••• (your password) in the table"


def test_a_file_that_is_not_a_store_gives_a_clear_error(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("these are my notes, not a database" * 100)
    with pytest.raises(StoreError, match="is not a usable nightloop database"):
        run_async(Store.open(bad))


def test_a_store_from_a_newer_version_is_not_touched(tmp_path):
    db = tmp_path / "s.db"
    run_async(_open_close(db))
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO migrations VALUES ('from_the_future', '2030-01-01')")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match="newer nightloop"):
        run_async(Store.open(db))
    assert db.read_bytes() == before                    # not a byte changed


async def _open_close(db):
    await (await Store.open(db)).close()


def test_rollback_retires_the_serving_adapter_and_promotes_its_parent_in_one_step(tmp_path):
    from daemon.core.store import Adapter

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            with pytest.raises(ValueError, match="no adapter is promoted"):
                await store.rollback_adapter()
            first = await store.add_adapter(Adapter("a.gguf", "x", "m.gguf"))
            second = await store.add_adapter(Adapter("b.gguf", "y", "m.gguf", parent=first.id))
            await store.set_adapter_status(first.id, "promoted")
            await store.set_adapter_status(second.id, "promoted")     # retires the first
            assert [a.status for a in await store.adapters()] == ["promoted", "retired"]

            # All or nothing: a failure half-way leaves the serving adapter serving.
            real = store._set_adapter_status
            calls = []

            async def fail_second(*args, **kwargs):
                calls.append(args)
                if len(calls) == 2:
                    raise sqlite3.OperationalError("disk I/O error")
                await real(*args, **kwargs)
            store._set_adapter_status = fail_second
            with pytest.raises(sqlite3.OperationalError):
                await store.rollback_adapter()
            store._set_adapter_status = real
            assert (await store.promoted_adapter()).id == second.id

            # A rollback that names the adapter to retire (the popup's Undo of a night) is
            # refused once another one serves: a stale panel never undoes a later night.
            with pytest.raises(UsageError, match=f"adapter {first.id} no longer serves"):
                await store.rollback_adapter(expected=first.id)
            retired, serving = await store.rollback_adapter(expected=second.id)
            assert (retired.id, retired.status) == (second.id, "retired")
            assert (serving.id, serving.status) == (first.id, "promoted")
            retired, serving = await store.rollback_adapter()       # the first had no parent
            assert retired.id == first.id and serving is None
            assert await store.promoted_adapter() is None
    run_async(go())


def test_the_judge_waits_only_for_finished_episodes_without_a_verdict(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            ids = []
            for kind in (None, "judge", "ground_truth", None):
                episode = await store.start_episode(Episode("t", "practice"))
                await store.finish_episode(episode.id, "done")
                if kind:
                    await store.add_reward(Reward(episode.id, kind, 1.0))
                ids.append(episode.id)
            await store.start_episode(Episode("still running", "cli"))
            assert await store.unjudged() == [ids[0], ids[3]]   # truth needs no judge
            # ... but the judge measures itself on it: the calibration's refit
            assert await store.unjudged_with_truth() == [ids[2]]
            assert await store.unjudged_with_truth(after=ids[2]) == []
            await store.add_reward(Reward(ids[2], "judge", 0.1, {"n": 1}))
            await store.add_reward(Reward(ids[2], "judge", 0.3, {"n": 2}))   # the newest counts
            await store.add_reward(Reward(ids[1], "user", 1.0))              # no truth: left out
            assert await store.unjudged_with_truth() == []
            assert await store.judged_with_truth() == [(None, {"n": 2}, 1.0)]
    run_async(go())


def test_a_night_keeps_each_phase_as_it_is_written_and_says_where_it_failed(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            first = await store.start_night(Night(after_episode=3, serving=None, budget=600))
            second = await store.start_night(Night(after_episode=9))
            await store.update_night(first.id, practice={"mine": [{"task": "t", "n": 8}]},
                                     phase="train", last_episode=9)
            await store.update_night(first.id, status="failed", error="OSError: disk full",
                                     ended_at="2026-12-07T05:00:00.000Z")
            await store.update_night(second.id, status="finished", promoted=False,
                                     gate={"pairs": {"won": 1, "lost": 2}})
            with pytest.raises(ValueError, match="not a night's field: colour"):
                await store.update_night(first.id, colour="red")
            with pytest.raises(ValueError, match="not a night's field: id"):
                await store.update_night(first.id, id=7)
            with pytest.raises(ValueError, match="not a night's status"):
                await store.update_night(first.id, status="asleep")
            return await store.nights(), await store.night(first.id), await store.night(99)
    nights, failed, missing = run_async(go())
    assert [n.id for n in nights] == [2, 1] and missing is None          # newest first
    assert (failed.status, failed.phase, failed.error) == ("failed", "train",
                                                           "OSError: disk full")
    assert failed.practice == {"mine": [{"task": "t", "n": 8}]} and failed.last_episode == 9
    assert failed.promoted is None and failed.gate is None and failed.budget == 600
    assert nights[0].promoted is False and nights[0].gate["pairs"] == {"won": 1, "lost": 2}


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_store_of_every_earlier_version_migrates_and_keeps_every_row(tmp_path, monkeypatch,
                                                                       version):
    """Each earlier schema, built by its own migrations, with one row in every table (a value
    in every column): opened by today's store, every row and value is still there."""
    import daemon.core.store as store_module
    db = tmp_path / "old.db"
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:version])
    run_async(_open_close(db))
    monkeypatch.undo()
    conn = sqlite3.connect(db)
    tables = [t for t, in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name != 'migrations' ORDER BY name = 'episodes' "
                                       "DESC, name = 'adapters' DESC, rowid")]
    before = {}
    for table in tables:
        columns = [(name, kind) for _, name, kind, *_ in conn.execute(
            f"PRAGMA table_info({table})")]
        values = {name: _sample(name, kind) for name, kind in columns}
        conn.execute(f"INSERT INTO {table} ({', '.join(repr(c) for c in values)}) "
                     f"VALUES ({', '.join('?' * len(values))})", tuple(values.values()))
        before[table] = values
    conn.commit()
    conn.close()
    run_async(_open_close(db))
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    for table, values in before.items():
        row, = conn.execute(f"SELECT * FROM {table}").fetchall()
        assert {k: row[k] for k in values} == values, table


def _sample(column: str, kind: str):
    """A value for every column: ids 1 (rows point at each other), JSON text, numbers."""
    if column in ("id", "episode_id", "parent", "serving", "candidate", "replay_of",
                  "after_episode", "last_episode", "index"):
        return 1
    if kind == "INTEGER":
        return 7
    if kind == "REAL":
        return 1.5
    return json.dumps({"column": column})
