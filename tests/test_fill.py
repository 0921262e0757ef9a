"""Typing into inputs that take a format of their own: a date or a time written as people write
it (and as tasks say it: "Enter 10/20/2017 as the date") is what the input receives, in the real
extension."""

from __future__ import annotations

import json

import pytest
from conftest import follow, nightloop

pytestmark = pytest.mark.browser


def steps_of(daemon_proc, pages_url, script: str) -> list[dict]:
    episode = follow("run", *daemon_proc.args(), "--url", f"{pages_url}/dates.html", script)
    return json.loads(nightloop("episodes", "show", str(episode["id"]), "--json",
                                "--db", str(daemon_proc.db)).stdout)["steps"]


def values(step: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in step["observation"]["elements"]}


@pytest.mark.parametrize("day, time, expected", [
    ("10/20/2017", "7:55 PM", ("2017-10-20", "19:55")),       # the browser is en-US
    ("2017-10-20", "07:55", ("2017-10-20", "07:55")),
    ("3/4/2019", "12:05 am", ("2019-03-04", "00:05")),
    ("2019/3/4", "12:05 p.m.", ("2019-03-04", "12:05")),
])
def test_a_date_and_a_time_as_people_write_them_fill_their_inputs(
        browser, daemon_proc, pages_url, day, time, expected):
    steps = steps_of(daemon_proc, pages_url,
                     f'fill "Day" with "{day}"; fill "Time" with "{time}"; '
                     f'fill "Note" with "{day}"; done')
    assert all(s["ok"] for s in steps), [s.get("error") for s in steps]
    after = values(steps[-1])
    assert (after["Day"], after["Time"]) == expected
    assert after["Note"] == day                                 # a text box takes it as it is


def test_a_value_no_date_input_takes_is_refused_with_an_example(browser, daemon_proc,
                                                                 pages_url):
    steps = steps_of(daemon_proc, pages_url,
                     'fill "Day" with "next Tuesday"; fill "Time" with "13:05 PM"; done')
    assert [s["ok"] for s in steps] == [False, False, True]
    assert steps[0]["error"] == ('element [2] (type date) did not accept "next Tuesday" '
                                 "(a date such as 2017-10-20 or 10/20/2017)")
    assert steps[1]["error"].endswith('did not accept "13:05 PM" (a time such as 19:55 or 7:55 PM)')
