"""ReplayPolicy on its own (the recorded plan against observations, no browser): re-targeting
by descriptor, passwords handed to the user, and what happens where a target is gone. The
real recorder and replays in Chromium are in test_demonstrations.py."""

from __future__ import annotations

from conftest import run_async

from daemon.agent.descriptors import describe
from daemon.agent.policy import Decision, StepContext
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
    got = [decide(policy, fresh) for _ in range(4)]
    assert [d.action.to_json() for d in got] == [
        {"action": "goto", "url": "https://a.test/form"},
        {"action": "fill", "id": 9, "text": "Ada"}, {"action": "click", "id": 7},
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


def test_a_missing_target_without_fallback_gives_up_saying_where():
    policy = ReplayPolicy(recorded({"action": "click", "id": 3}), fallback=None, ask_user=never)
    waited_for(policy, Observation(FORM.url, "Form", []))
    decision = decide(policy, Observation(FORM.url, "Form", []))
    assert decision.action.name == "give_up"
    assert decision.action.args["reason"] == ('step 1 of 1 (click button "Send"): no button '
                                              '"Send" on https://a.test/form')


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
