"""ReplayPolicy on its own (the recorded plan against observations, no browser): re-targeting
by descriptor, passwords handed to the user, and what happens where a target is gone. The
real recorder and replays in Chromium are in test_demonstrations.py."""

from __future__ import annotations

import re

import pytest
from conftest import run_async

from daemon.agent.descriptors import describe
from daemon.agent.episode import EpisodeFailed
from daemon.agent.policy import Decision, PastStep, StepContext
from daemon.agent.replay import PATIENCE, WAIT_S, ReplayPolicy, plan_line
from daemon.core.actions import Action
from daemon.core.observation import Element, Observation
from daemon.core.store import Step

FORM = Observation("https://a.test/form", "Form", [
    Element(1, "input", "textbox", "Name", type="text"),
    Element(2, "input", "textbox", "Password", type="password"),
    Element(3, "button", "button", "Send")])


def recorded(*actions: dict) -> list[Step]:
    return [Step(1, i, a, True, target=describe(FORM, a["id"]) if "id" in a else None)
            for i, a in enumerate(actions)]


class Fallback:
    """A stand-in policy that clicks a fixed element and remembers what it was told."""
    name, adapter = "model", "a.gguf"

    def __init__(self, element_id: int):
        self.element_id, self.plans = element_id, []

    async def decide(self, context: StepContext) -> Decision:
        self.plans.append(context.plan)
        return Decision(Action("click", {"id": self.element_id}))


def decide(policy: ReplayPolicy, obs: Observation) -> Decision:
    return run_async(policy.decide(StepContext("send the form", obs)))


async def never(notice: str) -> None:
    raise AssertionError(f"the replay should not ask the user: {notice}")


def test_recorded_actions_land_on_the_same_elements_under_new_ids():
    steps = recorded({"action": "goto", "url": "https://a.test/form"},
                     {"action": "fill", "id": 1, "text": "Ada"}, {"action": "click", "id": 3})
    steps.append(Step(1, 3, {"action": "click", "id": 1}, False))     # failed: not replayed
    policy = ReplayPolicy(steps, fallback=None, ask_user=never)
    fresh = Observation(FORM.url, "Form", [Element(7, "button", "button", "Send"),
                                           Element(9, "input", "textbox", "Name", type="text")])
    got = [decide(policy, fresh) for _ in range(5)]
    assert [d.action.to_json() for d in got] == [
        {"action": "goto", "url": "https://a.test/form"},
        {"action": "fill", "id": 9, "text": "Ada"}, {"action": "click", "id": 7},
        {"action": "wait", "seconds": WAIT_S},          # the page's moment to answer the click
        {"action": "done"}]
    assert {d.mode for d in got} == {"replayed"}
    assert policy.name == "replay" and policy.adapter is None


def test_a_password_step_pauses_for_the_user():
    asked = []

    async def ask(notice: str) -> None:
        asked.append(notice)
    policy = ReplayPolicy(recorded({"action": "fill", "id": 2, "text": "•••"}), fallback=None,
                          ask_user=ask)
    decision = decide(policy, FORM)
    assert decision.mode == "user" and decision.action.to_json() == {"action": "wait",
                                                                     "seconds": 0}
    assert asked == ['Type your password into textbox "Password" in the page, then press '
                     'Continue.']


def waited_for(policy: ReplayPolicy, obs: Observation) -> list[Decision]:
    """The waits a replay makes for a target `obs` lacks (the page may still be rendering)."""
    waits = [decide(policy, obs) for _ in range(PATIENCE)]
    assert [(d.action.to_json(), d.mode) for d in waits] == [
        ({"action": "wait", "seconds": WAIT_S}, "replayed")] * PATIENCE
    return waits


