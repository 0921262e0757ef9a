"""The nightly learning cycle: when it runs next, and starting it.

Contract: with `train_at` set ("HH:MM", local time; empty: off) the daemon starts `nightloop
train --now --budget <train_budget>` as a child process once a day from that time on, as soon
as no episode has run for `train_idle` minutes (it checks every minute, for up to 6 hours).
The child trains, gates, promotes and tells the daemon to switch itself; its summary line and
exit status go to ``schedule.json`` in the data dir, which `nightloop schedule` shows with the
next run. A failing cycle leaves the serving adapter as it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from daemon.core.settings import ConfigError, Settings, data_dir

log = logging.getLogger(__name__)
WINDOW = timedelta(hours=6)
CHECK_SECONDS = 60


def state_file() -> Path:
    return data_dir() / "schedule.json"


def parse_at(at: str) -> tuple[int, int] | None:
    """"HH:MM" → (hour, minute); "" → None; ConfigError otherwise."""
    if not at:
        return None
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", at.strip())
    if not match:
        raise ConfigError(f"train_at must be HH:MM (24-hour) or empty, got {at!r}")
    return int(match.group(1)), int(match.group(2))


def next_run(now: datetime, at: str, last_run: datetime | None = None) -> datetime | None:
    """The start of the next window: today's `at` if it is still open and has not run, else
    tomorrow's."""
    parsed = parse_at(at)
    if parsed is None:
        return None
    today = now.replace(hour=parsed[0], minute=parsed[1], second=0, microsecond=0)
    for start in (today - timedelta(days=1), today, today + timedelta(days=1)):
        ran = last_run is not None and last_run >= start
        if not ran and now < start + WINDOW:
            return start
    return today + timedelta(days=1)


def upcoming(settings: Settings, now: datetime | None = None) -> datetime | None:
    """When the daemon's next cycle may start: the next window after the last run on record
    (None: `train_at` is off)."""
    last = last_result()
    return next_run(now or datetime.now(), settings.train_at,
                    datetime.fromisoformat(last["started"]) if last else None)


def last_result() -> dict | None:
    try:
        return json.loads(state_file().read_text())
    except (FileNotFoundError, ValueError):
        return None


async def nightly(settings: Settings, idle_since: Callable[[], float]) -> None:
    """Run forever inside the daemon: start the cycle in each window once idle long enough.
    `idle_since()`: time.monotonic() of the last episode's end (now while one runs)."""
    parse_at(settings.train_at)
    while True:
        due = upcoming(settings)
        if due and datetime.now() >= due and \
                time.monotonic() - idle_since() >= settings.train_idle * 60:
            await run_once(settings)
        await asyncio.sleep(CHECK_SECONDS)


async def run_once(settings: Settings) -> dict:
    started = datetime.now()
    log.info("nightly learning cycle starting (budget %g min)", settings.train_budget)
    args = [str(Path(sys.executable).parent / "nightloop"), "train", "--now", "--budget",
            str(settings.train_budget), "--db", str(settings.db_path), "--port",
            str(settings.port)]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    lines = (out.decode() + err.decode()).strip().splitlines()
    result = {"started": started.isoformat(timespec="seconds"),
              "ended": datetime.now().isoformat(timespec="seconds"),
              "exit_status": proc.returncode, "summary": lines[-1] if lines else ""}
    state_file().parent.mkdir(parents=True, exist_ok=True)
    state_file().write_text(json.dumps(result, indent=1))
    log.info("nightly learning cycle ended: %s", result["summary"])
    return result
