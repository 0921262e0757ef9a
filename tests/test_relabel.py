"""Hindsight relabelling on its own: which failed benchmark episodes fulfilled another
instruction of their template, by a success of the same task, and which did not."""

from __future__ import annotations

import dataclasses

from conftest import run_async

from daemon.core.observation import Element, Observation
from daemon.core.store import Episode, Reward, Step, Store
from trainer.data import Sample, capped, relabelled_samples
from trainer.relabel import as_instructions, relabel


def truth(task: str, success: bool = False, done: bool = True, episode_id: int = 1
          ) -> list[Reward]:
    return [Reward(episode_id, "ground_truth", float(success),
                   {"benchmark": "miniwob", "task": task, "seed": 3, "done": done})]


def click(index: int, name: str, ok: bool = True, element: int = 7) -> Step:
    return Step(1, index, {"action": "click", "id": element}, ok,
                target={"role": "button", "name": name, "tag": "button"})


def fill(index: int, text: str, field: str = "") -> Step:
    return Step(1, index, {"action": "fill", "id": 2, "text": text}, True,
                target={"role": "textbox", "name": field, "tag": "input"})


def select(index: int, option: str, field: str = "Colour") -> Step:
    return Step(1, index, {"action": "select_option", "id": 4, "option": option}, True,
                target={"role": "combobox", "name": field, "tag": "select"})


ENTER = ('Enter "Cristin" into the text field and press Submit.', [fill(0, "Cristin"),
                                                                    click(1, "Submit")])


def test_a_wrong_click_fulfilled_the_same_instruction_with_what_it_clicked():
    asked = Episode('Click on the "No" button.', "practice", id=1)
    seen = [('Click on the "Yes" button.', [click(0, "Yes", element=3)])]   # another seed
    found = relabel(asked, [click(0, "Cancel")], truth("click-button"), seen)
    assert (found.task, found.done_by) == ('Click on the "Cancel" button.', "Cancel")
    link = Episode('Click on the link "In".', "practice", id=1)
    assert relabel(link, [click(0, "turpis")], truth("click-link"),
                   [('Click on the link "amet".', [click(0, "amet")])]).task == \
        'Click on the link "turpis".'


def test_typed_text_then_submit_fulfilled_the_instruction_with_that_text():
    asked = Episode('Enter "Ada" into the text field and press Submit.', "practice", id=1)
    steps = [fill(0, "Bob"), click(1, "Submit")]
    assert relabel(asked, steps, truth("enter-text"), [ENTER]).task == \
        'Enter "Bob" into the text field and press Submit.'
    assert relabel(asked, [fill(0, "Bob")], truth("enter-text"), [ENTER]) is None  # no submit
    assert relabel(asked, [click(0, "Submit"), fill(1, "Bob")], truth("enter-text"),
                   [ENTER]) is None                                 # not the example's steps


def test_any_template_with_several_values_is_relabelled_by_what_each_step_chose():
    """A template no rule was written for: a form with a typed name and a chosen option."""
    task = 'Type "Ada" in Name, choose "Red" for Colour and press Send.'
    example = (task.replace("Ada", "Eve").replace("Red", "Blue"),
               [fill(0, "Eve", "Name"), select(1, "Blue"), click(2, "Send")])
    asked = Episode(task, "practice", id=1)
    steps = [fill(0, "Zed", "Name"), select(1, "Blue"), click(2, "Send")]
    found = relabel(asked, steps, truth("form"), [example])
    assert found.task == 'Type "Zed" in Name, choose "Blue" for Colour and press Send.'
    assert found.done_by == "Zed, Blue"
    typed_elsewhere = [fill(0, "Zed", "Other"), select(1, "Blue"), click(2, "Send")]
    assert relabel(asked, typed_elsewhere, truth("form"), [example]) is None


def test_what_is_not_relabelled():
    asked = Episode('Click on the "No" button.', "practice", id=1)
    steps, seen = [click(0, "Cancel")], [('Click on the "Yes" button.', [click(0, "Yes")])]
    assert relabel(asked, steps, truth("click-button", success=True), seen) is None
    assert relabel(asked, steps, truth("click-button", done=False), seen) is None  # not ended
    assert relabel(asked, steps, truth("click-button"), []) is None    # no success to go by
    assert relabel(asked, steps, [], seen) is None                     # no truth
    assert relabel(asked, [click(0, "No")], truth("click-button"), seen) is None  # as asked
    assert relabel(asked, [click(0, "Cancel", ok=False)], truth("click-button"), seen) is None
    assert relabel(asked, steps + [click(1, "OK")], truth("click-button"), seen) is None
    odd = Episode('Click on the "No" button. Now!', "practice", id=1)
    assert relabel(odd, steps, truth("click-button"), seen) is None    # not the template
    quoted = [click(0, 'say "hi"')]
    assert relabel(asked, quoted, truth("click-button"), seen) is None


