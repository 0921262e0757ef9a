"""Hindsight relabelling on its own: which failed MiniWoB++ episodes fulfilled another
instruction of their template, and which did not."""

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


def click(index: int, name: str, ok: bool = True) -> Step:
    return Step(1, index, {"action": "click", "id": 7}, ok,
                target={"role": "button", "name": name, "tag": "button"})


def fill(index: int, text: str) -> Step:
    return Step(1, index, {"action": "fill", "id": 2, "text": text}, True)


def test_a_wrong_click_fulfilled_the_same_instruction_with_what_it_clicked():
    asked = Episode('Click on the "No" button.', "practice", id=1)
    found = relabel(asked, [click(0, "Cancel")], truth("click-button"))
    assert (found.task, found.done_by) == ('Click on the "Cancel" button.', "Cancel")
    link = Episode('Click on the link "In".', "practice", id=1)
    assert relabel(link, [click(0, "turpis")], truth("click-link")).task == \
        'Click on the link "turpis".'


def test_typed_text_then_submit_fulfilled_the_instruction_with_that_text():
    asked = Episode('Enter "Cristin" into the text field and press Submit.', "practice", id=1)
    steps = [fill(0, "Ada"), click(1, "Submit")]
    assert relabel(asked, steps, truth("enter-text")).task == \
        'Enter "Ada" into the text field and press Submit.'
    assert relabel(asked, [fill(0, "Ada")] + [click(1, "Cancel")], truth("enter-text")) is None


def test_what_is_not_relabelled():
    asked = Episode('Click on the "No" button.', "practice", id=1)
    steps = [click(0, "Cancel")]
    assert relabel(asked, steps, truth("click-button", success=True)) is None    # succeeded
    assert relabel(asked, steps, truth("click-button", done=False)) is None     # never ended
    assert relabel(asked, steps, truth("click-tab")) is None                    # no rule
    assert relabel(asked, steps, []) is None                                    # no truth
    assert relabel(asked, [click(0, "No")], truth("click-button")) is None      # same value
    assert relabel(asked, [click(0, "Cancel", ok=False)], truth("click-button")) is None
    odd = Episode('Click on the "No" button. Now!', "practice", id=1)
    assert relabel(odd, steps, truth("click-button")) is None                   # not the template


def test_relabelled_samples_come_from_the_store_rendered_for_the_new_instruction(tmp_path):
    page = Observation("http://x/click-button.html", "t",
                       [Element(7, "button", "button", "Cancel")])

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
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
            return await relabelled_samples(store, lambda context: f"PROMPT {context.task}")
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