def test_a_target_that_appears_while_the_replay_waits_is_used():
    policy = ReplayPolicy(recorded({"action": "click", "id": 3}), fallback=Fallback(5),
                          ask_user=never)
    assert decide(policy, Observation(FORM.url, "Loading", [])).action.name == "wait"
    assert decide(policy, FORM).action.to_json() == {"action": "click", "id": 3}


def test_a_missing_target_without_fallback_fails_saying_where():
    policy = ReplayPolicy(recorded({"action": "click", "id": 3}), fallback=None, ask_user=never)
    waited_for(policy, Observation(FORM.url, "Form", []))
    with pytest.raises(EpisodeFailed, match=re.escape(
            'step 1 of 1 (click button "Send"): no button "Send" on https://a.test/form')):
        decide(policy, Observation(FORM.url, "Form", []))


def after(policy: ReplayPolicy, decision: Decision, page: Observation, ok: bool = True,
          error: str | None = None) -> Decision:
    """The policy's next decision on `page`, once `decision` was carried out with `ok`."""
    done = PastStep(decision.action, ok, error, page=page)
    return run_async(policy.decide(StepContext("send the form", page, [done])))


CHOOSE = Observation("https://a.test/form", "Form", [
    Element(4, "select", "combobox", "City", options=["Lagos", "Lima"], selected="Lagos"),
    Element(3, "button", "button", "Send")])


def test_a_step_the_page_refused_stops_the_replay_before_the_next_one():
    steps = [Step(1, 0, {"action": "select_option", "id": 4, "option": "Paris"}, True,
                  target=describe(CHOOSE, 4)),
             Step(1, 1, {"action": "click", "id": 3}, True, target=describe(CHOOSE, 3))]
    refused = 'select [4] has no option "Paris"'
    alone = ReplayPolicy(steps, fallback=None, ask_user=never)
    choose = decide(alone, CHOOSE)
    assert choose.action.to_json() == {"action": "select_option", "id": 4, "option": "Paris"}
    with pytest.raises(EpisodeFailed, match=re.escape(
            f"step 1 of 2 (select_option combobox \"City\" option 'Paris') failed: {refused}")):
        after(alone, choose, CHOOSE, ok=False, error=refused)       # never clicks Send

    fallback = Fallback(element_id=4)                   # the model gets that one step
    helped = ReplayPolicy(steps, fallback=fallback, ask_user=never)
    stand_in = after(helped, decide(helped, CHOOSE), CHOOSE, ok=False, error=refused)
    assert stand_in.mode == "fallback" and refused in fallback.plans[0]
    assert after(helped, stand_in, CHOOSE).action.to_json() == {"action": "click", "id": 3}
    again = ReplayPolicy(steps, fallback=Fallback(element_id=4), ask_user=never)
    stand_in = after(again, decide(again, CHOOSE), CHOOSE, ok=False, error=refused)
    with pytest.raises(EpisodeFailed, match="and so did the model's step for it: nope"):
        after(again, stand_in, CHOOSE, ok=False, error="nope")    # one chance, no more
    mute = Fallback(element_id=4)
    mute.decide = lambda context: _no_action()
    silent = ReplayPolicy(steps, fallback=mute, ask_user=never)
    stand_in = after(silent, decide(silent, CHOOSE), CHOOSE, ok=False, error=refused)
    assert stand_in.action is None                      # the model said nothing valid ...
    with pytest.raises(EpisodeFailed, match="so did the model's step for it: no valid action"):
        run_async(silent.decide(StepContext("send the form", CHOOSE, [
            PastStep(None, False, "no valid action")])))    # ... and Send is never clicked


async def _no_action() -> Decision:
    return Decision(None, error="no valid action")


