"""The trajectory store: episodes, their steps and their rewards in one SQLite file.

Contract:
- WAL mode, foreign keys on; every write commits at once, so a crash loses at most the write in
  flight. `Store.open` applies pending migrations and marks episodes left ``running`` by a dead
  daemon as ``interrupted``.
- Migrations (`migrations.py`) are small named functions applied in order and recorded in
  ``migrations``; the schema version (also PRAGMA user_version) is how many have been applied.
- One Store object is the one writer of a daemon; CLI commands open their own for reading,
  deleting and the user's verdicts.
- JSON columns (observation, action, result, details) hold JSON text; rows come back as the
  dataclasses below with those columns decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import aiosqlite

from .errors import NightloopError, UsageError
from .files import private_dir, private_file
from .masking import masked
from .migrations import MIGRATIONS
from .screenshots import Screenshots
from .settings import data_dir

STATUSES = ("running", "done", "gave_up", "step_limit", "stopped", "failed", "interrupted")


def now() -> str:
    """Timestamps are ISO 8601 in UTC with milliseconds, so text order is time order."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Episode:
    task: str
    source: str
    id: int | None = None
    start_url: str | None = None
    status: str = "running"
    final_answer: str | None = None
    error: str | None = None
    policy: str | None = None
    adapter: str | None = None
    started_at: str = field(default_factory=now)
    ended_at: str | None = None
    replay_of: int | None = None        # the episode a replay re-runs
    final_observation: dict | None = None   # the page where it ended without a final action
                                            # (step limit, stopped): where `done` belonged
    n_steps: int = 0


@dataclass
class Step:
    episode_id: int
    index: int
    action: dict | None                 # the parsed action as JSON (None: the policy failed)
    ok: bool
    url: str | None = None
    observation: dict | None = None
    prompt: str | None = None           # what the policy model read, when there is one
    raw_output: str | None = None       # what it wrote, before parsing
    error: str | None = None            # why the action failed, shown to the policy next step
    result: dict | None = None
    started_at: str = field(default_factory=now)
    observe_ms: float | None = None
    policy_ms: float | None = None
    act_ms: float | None = None
    invalid: bool = False               # the policy's output was rejected before the browser
    # What a model-backed policy spent (see policy.Usage); None for other policies.
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_ms: float | None = None
    prefill_ms: float | None = None
    decode_ms: float | None = None
    seed: int | None = None
    # How the action was chosen: None (the policy), "demonstration" (the user did it),
    # "replayed" (from a recording, no model), "fallback" (the policy, during a replay),
    # "user" (a replay paused for the user, e.g. to type a password), "explored" (the policy,
    # its kind of action drawn at random while practising: Settings.explore).
    mode: str | None = None
    target: dict | None = None          # the acted-on element's descriptor (see descriptors.py)
    # What the policy's sampler drew, token by token (agent.policy.Sampled as JSON): the
    # log-probabilities GRPO's ratio starts from; None when no model sampled, the step was
    # explored or a secret was in it.
    sampled: dict | None = None
    # The tab as the policy saw it (screenshots.py): {"file", "width", "height", "box" (the
    # target's, in the image's pixels), "covered", timings} or {"skipped": why}; None: not asked.
    screenshot: dict | None = None


@dataclass
class Reward:
    episode_id: int
    kind: str                           # "user", "ground_truth", "judge", ...
    value: float
    details: dict | None = None
    created_at: str = field(default_factory=now)
    id: int | None = None

    @classmethod
    def verdict(cls, episode_id: int, good: bool, client: str, note: str | None = None,
                **details: Any) -> Reward:
        """The user's word on an episode (popup, `episodes rate`, `review`): a ``user`` reward
        of +1 or -1; the newest one counts."""
        return cls(episode_id, "user", 1.0 if good else -1.0,
                   {"client": client, **({"note": note} if note else {}), **details})


@dataclass
class Adapter:
    """A LoRA adapter the trainer produced, and what became of it."""
    path: str
    sha256: str
    base_model: str                     # the GGUF it was trained on (file name)
    status: str = "candidate"           # candidate | promoted | rejected | retired
    parent: int | None = None           # the adapter serving when it was trained
    config: dict | None = None          # trainer.config.TrainConfig as used
    metrics: dict | None = None         # losses, gate results, …
    data_window: dict | None = None     # which episodes it learned from
    created_at: str = field(default_factory=now)
    promoted_at: str | None = None
    id: int | None = None


