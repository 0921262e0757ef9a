"""The bundled sites: templates whose values change per seed, a ground truth read from the page,
pages that change between loads, and `nightloop eval sites` through the real extension."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request

import pytest
from conftest import nightloop, run_async

from daemon.agent.policy import Decision
from daemon.core.actions import Action
from daemon.core.observation import Observation
from daemon.tasks import splits
from daemon.tasks.evaluation import EvalPlan, evaluate
from daemon.tasks.sites import Sites, serve_sites
from daemon.tasks.sites.teacher import SiteTeacher
from daemon.tasks.sites.templates import TEMPLATES, parse_templates

SITES = {name.split(".")[0] for name in TEMPLATES}


def test_every_site_has_templates_whose_values_change_with_the_seed_and_appear_in_the_task():
    assert SITES == {"shop", "contact", "booking", "inbox", "settings"}
    for template in TEMPLATES.values():
        tasks = [template.task(seed) for seed in range(12)]
        assert template.task(3) == tasks[3]                     # the same for the same seed
        assert len({t.task for t in tasks}) >= 10, template.name   # new values per seed
        for task in tasks:
            assert all(value in task.task for value in task.values.values()), task
            steps = task.script.split("; ")
            assert 3 <= len(steps) - 1 <= 10 and steps[-1] == "done", task.script


def test_the_ground_truth_is_the_sites_state_the_task_asked_for():
    task = TEMPLATES["inbox.reply"].task(7)
    reply = task.expect["sent"][0]
    assert task.check({"sent": [{**reply, "body": f"  {reply['body']} "}]}) == (
        True, "the site is in the state the task asked for")      # spacing as a person reads
    wrong, why = task.check({"sent": [{**reply, "to": "Someone Else"}]})
    assert not wrong and "Someone Else" in why
    assert not task.check({})[0]                                  # nothing done: no success
    assert not task.check({"sent": [reply, reply]})[0]            # sent twice is not the task


def test_templates_are_named_one_by_one_or_by_site():
    assert parse_templates("inbox,shop.add") == ["inbox.reply", "inbox.archive", "shop.add"]
    assert parse_templates(None) == list(TEMPLATES)
    with pytest.raises(ValueError, match="unknown template 'shop.steal'"):
        parse_templates("shop.steal")


def test_the_server_hands_each_page_its_world_and_refuses_nonsense():
    with serve_sites() as url:
        world = json.load(urllib.request.urlopen(f"{url}/api/world?site=shop&seed=4"))
        assert len(world["products"]) == 12 and world == json.load(
            urllib.request.urlopen(f"{url}/api/world?site=shop&seed=4"))
        for query in ("site=casino&seed=1", "site=shop&seed=x", "site=shop"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{url}/api/world?{query}")
            assert refused.value.code == 400
        assert urllib.request.urlopen(f"{url}/booking/index.html").status == 200


class SaysDone:
    name, adapter = "says-done", None

    async def decide(self, context):
        return Decision(Action("done"))


@pytest.mark.browser
def test_the_teacher_solves_every_template_and_doing_nothing_solves_none(home):
    db = home / "sites.db"
    seeds = splits.seeds("test", 2)
    tasks = [TEMPLATES[t].task(s) for t in TEMPLATES for s in seeds]
    plan = EvalPlan(list(TEMPLATES), seeds, max_steps=15, parallel=2, benchmark=Sites())
    solved = run_async(evaluate(plan, policy=SiteTeacher(tasks), db=db))
    assert [(r.task, r.seed) for r in solved] == [(t, s) for t in TEMPLATES for s in seeds]
    assert all(r.success and r.done and r.error is None for r in solved), \
        [(r.task, r.seed, r.status, r.error) for r in solved if not r.success]
    idle = run_async(evaluate(plan, policy=SaysDone(), db=db))
    assert [r.success for r in idle] == [False] * len(idle) and all(r.done for r in idle)

    rows = sqlite3.connect(db).execute(
        "SELECT e.task, e.policy, r.value, r.details FROM episodes e "
        "JOIN rewards r ON r.episode_id = e.id WHERE r.kind = 'ground_truth'").fetchall()
    assert len(rows) == 2 * len(solved)
    for task, policy, value, details in rows:
        details = json.loads(details)
        assert details["benchmark"] == "sites" and details["template"] == details["task"]
        assert task == TEMPLATES[details["task"]].task(details["seed"]).task
        assert value == (1.0 if policy == "sites-teacher" else 0.0), details["reason"]


@pytest.mark.browser
def test_pages_change_between_loads_but_not_their_world(browser, daemon_proc):
    """The same seed shows the same products, in another order and with other element ids on
    every load: an agent (or a replay) must find things by what they are. What the agent
    sees of the page (the extension's observation) is the same state on every load, so its
    loop breaker knows a reload changed nothing."""
    page = browser.context.new_page()
    with serve_sites() as url:
        loads, seen = [], []
        for _ in range(3):
            page.goto(f"{url}/shop/index.html?seed=4")
            page.wait_for_selector("html[data-site-ready=yes]")
            loads.append((page.locator("ul.rows a").all_inner_texts(),
                          page.locator("li[id]").evaluate_all("rows => rows.map(r => r.id)")))
            out = nightloop("observe", "--json", *daemon_proc.args()).stdout
            seen.append(Observation.from_json(json.loads(out)["observation"]))
    names = [tuple(sorted(n)) for n, _ in loads]
    assert names[0] == names[1] == names[2] and len(names[0]) == 12
    assert len({tuple(n) for n, _ in loads}) > 1                  # the order changed
    assert not set(loads[0][1]) & set(loads[1][1])                # fresh ids every time
    assert len({obs.text for obs in seen}) > 1 and len({obs.state_key() for obs in seen}) == 1


@pytest.mark.browser
def test_the_eval_sites_command_writes_a_report_and_names_bad_templates(home):
    out = home / "run"
    result = nightloop("eval", "sites", "--policy", "teacher", "--templates", "settings",
                       "--seeds", "2", "--out", str(out), "--db", str(home / "e.db"), "--json",
                       "--screenshots")
    data = json.loads(result.stdout)
    assert [e["success"] for e in data["episodes"]] == [True, True]
    assert data["meta"]["benchmark"] == "sites" and data["meta"]["seeds"] == [0, 5]
    report = (out / "report.md").read_text()
    assert report.startswith("# Bundled sites evaluation: sites-teacher")
    assert "| settings.update | 2 | 1.00 |" in report and (out / "success.png").exists()
    for episode in data["episodes"]:                    # --screenshots: every step has one
        steps = json.loads(nightloop("episodes", "show", str(episode["episode_id"]), "--json",
                                     "--db", str(home / "e.db")).stdout)["steps"]
        assert steps and all((home / "e.db-screenshots" / s["screenshot"]["file"]).is_file()
                             for s in steps)
    bad = nightloop("eval", "sites", "--templates", "shop.steal", check=False)
    assert bad.returncode == 2 and "unknown template 'shop.steal'" in bad.stderr


@pytest.mark.process
def test_the_daemon_serves_the_sites_for_a_new_user_to_try(home):
    """`make run` starts `nightloop daemon --browser --sites`: the browser opens on a front page
    that lists today's tasks, each a link to its site, on a fixed port (a demonstration
    recorded there still starts on a valid page tomorrow)."""
    import re
    import subprocess

    from conftest import NIGHTLOOP, DaemonProcess, free_port, wait_until
    sites_port = free_port()
    daemon = DaemonProcess(free_port(), home / "store.db", home / "daemon.log").start(
        "--sites", "--sites-port", str(sites_port))
    try:
        wait_until(lambda: "practice sites on" in daemon.log.read_text(), timeout=10,
                   what="the sites' address")
        front = re.search(r"practice sites on (\S+):", daemon.log.read_text())[1]
        assert front == f"http://127.0.0.1:{sites_port}/index.html"
        assert "Try the agent here" in urllib.request.urlopen(front).read().decode()
        base = front.rsplit("/", 1)[0]
        tasks = json.load(urllib.request.urlopen(f"{base}/api/tasks?seed=3"))
        assert [t["template"] for t in tasks] == list(TEMPLATES)
        assert tasks[0]["task"] == TEMPLATES["shop.add"].task(3).task
        assert urllib.request.urlopen(base + tasks[0]["url"]).status == 200
        taken = subprocess.run([NIGHTLOOP, "daemon", "--port", str(free_port()), "--db",
                                str(home / "other.db"), "--policy", "scripted", "--sites",
                                "--sites-port", str(sites_port)],
                               capture_output=True, text=True, timeout=30)
        assert taken.returncode != 0
        assert f"cannot serve the practice sites on 127.0.0.1:{sites_port}" in taken.stderr
    finally:
        daemon.stop()
    with pytest.raises(urllib.error.URLError):            # gone with the daemon
        urllib.request.urlopen(front, timeout=2)


@pytest.mark.browser
def test_a_person_can_act_out_every_templates_script(playwright):
    """What the bench's demonstrations are made of: Playwright doing each template's script the
    way a user would (no extension involved) leaves the site in the state the task asks for."""
    from daemon.bridge.launch import find_chromium
    from daemon.tasks.sites.user import act_out
    browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True)
    try:
        with serve_sites() as url:
            for name, template in TEMPLATES.items():
                task = template.task(1)
                page = browser.new_page()
                page.goto(task.url(url))
                act_out(page, task)
                saved = json.loads(page.evaluate(
                    f"sessionStorage.getItem('nightloop.site.{task.site}')"))
                assert task.check(saved["state"]) == (
                    True, "the site is in the state the task asked for"), name
                page.close()
    finally:
        browser.close()