def test_a_form_the_page_refused_ends_the_replay_failed_in_the_pages_words():
    steps = recorded({"action": "fill", "id": 1, "text": "Ada"}, {"action": "click", "id": 3})
    answered = Observation(FORM.url, "Form", [
        Element(1, "input", "textbox", "Name", type="text", value="Ada",
                invalid="Enter a valid name."), *FORM.elements[1:]],
        errors=["Please correct the error below."])
    policy = ReplayPolicy(steps, fallback=None, ask_user=never)
    fill = decide(policy, FORM)
    click = after(policy, fill, FORM)
    with pytest.raises(EpisodeFailed, match=re.escape(
            "the page refused the form after step 2 of 2 (click button \"Send\"): Please "
            "correct the error below.; Name: Enter a valid name.")):
        after(policy, click, answered)
    late = ReplayPolicy(steps, fallback=None, ask_user=never)   # an answer a moment later
    settle = after(late, after(late, decide(late, FORM), FORM), FORM)
    assert settle.action.name == "wait"
    with pytest.raises(EpisodeFailed, match="after the last step: Please correct"):
        after(late, settle, answered)
    fine = ReplayPolicy(steps, fallback=None, ask_user=never)
    settle = after(fine, after(fine, decide(fine, FORM), FORM), FORM)
    assert after(fine, settle, FORM).action.name == "done"    # nothing says otherwise


def test_a_missing_target_with_fallback_lets_the_policy_do_that_step_then_goes_on():
    fallback = Fallback(element_id=5)
    policy = ReplayPolicy(recorded({"action": "click", "id": 3}, {"action": "fill", "id": 1,
                                                                  "text": "Ada"}),
                          fallback=fallback, ask_user=never)
    renamed = Observation(FORM.url, "Form", [Element(5, "button", "button", "Submit"),
                                             Element(6, "input", "textbox", "Name")])
    waited_for(policy, renamed)
    first = decide(policy, renamed)
    assert first.mode == "fallback" and first.action.to_json() == {"action": "click", "id": 5}
    assert "1. click button \"Send\"" in fallback.plans[0]
    assert "The page has changed at step 1 of 2" in fallback.plans[0]
    second = decide(policy, renamed)             # "Send" is still gone: the policy did it
    assert second.mode == "replayed" and second.action.to_json() == {
        "action": "fill", "id": 6, "text": "Ada"}
    assert policy.name == "replay+model" and policy.adapter == "a.gguf"


def test_after_a_fallback_the_same_step_is_retried_when_its_target_appears():
    fallback = Fallback(element_id=8)
    policy = ReplayPolicy(recorded({"action": "click", "id": 3}), fallback=fallback,
                          ask_user=never)
    inserted = Observation(FORM.url, "Cookies", [Element(8, "button", "button", "Accept")])
    waited_for(policy, inserted)
    assert decide(policy, inserted).mode == "fallback"
    after = decide(policy, FORM)                 # the policy got past the inserted page
    assert after.mode == "replayed" and after.action.to_json() == {"action": "click", "id": 3}


def test_plan_lines_read_like_instructions():
    fill, goto = recorded({"action": "fill", "id": 1, "text": "Ada"},
                          {"action": "goto", "url": "https://b.test/"})
    assert plan_line(fill) == "fill textbox \"Name\" text 'Ada'"
    assert plan_line(goto) == "goto url 'https://b.test/'"


def test_a_toggle_already_as_the_task_wants_is_left_alone():
    page = Observation("https://a.test/settings", "Settings", [
        Element(8, "input", "checkbox", "Dark mode", type="checkbox", checked=True),
        Element(9, "button", "button", "Save")])
    toggle = describe(page, 8)
    steps = [Step(1, 0, {"action": "click", "id": 8}, True, target={**toggle, "wants_checked": on})
             for on in (True, False)]
    save = Step(1, 1, {"action": "click", "id": 9}, True, target=describe(page, 9))
    already = ReplayPolicy([steps[0], save], fallback=None, ask_user=never)
    assert decide(already, page).action == Action("click", {"id": 9})     # straight to Save
    to_change = ReplayPolicy([steps[1], save], fallback=None, ask_user=never)
    assert decide(to_change, page).action == Action("click", {"id": 8})
