"""`nightloop store`: the store's size, backups, restores, compaction and screenshot retention."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from daemon.core import maintenance
from daemon.core.errors import NightloopError
from daemon.core.maintenance import MB

from .common import json_option, owning_daemon, print_json, run_coro, setting_options, settings_from


def _mb(n: float) -> str:
    return f"{n / MB:,.1f} MB"


@click.group("store")
def store_group() -> None:
    """The store over months: how big it is, backups and restores, compaction, and how long
    screenshots are kept (the screenshots_keep_days and screenshots_max_mb settings, applied by
    the daemon each day and by `store compact`)."""


@store_group.command("size")
@setting_options("db")
@json_option
def store_size(db: str | None, as_json: bool) -> None:
    """What the store and its screenshots take on disk, and per episode.

    Example: nightloop store size
    """
    path = settings_from(db=db).db_path
    found = maintenance.sizes(path)
    if as_json:
        print_json({"db": str(path), "store_bytes": found.store,
                    "screenshot_bytes": found.screenshots, "episodes": found.episodes,
                    "bytes_per_episode": round(found.per_episode())})
        return
    click.echo(f"{path}: {_mb(found.store)} + screenshots {_mb(found.screenshots)} for "
               f"{found.episodes:,} episodes ({found.per_episode() / 1024:,.1f} kB each)")


@store_group.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-screenshots", is_flag=True,
              help="Leave the screenshots out (they are copied beside FILE otherwise).")
@setting_options("db")
def store_backup(file: Path, no_screenshots: bool, db: str | None) -> None:
    """Copy the store to FILE (0600), consistently, even while the daemon works on it (SQLite's
    online backup); its screenshots go to FILE-screenshots/.

    Example: nightloop store backup ~/nightloop-backup.db
    """
    found = maintenance.backup(settings_from(db=db).db_path, file,
                               screenshots=not no_screenshots)
    click.echo(f"backed up {found.episodes:,} episodes to {file} ({_mb(found.store)}"
               + ("" if no_screenshots else f", screenshots {_mb(found.screenshots)}") + ")")


@store_group.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask first.")
@setting_options("db", "port")
def store_restore(file: Path, yes: bool, db: str | None, port: int | None) -> None:
    """Replace the store by the backup FILE (checked first). The daemon must be stopped; the
    store it replaces is kept as STORE.before-restore.

    Example: nightloop store restore ~/nightloop-backup.db
    """
    settings = settings_from(db=db, port=port)

    async def serving() -> bool:
        async with owning_daemon(settings.db_path, settings.port) as daemon:
            return daemon is not None
    if run_coro(serving()):
        raise NightloopError(f"a daemon is using {settings.db_path}: stop it first "
                             "(Ctrl-C where it runs), then restore")
    maintenance.check(file)
    if not yes:
        click.confirm(f"replace {settings.db_path} by {file}?", abort=True, err=True)
    kept = maintenance.restore(file, settings.db_path)
    click.echo(f"restored {settings.db_path} from {file}"
               + (f"; the store it replaced is {kept}" if kept.exists() else ""))


@store_group.command("compact")
@setting_options("db", "screenshots_keep_days", "screenshots_max_mb")
def store_compact(**flags: Any) -> None:
    """Apply the screenshot retention settings, fold the WAL into the store and VACUUM it.

    Example: nightloop store compact
    """
    settings = settings_from(**flags)
    folders, freed = maintenance.prune_screenshots(
        settings.db_path, keep_days=settings.screenshots_keep_days,
        max_mb=settings.screenshots_max_mb)
    before, after = maintenance.compact(settings.db_path)
    click.echo(f"store {_mb(before)} → {_mb(after)}; screenshots of {folders} episodes "
               f"deleted ({_mb(freed)})")
