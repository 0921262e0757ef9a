"""A demonstration's variants: fresh values everywhere the episode holds them, fresh ids, and
as many per night as `demo_passes` allows."""

from __future__ import annotations

import json
import random
import re

from conftest import run_async

from daemon.core.observation import Observation
from daemon.core.store import Episode, Reward, Step, Store
from trainer.augment import fresh_value, variants
from trainer.config import TrainConfig
from trainer.data import load_samples

TASK = 'Book for Ada Lovelace on 2027-08-06 at 18:30: seat "window"'
PAGE = {"url": "http://trains.test/", "title": "Trains", "text": "Trains for Ada Lovelace",
        "elements": [
            {"id": 3, "tag": "input", "role": "textbox", "name": "Passenger", "editable": True},
            {"id": 4, "tag": "input", "role": "textbox", "name": "Date", "editable": True},
            {"id": 5, "tag": "select", "role": "combobox", "name": "Seat",
             "options": ["aisle", "window"]},
            {"id": 6, "tag": "button", "role": "button", "name": "Choose 18:30"},
            {"id": 7, "tag": "button", "role": "button", "name": "Choose 09:15"}]}
STEPS = [Step(1, i, action, True, observation=PAGE, mode="demonstration",
              target={"role": "button", "tag": "button", "name": name} if name else None)
         for i, (action, name) in enumerate([
             ({"action": "fill", "id": 3, "text": "Ada Lovelace"}, None),
             ({"action": "fill", "id": 4, "text": "2027-08-06"}, None),
             ({"action": "select_option", "id": 5, "option": "window"}, None),
             ({"action": "click", "id": 6}, "Choose 18:30"),
             ({"action": "done"}, None)])]
DEMO = Episode(TASK, "demonstration", id=1)


def test_fresh_values_keep_their_shape():
    rng = random.Random(3)
    for _ in range(20):
        assert re.fullmatch(r"2027-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])",
                            fresh_value("2027-08-06", rng))
        hours, minutes = map(int, fresh_value("18:30", rng).split(":"))
        assert 0 <= hours < 24 and minutes in (0, 15, 30, 45)
        order = fresh_value("A-448756", rng)
        assert re.fullmatch(r"[A-Z]-[1-9]\d{5}", order), order
        name = fresh_value("Ada Lovelace", rng)
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", name) and name != "Ada Lovelace"


def test_a_variant_changes_each_value_everywhere_at_once_and_renumbers_ids():
    (task, steps), = variants(DEMO, STEPS, 1, seed=5)
    fill, date, seat, choose, done = steps
    name, day, option = fill.action["text"], date.action["text"], seat.action["option"]
    assert task.task == f'Book for {name} on {day} at {choose.target["name"][7:]}: ' \
                        f'seat "{option}"'
    for old in ("Ada Lovelace", "2027-08-06", "18:30", "window"):
        assert old not in json.dumps([task.task] + [dataclasses_json(s) for s in steps])
    page = Observation.from_json(choose.observation)
    assert f"Trains for {name}" == page.text                  # the page says the new name too
    assert page.element(seat.action["id"]).options == ["aisle", option]
    assert page.element(choose.action["id"]).name == choose.target["name"]
    assert page.element(fill.action["id"]).name == "Passenger"      # ids moved together
    assert {e.id for e in page.elements} != {3, 4, 5, 6, 7}
    assert "Choose 09:15" in [e.name for e in page.elements]        # not a value: unchanged
    assert done.action == {"action": "done"}
    assert variants(DEMO, STEPS, 1, seed=5)[0][0].task == task.task     # reproducible


def dataclasses_json(step: Step) -> dict:
    return {"action": step.action, "target": step.target, "observation": step.observation}


def test_a_good_demonstration_gives_as_many_variants_as_demo_passes_allow(tmp_path):
    async def go(config):
        async with await Store.open(tmp_path / "s.db") as store:
            if not await store.episodes():
                for good in (1.0, -1.0):
                    e = await store.start_episode(Episode(TASK, "demonstration"))
                    for s in STEPS:
                        await store.add_step(Step(e.id, s.index, s.action, True,
                                                  observation=PAGE, target=s.target))
                    await store.finish_episode(e.id, "done")
                    await store.add_reward(Reward(e.id, "user", good))
            return await load_samples(store, config, render_prompt=lambda c: c.task)
    samples = run_async(go(TrainConfig(demo_passes=6, sft_epochs=2)))
    good = [s for s in samples if s.reward > 0]
    assert [s.variant for s in good] == [0] * 5 + [1] * 5 + [2] * 5     # 6 passes / 2 epochs
    assert {s.variant for s in samples if s.reward < 0} == {0}          # a failed one: as is
    for s in good:
        assert all(value in s.prompt for value in re.findall(r'"text": "([^"]+)"', s.completion))
    assert len({s.prompt for s in good}) == 3                           # three tasks
    assert {s.variant for s in run_async(go(TrainConfig(demo_passes=2, sft_epochs=2)))} == {0}


def test_self_imitation_copies_a_success_with_other_ids_and_chooses_by_its_own_length(tmp_path):
    """`rft_id_variants`: a success the policy decided comes with copies whose pages number
    their elements otherwise (prompts rendered anew), against habits like always clicking [1];
    the shortest attempt is still chosen by the steps it really took."""
    from trainer.data import rft_samples

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            for n_steps in (2, 1):
                e = await store.start_episode(Episode("Pick the seat", "practice"))
                for i in range(n_steps):
                    action = {"action": "click", "id": 6}
                    await store.add_step(Step(e.id, i, action, True, prompt="P",
                                              raw_output=json.dumps(action), observation=PAGE))
                await store.finish_episode(e.id, "done")
                await store.add_reward(Reward(e.id, "ground_truth", 1.0))
            return await load_samples(store, TrainConfig(reward="ground_truth"),
                                      render_prompt=lambda c: c.observation.render(),
                                      successes_only=True, id_variants=2)
    samples = run_async(go())
    copies = [s for s in samples if s.variant > 0]
    assert [(s.episode_id, s.variant) for s in copies] == [(1, 1), (1, 1), (1, 2), (1, 2),
                                                           (2, 1), (2, 2)]
    for s in copies:
        chosen = json.loads(s.completion)["id"]
        assert chosen != 6 and f'[{chosen}] button "Choose 18:30"' in s.prompt
    kept = rft_samples(samples, cap=10)
    assert {s.episode_id for s in kept} == {2} and sorted(s.variant for s in kept) == [0, 1, 2]


def test_a_demonstration_is_trained_on_for_demo_nights_then_left_to_the_adapter():
    from trainer.data import demonstrations_learnt, nights_since
    age = nights_since([10, 20, 30])            # three cycles ran, after episodes 10, 20, 30
    learnt = demonstrations_learnt(age, 2)
    assert [learnt(Episode("t", "demonstration", id=i)) for i in (5, 15, 25, 35)] == [
        True, True, False, False]               # 3, 2 nights old: done; 1, 0: still trained
    assert not learnt(Episode("t", "toolbar", id=5))
