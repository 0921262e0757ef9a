"""Keeping a store healthy over months: its size, backups, restores, compaction and how long
screenshots are kept.

Contract:
- `backup` copies a store with SQLite's online backup API: one consistent snapshot even while
  a daemon writes to it (WAL), into a 0600 file; the screenshots go beside the copy, in the
  same layout (``<copy>-screenshots/``), unless left out.
- `restore` replaces a store no daemon is using by a backup, after checking that the backup is
  a sound nightloop store (`integrity_check`, its migrations); the store it replaces is kept
  beside it as ``<store>.before-restore`` until the next restore.
- `compact` VACUUMs the store and checkpoints its WAL into it (the space of deleted rows back
  to the disk).
- `prune_screenshots` deletes whole episodes' screenshot folders, oldest first, past an age
  or beyond a total size; the episodes themselves stay (their report says the picture is gone).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import MissingFile, NightloopError
from .files import private_file
from .migrations import MIGRATIONS
from .screenshots import Screenshots

MB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    store: int                  # bytes: the file, its WAL and SHM
    screenshots: int
    episodes: int

    @property
    def total(self) -> int:
        return self.store + self.screenshots

    def per_episode(self) -> float:
        return self.total / self.episodes if self.episodes else 0.0


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) \
        if folder.exists() else 0


def sizes(db: Path) -> Sizes:
    """What the store at `db` takes on disk (its episodes counted without opening a Store)."""
    store = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")
                if p.is_file() and p.name in (db.name, f"{db.name}-wal", f"{db.name}-shm"))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        episodes = conn.execute("SELECT count(*) FROM episodes").fetchone()[0]
    return Sizes(store, _tree_bytes(Screenshots(db).root), episodes)


def backup(db: Path, dest: Path, *, screenshots: bool = True) -> Sizes:
    """A consistent copy of the store at `db` (and its screenshots) at `dest`, 0600."""
    if not db.exists():
        raise MissingFile(f"there is no store at {db}")
    if dest.resolve() == db.resolve():
        raise NightloopError("a backup cannot overwrite the store it copies")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    private_file(partial)
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    target = sqlite3.connect(partial)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    os.replace(partial, dest)
    if screenshots and Screenshots(db).root.exists():
        copy = Screenshots(dest).root
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(Screenshots(db).root, copy)
    return sizes(dest)


def check(db: Path) -> None:
    """NightloopError unless `db` is a sound nightloop store of a version we know."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            applied = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    except sqlite3.DatabaseError as exc:
        raise NightloopError(f"{db} is not a nightloop store: {exc}") from None
    if verdict != "ok":
        raise NightloopError(f"{db} is damaged (integrity_check: {verdict})")
    unknown = applied - {name for name, _ in MIGRATIONS}
    if unknown:
        raise NightloopError(f"{db} was written by a newer nightloop (unknown migrations: "
                             f"{', '.join(sorted(unknown))})")


def restore(backup_file: Path, db: Path) -> Path:
    """Replace the store at `db` by `backup_file` (with its screenshots); where the replaced
    store is kept (nothing there when there was none). The caller makes sure no daemon uses
    `db`."""
    if not backup_file.exists():
        raise MissingFile(f"there is no backup at {backup_file}")
    check(backup_file)
    kept = db.with_name(db.name + ".before-restore")
    if db.exists():
        backup(db, kept)
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    backup(backup_file, db, screenshots=False)
    shutil.rmtree(Screenshots(db).root, ignore_errors=True)
    if Screenshots(backup_file).root.exists():
        shutil.copytree(Screenshots(backup_file).root, Screenshots(db).root)
    return kept


def compact(db: Path) -> tuple[int, int]:
    """VACUUM the store and fold its WAL into it: (bytes before, bytes after)."""
    before = sizes(db).store
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            conn.execute("VACUUM")                       # in WAL mode, into the WAL:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")   # ... then into the file
        except sqlite3.OperationalError as exc:
            raise NightloopError(f"cannot compact {db} now ({exc}): is a long episode or a "
                                 "night writing to it? Try again when it is idle") from None
    return before, sizes(db).store


def prune_screenshots(db: Path, *, keep_days: int = 0, max_mb: int = 0,
                      now: float | None = None) -> tuple[int, int]:
    """Delete whole episodes' screenshot folders, oldest first (by episode id), those older
    than `keep_days` and then as many as it takes to fit `max_mb` (0: no limit); (folders
    deleted, bytes freed)."""
    root = Screenshots(db).root
    if not root.exists():
        return 0, 0
    folders = sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()),
                     key=lambda p: int(p.name))
    sized = [(p, _tree_bytes(p), p.stat().st_mtime) for p in folders]
    total = sum(size for _, size, _ in sized)
    cutoff = (now or time.time()) - keep_days * 86400
    deleted = freed = 0
    for folder, size, mtime in sized:
        too_old = keep_days and mtime < cutoff
        too_big = max_mb and total - freed > max_mb * MB
        if not (too_old or too_big):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        deleted, freed = deleted + 1, freed + size
    return deleted, freed