@dataclass
class PracticeRule:
    """The user's word that a site (task None: any task on it) or one task on it is safe to
    repeat unattended: nightly practice may re-run it and submit forms there."""
    site: str                           # host[:port], as daemon.tasks.practice.site_of gives it
    task: str | None = None
    created_at: str = field(default_factory=now)
    id: int | None = None


@dataclass
class Night:
    """One learning cycle as it ran. The cycle writes each phase's figures as the phase ends,
    so a night that failed half-way keeps what it finished and says where it stopped
    (trainer/night.py reads these rows back as the morning report)."""
    after_episode: int                  # the night's episodes are those with higher ids
    serving: int | None = None          # the adapter serving when it started (None: base)
    budget: float | None = None         # seconds
    status: str = "running"             # running | finished | failed
    phase: str = "practice"             # the phase running, or the one that failed
    candidate: int | None = None        # the adapter it trained
    promoted: bool | None = None
    decision: str | None = None         # why the candidate was promoted or not, in words
    practice: dict | None = None        # what it practised and how that went
    training: dict | None = None        # what it trained on; steps and losses
    gate: dict | None = None            # trainer.gate.GateOutcome as JSON
    judge: dict | None = None           # episodes judged; what the calibration's refit did
    seconds: dict | None = None         # per phase
    last_episode: int | None = None     # practice's last episode
    error: str | None = None
    started_at: str = field(default_factory=now)
    ended_at: str | None = None
    id: int | None = None


ADAPTER_STATUSES = ("candidate", "promoted", "rejected", "retired")
NIGHT_STATUSES = ("running", "finished", "failed")
_JSON_COLUMNS = {"observation", "action", "result", "details", "target", "config", "metrics",
                 "data_window", "sampled", "final_observation", "screenshot", "practice",
                 "training", "gate", "judge", "seconds"}
_BOOL_COLUMNS = ("ok", "invalid", "promoted")




EPISODE_DERIVED = ("n_steps",)          # Episode's fields the store computes, never stores


def _encode(row: Any) -> dict[str, Any]:
    values = dataclasses.asdict(row)
    for key in _JSON_COLUMNS & values.keys():
        if values[key] is not None:
            values[key] = json.dumps(values[key], ensure_ascii=False)
    return values


def _insert_sql(table: str, row: Any, skip: tuple[str, ...] = ()) -> tuple[str, tuple]:
    """An INSERT of a dataclass row, without its id and `skip` fields: (sql, parameters)."""
    values = {k: v for k, v in _encode(row).items() if k not in ("id", *skip)}
    columns = ", ".join(f'"{k}"' for k in values)
    return (f"INSERT INTO {table} ({columns}) SELECT {', '.join('?' * len(values))}",
            tuple(values.values()))


def _decode(cls: type, row: sqlite3.Row) -> Any:
    values = {key: row[key] for key in row.keys()}
    for key in _JSON_COLUMNS & values.keys():
        if values[key] is not None:
            values[key] = json.loads(values[key])
    for key in _BOOL_COLUMNS:
        if values.get(key) is not None:
            values[key] = bool(values[key])
    return cls(**values)


