"""The skills curriculum: generated pages and tasks whose values, labels and layouts change
with the seed; a ground truth from the page's recorded state; the scripted solution solving
every template through the real extension, and doing nothing solving none."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from conftest import run_async
from test_sites import SaysDone

from daemon.tasks import splits
from daemon.tasks.evaluation import EvalPlan, evaluate
from daemon.tasks.sites.teacher import SiteTeacher
from daemon.tasks.skills import HELD_OUT, SKILLS, serve_skills, skills_benchmark


def test_every_template_varies_its_page_and_words_with_the_seed():
    for template in SKILLS.values():
        tasks = [template.task(seed) for seed in range(20)]
        assert template.task(3) == tasks[3]
        assert len({t.task for t in tasks}) >= 15, template.name
        pages = [template.page(seed) for seed in range(20)]
        assert len({(p.layout, p.title, tuple(c.label for c in p.controls)) for p in pages}) >= 10
        for task in tasks:
            assert task.script.endswith("; done") and task.expect, task
            for value in task.values.values():
                assert value in task.task or value.lower() in task.task, (value, task.task)
    assert set(HELD_OUT) < set(SKILLS)


def test_a_submit_is_asked_by_its_label_or_by_what_it_does_where_that_is_unambiguous():
    import random

    from daemon.tasks.skills.pages import Page
    from daemon.tasks.skills.templates import submit_words
    said = {submit_words(Page("Settings", "Save changes", []), random.Random(i))
            for i in range(40)}
    assert "save" in said and any("Save changes" in s for s in said)
    draft = Page("Settings", "Save changes", [], buttons=["Save draft"])    # "save" is both
    assert all("Save changes" in submit_words(draft, random.Random(i)) for i in range(40))
    assert all("Pay now" in submit_words(Page("Checkout", "Pay now", []), random.Random(i))
               for i in range(40))                  # no verb known for it: by its label


def test_a_page_gives_every_control_a_label_of_its_own():
    for template in SKILLS.values():
        for seed in range(50):
            labels = [c.label.lower() for c in template.page(seed).controls]
            assert len(labels) == len(set(labels)), (template.name, seed, labels)


def test_the_ground_truth_wants_the_asked_values_and_only_those():
    task = SKILLS["skills.form"].task(1)
    values = task.expect["values"]
    assert task.check({"values": values, "submitted": [values]})[0]
    assert not task.check({"values": values, "submitted": []})[0]        # never submitted
    asked = next(k for k in values if k.startswith("c"))
    wrong = {**values, asked: "something else"}
    assert not task.check({"values": wrong, "submitted": [wrong]})[0]
    untouched = SKILLS["skills.form"].page(1).values()
    assert not task.check({"values": untouched, "submitted": [untouched]})[0]


def test_the_server_hands_out_pages_and_refuses_unknown_templates():
    with serve_skills() as url:
        page = json.load(urllib.request.urlopen(f"{url}/api/skill?template=skills.type&seed=4"))
        assert page == SKILLS["skills.type"].page(4).to_json()
        for query in ("template=skills.nope&seed=1", "template=skills.type&seed=x"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{url}/api/skill?{query}")
            assert refused.value.code == 400


@pytest.mark.browser
def test_the_script_solves_every_template_and_doing_nothing_solves_none(home):
    seeds = splits.seeds("test", 3)
    names = list(SKILLS)
    plan = EvalPlan(names, seeds, max_steps=8, parallel=2, benchmark=skills_benchmark())
    tasks = [SKILLS[t].task(s) for t in names for s in seeds]
    solved = run_async(evaluate(plan, policy=SiteTeacher(tasks), db=home / "skills.db"))
    assert all(r.success and r.error is None for r in solved), \
        [(r.task, r.seed, r.status, r.error) for r in solved if not r.success]
    idle = run_async(evaluate(plan, policy=SaysDone(), db=home / "skills.db"))
    assert [r.success for r in idle] == [False] * len(idle) and all(r.done for r in idle)


def test_the_teacher_follows_the_script_of_the_seed_whose_page_it_is_on():
    """Two seeds may ask in the same words on different pages ("Click Blog"): the teacher
    takes the script of the seed in the page's URL."""
    from daemon.agent.policy import StepContext
    from daemon.core.observation import Observation
    from daemon.tasks.sites.templates import SiteTask
    one = SiteTask("skills.press", 1, "Click Blog", "index.html", {}, 'click "Blog"; done')
    six = SiteTask("skills.press", 6, "Click Blog", "index.html", {}, 'click "News"; done')
    teacher = SiteTeacher([one, six])
    on = lambda seed: StepContext("Click Blog", Observation(            # noqa: E731
        f"http://127.0.0.1/index.html?template=skills.press&seed={seed}"))
    assert teacher.script(on(6)) == six.script and teacher.script(on(1)) == one.script
    assert teacher.script(on(11)) is None


@pytest.mark.browser
def test_the_eval_skills_command_runs_templates_and_names_bad_ones(home):
    from conftest import nightloop
    result = nightloop("eval", "skills", "--policy", "teacher", "--templates", "skills.toggle",
                       "--seeds", "2", "--out", str(home / "run"), "--db", str(home / "e.db"),
                       "--json")
    data = json.loads(result.stdout)
    assert [e["success"] for e in data["episodes"]] == [True, True]
    assert data["meta"]["benchmark"] == "skills"
    assert (home / "run" / "report.md").read_text().startswith("# Skills evaluation")
    bad = nightloop("eval", "skills", "--templates", "skills.fly", check=False)
    assert bad.returncode == 2 and "unknown template 'skills.fly'" in bad.stderr
