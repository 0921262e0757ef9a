"""The store's schema, as named migrations applied in order (`Store.open` runs the pending ones
in one transaction each and records them in the ``migrations`` table).

Add a migration by appending a function to `MIGRATIONS`; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from typing import Awaitable, Callable

import aiosqlite


async def _migration_1_initial(db: aiosqlite.Connection) -> None:
    await _script(db, """
        CREATE TABLE episodes (
            id INTEGER PRIMARY KEY,
            task TEXT NOT NULL,
            source TEXT NOT NULL,
            start_url TEXT,
            status TEXT NOT NULL,
            final_answer TEXT,
            error TEXT,
            policy TEXT,
            adapter TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT
        );
        CREATE INDEX episodes_started ON episodes(started_at);
        CREATE TABLE steps (
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            "index" INTEGER NOT NULL,
            url TEXT,
            observation TEXT,
            prompt TEXT,
            raw_output TEXT,
            action TEXT,
            ok INTEGER NOT NULL,
            error TEXT,
            result TEXT,
            started_at TEXT NOT NULL,
            observe_ms REAL,
            policy_ms REAL,
            act_ms REAL,
            PRIMARY KEY (episode_id, "index")
        );
        CREATE TABLE rewards (
            id INTEGER PRIMARY KEY,
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            value REAL NOT NULL,
            details TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX rewards_episode ON rewards(episode_id);
    """)


async def _migration_2_model_usage(db: aiosqlite.Connection) -> None:
    await _script(db, """
        ALTER TABLE steps ADD COLUMN invalid INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE steps ADD COLUMN prompt_tokens INTEGER;
        ALTER TABLE steps ADD COLUMN cached_tokens INTEGER;
        ALTER TABLE steps ADD COLUMN completion_tokens INTEGER;
        ALTER TABLE steps ADD COLUMN prompt_ms REAL;
        ALTER TABLE steps ADD COLUMN prefill_ms REAL;
        ALTER TABLE steps ADD COLUMN decode_ms REAL;
        ALTER TABLE steps ADD COLUMN seed INTEGER;
    """)


async def _migration_3_demonstrations(db: aiosqlite.Connection) -> None:
    await _script(db, """
        ALTER TABLE episodes ADD COLUMN replay_of INTEGER REFERENCES episodes(id)
            ON DELETE SET NULL;
        ALTER TABLE steps ADD COLUMN target TEXT;
        ALTER TABLE steps ADD COLUMN mode TEXT;
    """)


async def _migration_4_adapters(db: aiosqlite.Connection) -> None:
    await _script(db, """
        CREATE TABLE adapters (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            base_model TEXT NOT NULL,
            status TEXT NOT NULL,
            parent INTEGER REFERENCES adapters(id),
            config TEXT,
            metrics TEXT,
            data_window TEXT,
            created_at TEXT NOT NULL,
            promoted_at TEXT
        );
    """)


async def _migration_5_practice_rules(db: aiosqlite.Connection) -> None:
    await _script(db, """
        CREATE TABLE practice_rules (
            id INTEGER PRIMARY KEY,
            site TEXT NOT NULL,
            task TEXT,
            created_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX practice_rules_key ON practice_rules (site, coalesce(task, ''));
    """)


async def _migration_6_sampled(db: aiosqlite.Connection) -> None:
    await _script(db, """
        ALTER TABLE steps ADD COLUMN sampled TEXT;
    """)


async def _migration_7_final_observation(db: aiosqlite.Connection) -> None:
    await _script(db, """
        ALTER TABLE episodes ADD COLUMN final_observation TEXT;
    """)


async def _migration_8_screenshots(db: aiosqlite.Connection) -> None:
    await _script(db, """
        ALTER TABLE steps ADD COLUMN screenshot TEXT;
    """)


async def _migration_9_nights(db: aiosqlite.Connection) -> None:
    await _script(db, """
        CREATE TABLE nights (
            id INTEGER PRIMARY KEY,
            after_episode INTEGER NOT NULL,
            serving INTEGER REFERENCES adapters(id),
            budget REAL,
            status TEXT NOT NULL,
            phase TEXT NOT NULL,
            candidate INTEGER REFERENCES adapters(id),
            promoted INTEGER,
            decision TEXT,
            practice TEXT,
            training TEXT,
            gate TEXT,
            judge TEXT,
            seconds TEXT,
            last_episode INTEGER,
            error TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT
        );
    """)


async def _migration_10_status_index(db: aiosqlite.Connection) -> None:
    await _script(db, """
        CREATE INDEX episodes_status ON episodes(status);
    """)


async def _script(db: aiosqlite.Connection, script: str) -> None:
    """Run a multi-statement script inside the caller's transaction (executescript commits)."""
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            await db.execute(current)
            current = ""


MIGRATIONS: list[tuple[str, Callable[[aiosqlite.Connection], Awaitable[None]]]] = [
    ("initial", _migration_1_initial),
    ("model_usage", _migration_2_model_usage),
    ("demonstrations", _migration_3_demonstrations),
    ("adapters", _migration_4_adapters),
    ("practice_rules", _migration_5_practice_rules),
    ("sampled", _migration_6_sampled),
    ("final_observation", _migration_7_final_observation),
    ("screenshots", _migration_8_screenshots),
    ("nights", _migration_9_nights),
    ("status_index", _migration_10_status_index),
]
SCHEMA_VERSION = len(MIGRATIONS)