def test_relabelled_samples_come_from_the_store_rendered_for_the_new_instruction(tmp_path):
    page = Observation("http://x/click-button.html", "t",
                       [Element(7, "button", "button", "Cancel")])

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            won = await store.start_episode(Episode('Click on the "Yes" button.', "practice"))
            await store.add_step(Step(won.id, 0, {"action": "click", "id": 7}, True,
                                      target={"role": "button", "name": "Yes"}))
            await store.finish_episode(won.id, "done")      # an earlier success: the example
            await store.add_reward(truth("click-button", True, episode_id=won.id)[0])
            episode = await store.start_episode(Episode('Click on the "No" button.',
                                                        "practice"))
            await store.add_step(Step(episode.id, 0, {"action": "click", "id": 7}, True,
                                      observation=dataclasses.asdict(page),
                                      target={"role": "button", "name": "Cancel",
                                              "tag": "button"}))
            await store.finish_episode(episode.id, "done")
            await store.add_reward(truth("click-button", episode_id=episode.id)[0])
            mine = await store.start_episode(Episode("cancel it", "practice",
                                                     start_url="https://shop.test/"))
            await store.add_step(Step(mine.id, 0, {"action": "click", "id": 7}, True,
                                      observation=dataclasses.asdict(page),
                                      target={"role": "button", "name": "Cancel",
                                              "tag": "button"}))
            await store.finish_episode(mine.id, "done")      # a user task: no ground truth
            return await relabelled_samples(store, lambda context: f"PROMPT {context.task}",
                                            after=won.id)
    samples = run_async(go())
    cancel = '{"action": "click", "target": "Cancel", "id": 7}'       # as the policy writes it
    assert [(s.prompt, s.completion, s.reward, s.relabelled, s.teacher) for s in samples] == [
        ('PROMPT Click on the "Cancel" button.', cancel, 1.0, True, True),
        ('PROMPT click "Cancel"', cancel, 1.0, True, True)]


def test_relabelled_samples_are_capped_to_their_share_newest_first():
    own = [Sample(i, 0, "p", "a", 1.0, "g") for i in range(6)]
    extra = [Sample(10 + i, 0, "p", "a", 1.0, "r", relabelled=True) for i in range(5)]
    mixed = capped(own, extra, 0.25)                    # 6 own → at most 2 relabelled
    assert [s.episode_id for s in mixed if s.relabelled] == [13, 14]
    assert capped(own, extra, 0.0) == own


FORM = Observation("https://shop.test/form", "Form", [
    Element(1, "input", "textbox", "Name", type="text", editable=True),
    Element(2, "select", "combobox", "Colour", options=["Red", "Blue"]),
    Element(3, "button", "button", "Send")])


def acted(*actions: dict) -> list[Step]:
    from daemon.agent.descriptors import describe
    return [Step(1, i, a, True, observation=dataclasses.asdict(FORM),
                 target=describe(FORM, a["id"]) if "id" in a else None)
            for i, a in enumerate(actions)]


def test_a_user_tasks_actions_become_instructions_the_scripted_policy_carries_out():
    from daemon.agent.policy import PastStep, ScriptedPolicy, StepContext
    from daemon.core.actions import Action
    steps = acted({"action": "fill", "id": 1, "text": "Ada"},
                  {"action": "select_option", "id": 2, "option": "Blue"},
                  {"action": "press", "key": "Tab"}, {"action": "click", "id": 3},
                  {"action": "done"})
    text = as_instructions(steps)
    assert text == 'fill "Name" with "Ada"; select "Blue" in "Colour"; press Tab; click "Send"'

    async def replay() -> list[dict]:
        policy, history, done = ScriptedPolicy(), [], []
        for _ in range(4):
            decision = await policy.decide(StepContext(text, FORM, list(history)))
            done.append(decision.action.to_json())
            history.append(PastStep(decision.action, True))
        return done
    assert run_async(replay()) == [s.action for s in steps[:4]]     # the same actions back
    assert Action.parse(steps[4].action).name == "done"


def test_actions_that_cannot_be_written_as_instructions_leave_the_episode_out():
    assert as_instructions(acted({"action": "fill", "id": 1, "text": "•••"})) is None  # secret
    assert as_instructions(acted({"action": "fill", "id": 1, "text": 'say "hi"'})) is None
    assert as_instructions(acted({"action": "give_up", "reason": "x"})) is None
    assert as_instructions(acted({"action": "done"})) is None                  # nothing done
    unnamed = [Step(1, 0, {"action": "click", "id": 9}, True, target={"role": "button"})]
    assert as_instructions(unnamed) is None
    failed = acted({"action": "click", "id": 3})
    failed[0].ok = False
    assert as_instructions(failed) is None
