"""Replay with new values: a demonstration's values become the new task's, on a form and on a
multi-page flow of the bundled sites, through the real recorder, daemon, extension and Chromium
(units of agent/values.py first)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import follow, nightloop, run_async, wait_until
from test_demonstrations import record, replay, show

from daemon.agent.replay import recorded_demonstrations
from daemon.agent.values import Unmatched, rebind, template_of, values_of
from daemon.core.store import Step, Store
from daemon.tasks.sites import serve_sites
from daemon.tasks.sites.replays import demonstrated, fitting_seeds, replay_with_values
from daemon.tasks.sites.templates import TEMPLATES
from daemon.tasks.sites.user import act_out
from trainer.config import TrainConfig
from trainer.data import load_samples


def step(action: dict, name: str | None = None) -> Step:
    return Step(episode_id=1, index=0, url="http://a/", observation={}, action=action, ok=True,
                target={"role": "link", "tag": "a", "name": name} if name else None)


REPLY = 'Reply to Ada Perlman about "Team lunch" with "Count me in"'
REPLYING = [step({"action": "click", "id": 3}, "Ada Perlman — Team lunch"),
            step({"action": "click", "id": 5}, "Reply"),
            step({"action": "fill", "id": 7, "text": "Count me in"}),
            step({"action": "click", "id": 8}, "Send")]


def test_typed_text_and_clicked_names_the_task_names_are_its_values():
    values = values_of(REPLYING, REPLY)
    assert sorted(values) == ["Ada Perlman", "Count me in", "Team lunch"]   # not "Reply": its verb
    assert str(template_of(REPLY, values)) == 'Reply to {} about "{}" with "{}"'
    new = rebind(REPLYING, REPLY, 'reply to Bob  Hopper about "Rota" with "No, sorry"')
    assert [s.target["name"] if s.target else s.action["text"] for s in new] == [
        "Bob Hopper — Rota", "Reply", "No, sorry", "Send"]
    # the first link's name holds two of the new values: where the page names it otherwise
    # (its own subject), the link that holds them is found (descriptors.find)
    assert new[0].target["holds"] == ["Bob Hopper", "Rota"] and "holds" not in new[1].target
    assert rebind(REPLYING, REPLY, REPLY) == REPLYING               # the same values: as is


def test_numbers_match_whole_and_a_task_that_does_not_fit_names_the_missing_value():
    task = "Book 4 seats on 2027-04-14 at 18:30"
    steps = [step({"action": "fill", "id": 1, "text": "4"}),
             step({"action": "fill", "id": 2, "text": "2027-04-14"}),
             step({"action": "click", "id": 3}, "Choose 18:30")]
    new = rebind(steps, task, "Book 2 seats on 2027-01-09 at 07:45")
    assert [s.action.get("text") or s.target["name"] for s in new] == [
        "2", "2027-01-09", "Choose 07:45"]                         # "4" never inside the date
    with pytest.raises(Unmatched, match="no place for '4': the recorded task goes on with "
                                        "'seats on' after it"):
        rebind(steps, task, "Book 2 places on 2027-01-09 at 07:45")
    twice = [step({"action": "fill", "id": 1, "text": "Ada"})]
    with pytest.raises(Unmatched, match="'Ada' appears twice"):
        rebind(twice, "Write to Ada and sign as Ada", "Write to Bob and sign as Eve")


def test_a_value_ends_where_the_task_ends_and_never_swallows_a_new_clause():
    task = "Add Ada Lovelace, ada@example.org, in Lagos"
    steps = [step({"action": "fill", "id": 1, "text": "Ada Lovelace"}),
             step({"action": "fill", "id": 2, "text": "ada@example.org"}),
             step({"action": "select_option", "id": 3, "option": "Lagos"})]
    new = rebind(steps, task, "Add Bob Hope, bob@example.org, in Lima.")   # a full stop
    assert [s.action.get("text") or s.action.get("option") for s in new] == [
        "Bob Hope", "bob@example.org", "Lima"]
    for extra, clause in [(" and turn on the newsletter", "and turn on the newsletter"),
                          (", then press Save", "then press Save"),
                          ("; tick Newsletter", "tick Newsletter")]:
        with pytest.raises(Unmatched, match=re.escape(f"{clause!r} has no place in it "
                                                      "(after 'Lima', where it had 'Lagos')")):
            rebind(steps, task, f"Add Bob Hope, bob@example.org, in Lima{extra}")
    # a value may hold "and" where no new instruction follows it
    kept = rebind(steps, task, "Add Bob Hope, bob@example.org, in Trinidad and Tobago")
    assert kept[2].action["option"] == "Trinidad and Tobago"


def user_does(task):
    return lambda page: act_out(page, task)


def fulfilled(browser, task, *, newest: bool = False) -> bool:
    """Whether a tab on `task`'s site ended in the state `task` asks for (waits 5 s); with
    `newest`, its latest entries are enough (the tab may hold an earlier run's too)."""
    def any_tab() -> bool:
        for page in browser.context.pages:      # Playwright learns of the extension's tabs and
            page.wait_for_timeout(50)           # their moves only while it is called
            if f"/{task.site}/" in page.url:
                saved = json.loads(page.evaluate(
                    f"sessionStorage.getItem('nightloop.site.{task.site}')") or "null")
                state = saved["state"] if saved else {}
                if newest:
                    state = {k: v[-len(task.expect[k]):] if isinstance(v, list) else v
                             for k, v in state.items() if k in task.expect}
                if saved and task.check(state)[0]:
                    return True
        return False
    try:
        wait_until(any_tab, timeout=5, what=f"the state {task.task!r} asks for")
    except AssertionError:
        return False
    return True


@pytest.mark.browser
@pytest.mark.parametrize("template", ["contact.ask", "booking.trip", "settings.update"])
def test_a_demonstration_replays_with_the_new_tasks_values(browser, daemon_proc, template):
    """A form (contact.ask), a multi-page flow (booking.trip) and a settings page whose task
    names the field and a toggle's state (settings.update: shown on the language, "turn on";
    replayed for "turn off" and, on seed 0, for the city): recorded on one seed by a
    person, replayed without the model on another seed's task, which it then fulfils. (Seeds
    2 and 3: a value the page already showed, such as 1 passenger, is not typed by the person,
    so it is not a value of the demonstration.)"""
    shown, other = TEMPLATES[template].task(2), TEMPLATES[template].task(3)
    with serve_sites() as url:
        demo = record(browser, daemon_proc, shown.url(url), shown.task, user_does(shown))
        assert [s["action"]["action"] for s in demo["steps"]] == [
            i.split()[0].replace("select", "select_option") for i in shown.script.split("; ")]
        again = replay(daemon_proc, str(demo["id"]), "--task", other.task, "--url", other.url(url),
                       "--fallback", "none")
        assert again["status"] == "done" and again["task"] == other.task, again["final_answer"]
        steps = show(daemon_proc, again["id"])["steps"]
        assert {s["mode"] for s in steps} == {"replayed"}            # no model involved
        assert fulfilled(browser, other)

        # The same through `eval sites --policy replay`, on a test seed's task and fresh load.
        run = json.loads(nightloop("eval", "sites", "--policy", "replay", "--templates",
                                   template, "--seed-list", "0", "--db", str(daemon_proc.db),
                                   "--out", str(daemon_proc.db.parent / "run"), "--json").stdout)
        assert [(e["task"], e["success"]) for e in run["episodes"]] == [(template, True)]

        wrong = nightloop("replay", str(demo["id"]), "--task", "Do something else entirely",
                          "--fallback", "none", *daemon_proc.args(), check=False)
        assert wrong.returncode != 0 and "cannot be replayed for this task: the new task " \
            "has no place for" in wrong.stderr


@pytest.mark.browser
def test_run_replay_auto_uses_the_demonstration_the_task_fits(browser, daemon_proc):
    shown, other = TEMPLATES["inbox.reply"].task(1), TEMPLATES["inbox.reply"].task(3)
    with serve_sites() as url:
        demo = record(browser, daemon_proc, shown.url(url), shown.task, user_does(shown))
        ran = follow("run", "--replay", "auto", "--url", other.url(url), *daemon_proc.args(),
                     other.task)
        assert ran["source"] == "replay" and ran["replay_of"] == demo["id"]
        steps = [(s["mode"], s["action"]) for s in show(daemon_proc, ran["id"])["steps"]]
        assert ran["status"] == "done" and fulfilled(browser, other), (ran, steps)
        plain = follow("run", "--url", other.url(url), *daemon_proc.args(), other.task)
        assert plain["source"] == "cli" and plain.get("replay_of") is None     # --replay never


def finished(daemon_proc, episode_id: int) -> bool:
    listed = json.loads(nightloop("episodes", "list", "--json", "--db", str(daemon_proc.db)).stdout)
    return any(e["id"] == episode_id and e["status"] != "running" for e in listed)


@pytest.mark.browser
def test_the_popup_offers_a_fitting_demonstration_and_runs_again_with_an_edited_task(
        browser, daemon_proc):
    shown, fits, edited = (TEMPLATES["contact.ask"].task(s) for s in (2, 3, 4))
    with serve_sites() as url:
        demo = record(browser, daemon_proc, shown.url(url), shown.task, user_does(shown))
        popup = browser.popup()
        nothing = "Write to support about nothing in particular"
        popup.fill("#task", nothing)
        def answer() -> dict:           # the daemon's answer, as the popup keeps it
            return popup.evaluate("async () => (await chrome.storage.session.get('fits')).fits")
        wait_until(lambda: (answer() or {}).get("task") == nothing, timeout=5,
                   what="the daemon's answer to the typed task")
        assert answer().get("episode_id") is None               # no demonstration fits
        assert popup.locator("#fits").is_hidden()
        popup.fill("#task", fits.task)
        popup.wait_for_selector("#fits:not([hidden])", timeout=5_000)
        assert popup.text_content("#fits-demo") == shown.task
        popup.click("#fits-replay")
        popup.wait_for_selector("#finished:not([hidden])", timeout=20_000)
        assert fulfilled(browser, fits, newest=True)      # the popup runs in the user's tab
        assert show(daemon_proc, demo["id"] + 1)["replay_of"] == demo["id"]

        assert popup.input_value("#again-task") == fits.task    # the last run's, to edit
        popup.fill("#again-task", edited.task)
        popup.click("#replay")
        wait_until(lambda: finished(daemon_proc, demo["id"] + 2), timeout=30,
                   what="the edited run to finish")
        again = show(daemon_proc, demo["id"] + 2)
        assert again["status"] == "done" and again["task"] == edited.task
        assert fulfilled(browser, edited, newest=True)


@pytest.mark.browser
def test_a_night_replays_a_demonstration_with_other_seeds_values_into_verified_examples(
        browser, daemon_proc, tmp_path):
    """What the cycle does before the model practises the sites: the demonstration of one
    seed's task, replayed with the values of the practice seeds' tasks it fits, gives
    successes the sites' ground truth verifies, and training imitates them."""
    shown = TEMPLATES["contact.ask"].task(2)
    with serve_sites() as url:
        record(browser, daemon_proc, shown.url(url), shown.task, user_does(shown))

    async def recorded():
        async with await Store.open(daemon_proc.db) as store:
            return await recorded_demonstrations(store)
    demos = run_async(recorded())
    fits = fitting_seeds(demos, ["contact.ask", "inbox.reply"], [1, 3, 4])
    assert fits == {"contact.ask": [1, 3, 4]}              # no inbox demonstration
    assert demonstrated(demos) == ("contact.ask",)       # what a night practises by default
    practice = tmp_path / "practice.db"
    results = run_async(replay_with_values(demos, fits, db=practice, max_steps=20))
    assert [(r.task, r.seed, r.success) for r in results] == [
        ("contact.ask", s, True) for s in (1, 3, 4)]

    async def samples():
        async with await Store.open(practice) as store:
            episodes = await store.episodes()
            assert {e.source for e in episodes} == {"practice"}
            assert {s.mode for e in episodes for s in await store.steps(e.id)} == {"replayed"}
            return await load_samples(store, TrainConfig(), ("practice",),
                                      render_prompt=lambda c: f"PROMPT {c.task}")
    taught = run_async(samples())
    assert {s.episode_id for s in taught} == {1, 2, 3} and all(
        s.verified and s.reward == 1 and s.teacher for s in taught)
    assert TEMPLATES["contact.ask"].task(3).task in {s.prompt[7:] for s in taught}


def test_a_value_left_as_the_page_showed_it_changes_with_the_new_task():
    """The person clicked into Passengers and left its 1: replaying for 3 passengers types 3."""
    page = {"url": "http://trains.test/", "elements": [
        {"id": 4, "tag": "input", "role": "spinbutton", "name": "Passengers", "value": "1",
         "editable": True}]}
    left = Step(1, 0, {"action": "click", "id": 4}, True, observation=page,
                target={"role": "spinbutton", "tag": "input", "name": "Passengers"})
    typed = step({"action": "fill", "id": 5, "text": "Ada"})
    new = rebind([left, typed], "Book for 1 passengers, lead Ada", "Book for 3 passengers, lead Bo")
    assert [s.action for s in new] == [{"action": "fill", "id": 4, "text": "3"},
                                       {"action": "fill", "id": 5, "text": "Bo"}]


SETTINGS = {"url": "http://settings.test/", "elements": [
    {"id": 2, "tag": "input", "role": "textbox", "name": "Phone", "editable": True},
    {"id": 3, "tag": "input", "role": "textbox", "name": "City", "editable": True},
    {"id": 4, "tag": "select", "role": "combobox", "name": "Language",
     "options": ["English", "Français"]},
    {"id": 5, "tag": "input", "role": "checkbox", "name": "Dark mode", "checked": False},
    {"id": 6, "tag": "input", "role": "checkbox", "name": "Weekly summary", "checked": True},
    {"id": 7, "tag": "button", "role": "button", "name": "Save changes"}]}


def on_settings(action: dict) -> Step:
    found = next(e for e in SETTINGS["elements"] if e["id"] == action["id"])
    return Step(1, 0, action, True, observation=SETTINGS,
                target={k: found[k] for k in ("role", "tag", "name")})


def test_a_field_the_task_names_and_a_toggles_state_change_with_the_new_task():
    """Shown on the language (a select), replayed for the city (an input): the new field's
    action; "turn on" shown, "turn off" asked: the click carries the state to reach."""
    task = 'Set your language to Français, turn on "Dark mode" and save'
    steps = [on_settings({"action": "select_option", "id": 4, "option": "Français"}),
             on_settings({"action": "click", "id": 5}),
             on_settings({"action": "click", "id": 7})]
    assert sorted(values_of(steps, task)) == ["Dark mode", "Français", "Language"]
    new = rebind(steps, task, 'Set your city to Lisbon, turn off "Weekly summary" and save')
    assert [s.action for s in new] == [{"action": "fill", "id": 3, "text": "Lisbon"},
                                       {"action": "click", "id": 5},
                                       {"action": "click", "id": 7}]
    assert new[0].target == {"role": "textbox", "tag": "input", "name": "City", "nth": 0}
    assert (new[1].target["name"], new[1].target["wants_checked"]) == ("Weekly summary", False)
    assert "wants_checked" not in new[2].target                     # not a toggle
    as_shown = rebind(steps, task, task)
    assert as_shown[1].target["wants_checked"] is True and as_shown[0].action == steps[0].action
    with pytest.raises(Unmatched, match="the recorded page has no field 'name'"):
        rebind(steps, task, 'Set your name to Ada, turn on "Dark mode" and save')


def test_a_field_word_beside_another_value_stays_the_tasks_own():
    """"from {Porto}", "{3} {passengers}": two values a space apart have no border a new task
    could be split at, so the field's word is not a value there."""
    task = "Book from Porto for 3 passengers"
    steps = [step({"action": "select_option", "id": 1, "option": "Porto"}, "From"),
             step({"action": "fill", "id": 2, "text": "3"}, "Passengers")]
    assert str(template_of(task, values_of(steps, task))) == "Book from {} for {} passengers"
    assert [s.action.get("option") or s.action.get("text") for s in rebind(
        steps, task, "Book from Turin for 12 passengers")] == ["Turin", "12"]