class Store:
    """Async access to one SQLite file. Use `await Store.open(path)`, then `await close()`."""

    def __init__(self, db: aiosqlite.Connection, path: Path):
        self._db = db
        self.path = path
        self.screenshots = Screenshots(path)
        # One connection, many coroutines: a write never lands inside another's transaction
        # (its commit would end that transaction half-way), nor a transaction inside another.
        self._writing = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str, *, recover: bool = True) -> Store:
        """Open (creating if needed) and migrate the store.

        With `recover`, episodes still marked running are set to interrupted: only the daemon
        opens with recover=True, and a daemon that starts owns no episode yet.
        """
        path = Path(path)
        if not path.parent.exists() or path.parent == data_dir():
            private_dir(path.parent)
        private_file(path)              # before SQLite: its WAL and SHM take the store's mode
        db = await aiosqlite.connect(path)
        store = cls(db, path)
        try:
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA foreign_keys=ON")
            # Deleted and redacted text is overwritten, not left in free pages.
            await db.execute("PRAGMA secure_delete=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            await store._migrate()
        except BaseException as exc:
            await db.close()    # its thread would otherwise keep the process alive
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"{path} is not a usable nightloop database: {exc}") from exc
            raise
        if recover:
            await store.mark_interrupted()
        return store

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- schema ---------------------------------------------------------------------------

    async def _migrate(self) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        async with self._db.execute("SELECT name FROM migrations") as cur:
            applied = {row[0] for row in await cur.fetchall()}
        unknown = applied - {name for name, _ in MIGRATIONS}
        if unknown:
            raise StoreError(f"{self.path} was written by a newer nightloop "
                             f"(unknown migrations: {', '.join(sorted(unknown))})")
        for version, (name, migrate) in enumerate(MIGRATIONS, start=1):
            if name in applied:
                continue
            async with self._transaction():
                await self._db.execute(f"PRAGMA user_version={version}")
                await migrate(self._db)
                await self._db.execute("INSERT INTO migrations VALUES (?, ?)", (name, now()))

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """All or nothing; IMMEDIATE, so no other process writes between our reads and writes,
        and no other coroutine of this one (`_writing`). Inside, write with `_db.execute`.
        Cancelled anywhere (even while BEGIN runs in aiosqlite's thread), it rolls back."""
        async with self._writing:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield
                await self._db.commit()
            except sqlite3.OperationalError as exc:
                raise await self._unwritable(exc) from exc
            except BaseException:
                await self._db.rollback()
                raise

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cur:
            return (await cur.fetchone())[0]

    # -- writes (each commits) ------------------------------------------------------------

    async def _write(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        async with self._writing:
            try:
                cursor = await self._db.execute(sql, params)
                await self._db.commit()
            except sqlite3.OperationalError as exc:
                raise await self._unwritable(exc) from exc
            return cursor

    async def _unwritable(self, exc: sqlite3.OperationalError) -> Exception:
        """What a failed write raises, once it is rolled back: `StoreFull` when the disk (or
        the file size the system allows) took no more, else the error itself."""
        with contextlib.suppress(sqlite3.Error):
            await self._db.rollback()
        if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) not in (sqlite3.SQLITE_FULL,
                                                                 sqlite3.SQLITE_IOERR):
            return exc
        return StoreFull(f"could not write {self.path} ({exc}): is the disk full? Free some "
                         "space (`nightloop store compact`, the screenshots_max_mb setting); "
                         "everything committed before is kept")

    async def _insert(self, table: str, row: Any, *, skip: tuple[str, ...] = (),
                      unless: str = "") -> Any:
        """Insert a dataclass row (without its id and `skip` fields); the row with its id.
        With `unless` (a query), only if it finds no row, in the same statement (so no other
        writer comes between): else None."""
        sql, params = _insert_sql(table, row, skip)
        cursor = await self._write(sql + (f" WHERE NOT EXISTS ({unless})" if unless else ""),
                                   params)
        return dataclasses.replace(row, id=cursor.lastrowid) if cursor.rowcount else None

    async def start_episode(self, episode: Episode) -> Episode:
        return await self._insert("episodes", episode, skip=EPISODE_DERIVED)

    async def add_step(self, step: Step) -> None:
        await self._write(*_insert_sql("steps", step))

    async def import_episode(self, episode: Episode, steps: list[Step],
                             rewards: list[Reward]) -> Episode:
        """An episode recorded in another store (a Ray actor's scratch store), with its steps
        and rewards, stored under a new id in one transaction: all of it or none of it."""
        async with self._transaction():
            cursor = await self._db.execute(*_insert_sql("episodes", episode, EPISODE_DERIVED))
            new = cursor.lastrowid
            for step in steps:
                await self._db.execute(*_insert_sql("steps",
                                                    dataclasses.replace(step, episode_id=new)))
            for reward in rewards:
                await self._db.execute(*_insert_sql("rewards",
                                                    dataclasses.replace(reward, episode_id=new)))
        return dataclasses.replace(episode, id=new)

    async def finish_episode(self, episode_id: int, status: str, *,
                             final_answer: str | None = None, error: str | None = None,
                             final_observation: dict | None = None) -> None:
        if status not in STATUSES or status == "running":
            raise ValueError(f"not a final status: {status!r}")
        page = json.dumps(final_observation, ensure_ascii=False) if final_observation else None
        await self._write("UPDATE episodes SET status=?, final_answer=?, error=?, ended_at=?, "
                          "final_observation=? WHERE id=?",
                          (status, final_answer, error, now(), page, episode_id))

    async def add_reward(self, reward: Reward) -> Reward:
        return await self._insert("rewards", reward)

    async def mark_interrupted(self) -> int:
        cursor = await self._write(
            "UPDATE episodes SET status='interrupted', ended_at=? WHERE status='running'", (now(),))
        return cursor.rowcount

    async def redact(self, episode_id: int, secret: str, mask: str) -> None:
        """Replace `secret` by `mask` in everything the episode stored: its task and answer and
        every text column of its steps (the secret as written and JSON-escaped), and inside the
        JSON ones (page, action, result) in their string values only, so they stay JSON however
        short the secret (a short one is masked only where it stands alone: masking.py). A
        step whose prompt or output changed loses its sampler record: its token ids spell the
        secret, or its log-probs are of a prompt no longer stored (GRPO would score them
        against one nobody sampled)."""
        forms = {secret, json.dumps(secret, ensure_ascii=False)[1:-1]}

        def text(value: str | None) -> str | None:
            for form in forms:
                value = masked(value, form, mask) if value else value
            return value

        def tree(value: str | None) -> str | None:
            if not value:
                return value
            try:
                return json.dumps(_replaced(json.loads(value), secret, mask), ensure_ascii=False)
            except json.JSONDecodeError:
                return text(value)

        async with self._writing:     # its updates are one transaction, committed below
            async with self._db.execute(
                    'SELECT "index", prompt, raw_output, error, observation, action, result '
                    "FROM steps WHERE episode_id=?", (episode_id,)) as cursor:
                rows = await cursor.fetchall()
            for index, *old in rows:
                new = [text(v) for v in old[:3]] + [tree(v) for v in old[3:]]
                if new != old:     # a sampler record is of the prompt and output it drew from
                    await self._db.execute(
                        "UPDATE steps SET prompt=?, raw_output=?, error=?, observation=?, "
                        "action=?, result=?, sampled=CASE WHEN ? THEN NULL ELSE sampled END "
                        'WHERE episode_id=? AND "index"=?',
                        (*new, new[:2] != old[:2], episode_id, index))
            async with self._db.execute("SELECT task, final_answer, final_observation "
                                        "FROM episodes WHERE id=?", (episode_id,)) as cursor:
                row = await cursor.fetchone()
            if row:
                await self._db.execute(
                    "UPDATE episodes SET task=?, final_answer=?, final_observation=? WHERE id=?",
                    (text(row[0]), text(row[1]), tree(row[2]), episode_id))
            try:
                await self._db.commit()
            except sqlite3.OperationalError as exc:
                raise await self._unwritable(exc) from exc
        await self._purge_wal()

    async def _purge_wal(self, tries: int = 20) -> None:
        """Copy the WAL into the database and empty it, so old versions of rows are gone
        (tried again while another statement of this connection is still reading)."""
        for attempt in range(tries):
            try:
                async with self._writing:
                    await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == tries - 1:
                    raise
                await asyncio.sleep(0.05)

    async def delete_episodes(self, ids: list[int] | None = None, *,
                              before: str | None = None, purge: bool = True) -> int:
        """Delete episodes (with their steps, rewards and screenshots) by id, or started before
        `before`; how many went. With `purge` (unless the file itself is about to go, as a Ray
        actor's scratch store is), no old version of their rows stays in the WAL."""
        if ids:
            where, params = f"id IN ({', '.join('?' * len(ids))})", tuple(ids)
        elif before:
            where, params = "started_at < ?", (before,)
        else:
            raise UsageError("say which episodes to delete")
        async with self._db.execute(f"SELECT id FROM episodes WHERE {where}", params) as cur:
            gone = [row[0] for row in await cur.fetchall()]
        await self._write(f"DELETE FROM episodes WHERE {where}", params)
        if purge:
            await self._purge_wal()
        self.screenshots.delete(gone)
        return len(gone)

    # -- reads ----------------------------------------------------------------------------

    async def _fetch(self, cls: type, sql: str, params: Any = ()) -> list[Any]:
        async with self._db.execute(sql, params) as cur:
            return [_decode(cls, row) for row in await cur.fetchall()]

    _EPISODE_SELECT = ("SELECT e.*, (SELECT count(*) FROM steps s WHERE s.episode_id = e.id) "
                       "AS n_steps FROM episodes e")

    async def episodes(self, limit: int | None = None, before: int | None = None
                       ) -> list[Episode]:
        """Newest first; at most `limit`, those with ids below `before` (the next page)."""
        return await self._fetch(Episode, self._EPISODE_SELECT + " WHERE e.id < coalesce(?, "
                                 "e.id + 1) ORDER BY e.id DESC LIMIT ?",
                                 (before, -1 if limit is None else limit))

    async def episodes_after(self, after: int, upto: int | None = None,
                             sources: tuple[str, ...] = ()) -> list[Episode]:
        """The episodes with ids above `after` (up to `upto`; of `sources`, when given),
        oldest first: a night's."""
        where = " AND e.source IN (%s)" % ", ".join("?" * len(sources)) if sources else ""
        return await self._fetch(Episode, self._EPISODE_SELECT + " WHERE e.id > ? AND "
                                 "e.id <= coalesce(?, e.id)" + where + " ORDER BY e.id",
                                 (after, upto, *sources))

    async def demonstrations(self) -> list[Episode]:
        """The user's demonstrations that they said worked (a user reward above 0), newest
        first."""
        return await self._fetch(Episode, self._EPISODE_SELECT + (
            " WHERE e.source = 'demonstration' AND e.status = 'done' AND EXISTS (SELECT 1 "
            "FROM rewards r WHERE r.episode_id = e.id AND r.kind = 'user' AND r.value > 0) "
            "ORDER BY e.id DESC"))

    async def episode(self, episode_id: int) -> Episode | None:
        rows = await self._fetch(Episode, self._EPISODE_SELECT + " WHERE e.id = ?", (episode_id,))
        return rows[0] if rows else None

    async def steps(self, episode_id: int) -> list[Step]:
        return await self._fetch(Step, 'SELECT * FROM steps WHERE episode_id = ? ORDER BY "index"',
                                 (episode_id,))

    async def rewards(self, episode_id: int) -> list[Reward]:
        return await self._fetch(Reward, "SELECT * FROM rewards WHERE episode_id = ? ORDER BY id",
                                 (episode_id,))

    async def unrated(self, *, sources: tuple[str, ...] = (), since: str | None = None,
                      task: str | None = None, limit: int | None = None) -> list[Episode]:
        """Finished episodes with no verdict of the user's (no ``user`` reward), newest first;
        only those of `sources` (all when empty), started at or after `since`, whose task
        contains `task`; at most `limit`."""
        where = ["e.status != 'running'", "NOT EXISTS (SELECT 1 FROM rewards r WHERE "
                 "r.episode_id = e.id AND r.kind = 'user')"]
        params: list[Any] = list(sources)
        if sources:
            where.append(f"e.source IN ({', '.join('?' * len(sources))})")
        for clause, value in (("e.started_at >= ?", since),
                              ("instr(lower(e.task), lower(?)) > 0", task)):
            if value:
                where.append(clause)
                params.append(value)
        return await self._fetch(Episode, self._EPISODE_SELECT + " WHERE " + " AND ".join(where)
                                 + " ORDER BY e.id DESC LIMIT ?",
                                 (*params, -1 if limit is None else limit))

    async def unjudged(self, after: int = 0, limit: int | None = None) -> list[int]:
        """Ids above `after` of finished episodes the judge has yet to score, oldest first
        (at most `limit`): those without a ``judge`` reward and without ground truth or a
        replay's verdict (they need no judge)."""
        async with self._db.execute(
                "SELECT id FROM episodes e WHERE id > ? AND status != 'running' AND NOT EXISTS "
                "(SELECT 1 FROM rewards r WHERE r.episode_id = e.id AND r.kind IN "
                "('judge', 'ground_truth', 'replay')) ORDER BY id LIMIT ?",
                (after, -1 if limit is None else limit)) as cur:
            return [row[0] for row in await cur.fetchall()]

    async def unjudged_with_truth(self, after: int = 0) -> list[int]:
        """Ids after `after` of episodes with ground truth and no ``judge`` reward, oldest
        first: what the judge scores to measure itself (the calibration's refit)."""
        async with self._db.execute(
                "SELECT id FROM episodes e WHERE id > ? AND status != 'running' AND EXISTS "
                "(SELECT 1 FROM rewards r WHERE r.episode_id = e.id AND r.kind = 'ground_truth')"
                " AND NOT EXISTS (SELECT 1 FROM rewards r WHERE r.episode_id = e.id AND r.kind "
                "= 'judge') ORDER BY id", (after,)) as cur:
            return [row[0] for row in await cur.fetchall()]

    async def judged_with_truth(self) -> list[tuple[str | None, dict, float]]:
        """(start_url, details of the newest ``judge`` reward, newest ground truth) of every
        episode that has both, oldest first: the judge's record against the truth."""
        async with self._db.execute(
                "SELECT e.start_url, j.details, t.value FROM episodes e "
                "JOIN rewards j ON j.id = (SELECT max(id) FROM rewards WHERE episode_id = e.id "
                "AND kind = 'judge') "
                "JOIN rewards t ON t.id = (SELECT max(id) FROM rewards WHERE episode_id = e.id "
                "AND kind = 'ground_truth') ORDER BY e.id") as cur:
            return [(row[0], json.loads(row[1]) if row[1] else {}, row[2])
                    for row in await cur.fetchall()]

    async def judged(self, exclude: int | None = None,
                     limit: int = 1000) -> list[tuple[str | None, dict]]:
        """(start_url, details) of the newest `judge` reward of each other episode, newest
        first: what the judge scored before, for a template's baseline."""
        async with self._db.execute(
                "SELECT e.start_url, r.details FROM rewards r JOIN episodes e ON e.id = "
                "r.episode_id WHERE r.kind = 'judge' AND r.episode_id IS NOT ? AND r.id = "
                "(SELECT max(id) FROM rewards WHERE episode_id = r.episode_id AND kind = "
                "'judge') ORDER BY r.id DESC LIMIT ?", (exclude, limit)) as cur:
            return [(row[0], json.loads(row[1]) if row[1] else {})
                    for row in await cur.fetchall()]

    async def tasks(self, exclude: int | None = None,
                    limit: int = 5000) -> list[tuple[str, str | None]]:
        """(task, start_url) of the newest episodes, newest first, `exclude` left out."""
        async with self._db.execute(
                "SELECT task, start_url FROM episodes WHERE id IS NOT ? ORDER BY id DESC LIMIT ?",
                (exclude, limit)) as cur:
            return [(row[0], row[1]) for row in await cur.fetchall()]

    # -- adapters -------------------------------------------------------------------------

    async def add_adapter(self, adapter: Adapter) -> Adapter:
        return await self._insert("adapters", adapter)

    async def add_first_adapter(self, adapter: Adapter) -> Adapter | None:
        """Add `adapter` to a store that has never had one; None (nothing added) when it has
        had one. Of two processes trying at once, one adds it."""
        return await self._insert("adapters", adapter, unless="SELECT 1 FROM adapters")

    async def adapters(self) -> list[Adapter]:
        """Newest first."""
        return await self._fetch(Adapter, "SELECT * FROM adapters ORDER BY id DESC")

    async def adapter(self, adapter_id: int) -> Adapter | None:
        rows = await self._fetch(Adapter, "SELECT * FROM adapters WHERE id = ?", (adapter_id,))
        return rows[0] if rows else None

    async def promoted_adapter(self) -> Adapter | None:
        rows = await self._fetch(Adapter, "SELECT * FROM adapters WHERE status = 'promoted' "
                                          "ORDER BY promoted_at DESC LIMIT 1")
        return rows[0] if rows else None

    async def set_adapter_status(self, adapter_id: int, status: str, *,
                                 metrics: dict | None = None) -> None:
        """Record a decision; promoting one adapter retires the one serving before."""
        if status not in ADAPTER_STATUSES:
            raise ValueError(f"not an adapter status: {status!r}")
        async with self._transaction():
            await self._set_adapter_status(adapter_id, status, metrics)

    async def rollback_adapter(self, expected: int | None = None
                               ) -> tuple[Adapter, Adapter | None]:
        """Retire the serving adapter and promote its parent, in one transaction: (the retired
        one, the one serving now; None: the base model). UsageError when none is promoted, or
        when `expected` is given and another one serves."""
        async with self._transaction():
            serving = await self.promoted_adapter()
            if serving is None:
                raise UsageError("no adapter is promoted: the base model serves")
            if expected is not None and serving.id != expected:
                raise UsageError(f"adapter {expected} no longer serves (adapter {serving.id} "
                                 "does): nothing was rolled back")
            await self._set_adapter_status(serving.id, "retired")
            if serving.parent:
                await self._set_adapter_status(serving.parent, "promoted")
        return await self.adapter(serving.id), \
            await self.adapter(serving.parent) if serving.parent else None

    async def _set_adapter_status(self, adapter_id: int, status: str,
                                  metrics: dict | None = None) -> None:
        """Inside a transaction: the status change and what it implies."""
        if status == "promoted":
            await self._db.execute("UPDATE adapters SET status = 'retired' "
                                   "WHERE status = 'promoted' AND id != ?", (adapter_id,))
        await self._db.execute(
            "UPDATE adapters SET status = ?, promoted_at = CASE WHEN ? = 'promoted' THEN ? "
            "ELSE promoted_at END, metrics = coalesce(?, metrics) WHERE id = ?",
            (status, status, now(), json.dumps(metrics) if metrics is not None else None,
             adapter_id))

    # -- nights -----------------------------------------------------------------------------

    async def start_night(self, night: Night) -> Night:
        return await self._insert("nights", night)

    async def update_night(self, night_id: int, **changes: Any) -> None:
        """Set some of a night's fields (Night's names; JSON fields as Python values)."""
        unknown = changes.keys() - ({f.name for f in dataclasses.fields(Night)} - {"id"})
        if unknown:
            raise ValueError(f"not a night's field: {', '.join(sorted(unknown))}")
        if changes.get("status", "running") not in NIGHT_STATUSES:
            raise ValueError(f"not a night's status: {changes['status']!r}")
        values = {k: json.dumps(v, ensure_ascii=False) if k in _JSON_COLUMNS and v is not None
                  else v for k, v in changes.items()}
        await self._write(f"UPDATE nights SET {', '.join(f'{k} = ?' for k in values)} "
                          "WHERE id = ?", (*values.values(), night_id))

    async def nights(self, limit: int | None = None) -> list[Night]:
        """Newest first."""
        return await self._fetch(Night, "SELECT * FROM nights ORDER BY id DESC LIMIT ?",
                                 (-1 if limit is None else limit,))

    async def night(self, night_id: int) -> Night | None:
        rows = await self._fetch(Night, "SELECT * FROM nights WHERE id = ?", (night_id,))
        return rows[0] if rows else None

    async def allow_practice(self, rule: PracticeRule) -> PracticeRule:
        """Record the rule (idempotent); the stored row."""
        await self._write("INSERT OR IGNORE INTO practice_rules (site, task, created_at) "
                          "VALUES (?, ?, ?)", (rule.site, rule.task, rule.created_at))
        rows = await self._fetch(PracticeRule, "SELECT * FROM practice_rules WHERE site = ? AND "
                                 "coalesce(task, '') = coalesce(?, '')", (rule.site, rule.task))
        return rows[0]

    async def forbid_practice(self, site: str, task: str | None = None) -> int:
        """Remove the rule for `site` (task None: the whole-site rule); how many went."""
        cursor = await self._write("DELETE FROM practice_rules WHERE site = ? AND "
                                   "coalesce(task, '') = coalesce(?, '')", (site, task))
        return cursor.rowcount

    async def practice_rules(self) -> list[PracticeRule]:
        return await self._fetch(PracticeRule, "SELECT * FROM practice_rules ORDER BY site, task")

    async def counts(self) -> dict[str, int]:
        """Number of episodes per status (statuses with none are left out)."""
        async with self._db.execute(
                "SELECT status, count(*) FROM episodes GROUP BY status") as cur:
            return {status: n for status, n in await cur.fetchall()}


class StoreError(NightloopError):
    """The database file cannot be used (corrupt, not SQLite, or from a newer version)."""


class StoreFull(StoreError):
    """A write did not fit: the disk is full (or the file grew past what the system allows)."""


def _replaced(value: Any, secret: str, mask: str) -> Any:
    """`value` (decoded JSON) with `secret` masked in every string in it."""
    if isinstance(value, str):
        return masked(value, secret, mask)
    if isinstance(value, list):
        return [_replaced(v, secret, mask) for v in value]
    if isinstance(value, dict):
        return {k: _replaced(v, secret, mask) for k, v in value.items()}
    return value
