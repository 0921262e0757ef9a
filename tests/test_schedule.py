"""When the nightly learning cycle runs, and what `nightloop schedule` says about it."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from conftest import nightloop

from daemon.core.settings import ConfigError
from daemon.service.schedule import next_run, parse_at

DAY = datetime(2026, 11, 22)


def at(hour: int, minute: int = 0, day: int = 22) -> datetime:
    return DAY.replace(day=day, hour=hour, minute=minute)


@pytest.mark.parametrize("now, last, expected", [
    (at(2), None, at(3)),                       # later today
    (at(4), None, at(3)),                       # today's window is still open: due now
    (at(4), at(3, 10), at(3, day=23)),          # already ran in it: tomorrow
    (at(10), None, at(3, day=23)),              # the window closed: tomorrow
    (at(1), at(3, 5, day=21), at(3)),           # yesterday's run does not count for today
])
def test_the_next_run_is_the_next_open_window_not_yet_run(now, last, expected):
    assert next_run(now, "03:00", last) == expected


def test_bad_times_are_refused_and_empty_means_never():
    assert next_run(at(1), "") is None and parse_at("23:59") == (23, 59)
    for bad in ("3pm", "24:00", "7:5"):
        with pytest.raises(ConfigError, match="train_at must be HH:MM"):
            parse_at(bad)


@pytest.mark.process
def test_schedule_shows_the_next_run_and_the_last_result(home):
    state = home / "data" / "nightloop" / "schedule.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"started": "2026-11-22T03:00:00", "ended": "2026-11-22T03:40:00",
                                 "exit_status": 0, "summary": "adapter 4: promoted"}))
    shown = json.loads(nightloop("schedule", "--train-at", "03:00", "--json").stdout)
    assert shown["train_at"] == "03:00" and shown["last"]["summary"] == "adapter 4: promoted"
    assert shown["next_run"].endswith("T03:00")
    text = nightloop("schedule").stdout
    assert "never (set train_at" in text and "adapter 4: promoted" in text
    bad = nightloop("daemon", "--train-at", "3pm", check=False)
    assert bad.returncode == 1 and "train_at must be HH:MM" in bad.stderr
