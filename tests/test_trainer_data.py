"""Training data from the store: samples, groups, advantages, zero-variance filtering."""

from __future__ import annotations

import json

import pytest
from conftest import nightloop, run_async

from daemon.agent.policy import Sampled
from daemon.core.observation import MASK
from daemon.core.settings import ConfigError
from daemon.core.store import Episode, Reward, Step, Store
from trainer.config import TrainConfig
from trainer.data import (
    Sample,
    advantages,
    grpo_samples,
    load_samples,
    nights_since,
    rft_samples,
    sft_samples,
)

CONFIG = TrainConfig()
DRAWN = Sampled(1.0, [5, 2], [-0.1, 0.0], [[5, 6], 1])     # a sampler's record of two tokens


def sample(episode_id, reward, group, index=0, sampled=DRAWN):
    return Sample(episode_id, index, "prompt", '{"action":"done"}', reward, group,
                  sampled=sampled)


def test_advantages_are_group_normalised():
    values = advantages([1.0, 0.0, 0.0, 1.0], eps=0.0)
    assert values == [1.0, -1.0, -1.0, 1.0]
    assert advantages([0.5, 0.5, 0.5], eps=1e-4) is None            # no variance, no signal
    assert advantages([1.0], eps=1e-4) is None
    assert sum(advantages([0.2, 0.9, -1.0], eps=1e-4)) == pytest.approx(0.0, abs=1e-9)
    # Continuous (judge) rewards are centred, not divided by the std (Dr. GRPO).
    assert advantages([0.2, 0.4], eps=1e-4) == pytest.approx([-0.1, 0.1])


def test_grpo_shares_a_trajectorys_advantage_and_drops_flat_or_lonely_groups():
    samples = [
        sample(1, 1.0, "a", 0), sample(1, 1.0, "a", 1), sample(2, -1.0, "a"),   # informative
        sample(3, 0.5, "b"), sample(4, 0.5, "b"),                               # flat
        sample(5, 1.0, "c"),                                                    # alone
    ]
    kept = grpo_samples(samples, CONFIG)
    assert [(s.episode_id, s.index) for s in kept] == [(1, 0), (1, 1), (2, 0)]
    assert kept[0].advantage == kept[1].advantage > 0 > kept[2].advantage
    assert kept[0].advantage == pytest.approx(1.0, abs=1e-3)


def test_sft_keeps_only_good_episodes():
    samples = [sample(1, 1.0, "a"), sample(2, 0.2, "a"), sample(3, 0.5, "b")]
    assert [s.episode_id for s in sft_samples(samples, CONFIG)] == [1, 3]


def test_samples_come_from_model_steps_with_the_outcome_reward(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            for seed, (truth, judged) in enumerate([(1.0, 0.3), (-1.0, 0.6)]):
                e = await store.start_episode(Episode("Click OK", "practice",
                                                      start_url="http://h:1/miniwob/x.html"))
                await store.add_step(Step(e.id, 0, {"action": "click", "id": 1}, True,
                                          prompt="P", raw_output='{"action":"click","id":1}',
                                          sampled=DRAWN.to_json()))
                await store.add_step(Step(e.id, 1, {"action": "click", "id": 9}, False,
                                          prompt="P", raw_output="x", invalid=True))
                await store.add_step(Step(e.id, 2, {"action": "done"}, True, mode="replayed"))
                await store.add_step(Step(e.id, 3, {"action": "fill", "id": 2, "text": MASK},
                                          True, prompt="P", sampled=DRAWN.to_json(),
                                          raw_output=f'{{"action":"fill","id":2,"text":"{MASK}"}}'))
                await store.finish_episode(e.id, "done")
                await store.add_reward(Reward(e.id, "ground_truth", truth, {
                    "benchmark": "miniwob", "task": "x", "seed": 7}))
                await store.add_reward(Reward(e.id, "judge", judged))
            await store.add_reward(Reward(2, "user", 1.0))       # the user's word wins
            return (await load_samples(store, CONFIG),
                    await load_samples(store, TrainConfig(reward="ground_truth")),
                    await load_samples(store, TrainConfig(reward="judge")),
                    await load_samples(store, CONFIG, after=1),
                    await load_samples(store, TrainConfig(reward="ground_truth"),
                                       successes_only=True))
    outcome, truth, judged, later, successes = run_async(go())
    assert [s.episode_id for s in successes] == [1]         # the failure is never read
    assert [s.episode_id for s in later] == [2]             # a cycle's own episodes only
    # ground truth beats the judge where it exists; the user's word beats both; a secret's
    # masked fill teaches nothing (not the text typed) and gives no sample
    assert [(s.episode_id, s.index, s.reward) for s in outcome] == [(1, 0, 1.0), (2, 0, 1.0)]
    assert [s.reward for s in truth] == [1.0, -1.0]
    assert [s.reward for s in judged] == [0.3, 1.0]
    # The judge's score is no absolute SFT threshold (uncalibrated); the user's word is.
    assert [s.verified for s in judged] == [False, True]
    assert [s.episode_id for s in sft_samples(judged, CONFIG)] == [2]
    trusting = TrainConfig(sft_threshold=0.2, sft_trusts_judge=True)
    assert [s.episode_id for s in sft_samples(judged, trusting)] == [1, 2]
    assert {str(s.group) for s in outcome} == {"miniwob:x:7"}
    assert all(s.sampled == DRAWN for s in outcome)          # the sampler's record comes along


def test_a_step_written_before_actions_named_their_element_is_written_anew_for_sft(tmp_path):
    page = {"url": "http://h/", "elements": [{"id": 1, "tag": "button", "role": "button",
                                              "name": "OK"}]}

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            e = await store.start_episode(Episode("Click OK", "practice", policy="llm:m"))
            await store.add_step(Step(e.id, 0, {"action": "click", "id": 1}, True, prompt="P",
                                      raw_output='{"action":"click","id":1}', observation=page,
                                      sampled=DRAWN.to_json()))
            await store.add_step(Step(e.id, 1, {"action": "click", "id": 1}, True, prompt="P",
                                      raw_output='{"action":"click","target":"OK","id":1}',
                                      observation=page, sampled=DRAWN.to_json()))
            await store.finish_episode(e.id, "done")
            await store.add_reward(Reward(e.id, "user", 1.0))
            return await load_samples(store, CONFIG)
    old, new = run_async(go())
    assert (old.completion, old.sampled) == ('{"action": "click", "target": "OK", "id": 1}', None)
    assert (new.completion, new.sampled) == ('{"action":"click","target":"OK","id":1}', DRAWN)


@pytest.mark.process
def test_a_training_config_file_overrides_and_refuses_what_it_does_not_know(home, tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('practice_k = 2\nreward = "judge"\ntarget_modules = ["q_proj"]\n')
    config = TrainConfig.from_toml(good)
    assert (config.practice_k, config.reward, config.target_modules) == (2, "judge", ("q_proj",))
    for text, error in (("practice_kk = 2\n", "unknown training setting.*practice_kk"),
                        ('reward = "vibes"\n', "reward must be one of outcome, judge, ground"),
                        ("lora_r = 0\n", "bad.toml: lora_r must be from 1 to 512, got 0"),
                        ('sft_lr = "fast"\n', "sft_lr must be a number, got 'fast'"),
                        ("target_modules = [1]\n", "target_modules must be a list of strings"),
                        ("gate_share = 0.5\n", "judge_share \\+ train_share \\+ gate_share must"),
                        ("practice_k = \n", "cannot read training config")):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=error):
            TrainConfig.from_toml(bad)
    run = nightloop("train", "--now", "--config", str(bad), "--db", str(home / "s.db"),
                    check=False)
    assert run.returncode == 1 and "cannot read training config" in run.stderr
    assert not (home / "s.db").exists()                 # refused before touching anything


@pytest.mark.process
def test_train_refuses_tasks_that_are_not_miniwob_tasks_before_touching_anything(home):
    for tasks, error in (("click-button,bogus", "unknown MiniWoB++ task 'bogus'"),
                         (" , ", "no MiniWoB++ task named")):
        run = nightloop("train", "--now", "--tasks", tasks, "--db", str(home / "s.db"),
                        check=False)
        assert run.returncode == 1 and error in run.stderr, run.stderr
    run = nightloop("train", "--now", "--sites", "shop,casino", "--db", str(home / "s.db"),
                    check=False)
    assert run.returncode == 2 and "unknown template 'casino'" in run.stderr, run.stderr
    assert not (home / "s.db").exists()


def test_attempts_of_a_benchmark_task_group_by_task_and_seed_and_a_users_by_task_and_page():
    from trainer.data import Group, group_key
    mug = Episode("Buy a mug", "practice", start_url="http://127.0.0.1:9/x")
    for benchmark, task in (("miniwob", "click-button"), ("sites", "shop.buy")):
        truth = Reward(1, "ground_truth", 1.0, {"benchmark": benchmark, "task": task, "seed": 4})
        assert group_key(mug, [truth]) == Group(task, benchmark, 4)
        assert str(group_key(mug, [truth])) == f"{benchmark}:{task}:4"      # as exported
    # A user's task is never taken for a benchmark's, whatever its words (the group was a
    # string once, and told apart by its shape)
    yours = group_key(Episode("miniwob:click-button:4", "toolbar",
                              start_url="http://127.0.0.1:9/x"), [])
    assert yours.benchmark is None and yours.task == "miniwob:click-button:4"


def test_only_the_policys_own_recorded_draws_enter_a_grpo_group():
    samples = [Sample(1, 0, "p", "a", 1.0, "g", teacher=True), sample(2, 0.0, "g"),
               sample(3, 1.0, "g"), sample(4, 1.0, "g", sampled=None)]   # stored before records
    assert {s.episode_id for s in grpo_samples(samples, CONFIG)} == {2, 3}
    assert grpo_samples(samples[:2], CONFIG) == []          # one policy attempt: no group
    assert grpo_samples([samples[1], samples[3]], CONFIG) == []


def test_rft_keeps_the_shortest_success_of_each_group_newest_groups_first():
    def episode(episode_id: int, group: str, steps: int, reward: float) -> list[Sample]:
        return [Sample(episode_id, i, "p", "a", reward, group) for i in range(steps)]
    samples = (episode(1, "a", 3, 1.0) + episode(2, "a", 1, 1.0) + episode(3, "a", 1, 1.0)
               + episode(4, "a", 1, 0.0) + episode(5, "b", 2, 1.0) + episode(6, "c", 1, 0.0))
    assert [(s.episode_id, s.index) for s in rft_samples(samples, cap=10)] == [
        (5, 0), (5, 1), (3, 0)]              # b's only success; a's shortest (newest of ties)
    assert {s.episode_id for s in rft_samples(samples, cap=1)} == {5}
    # Old nights fade: with every success 3 nights old, about decay^3 of them stay.
    many = [s for e in range(1000) for s in episode(e, f"g{e}", 1, 1.0)]
    kept = rft_samples(many, cap=1000, age=lambda e: 3, decay=0.5)
    assert 90 <= len(kept) <= 160 and kept == rft_samples(many, 1000, lambda e: 3, 0.5)
    assert len(rft_samples(many, 1000, lambda e: 0, 0.5)) == 1000   # tonight's all stay
    age = nights_since([10, 25, 40])        # three cycles; tonight's began after episode 40
    assert [age(e) for e in (3, 10, 11, 25, 30, 41)] == [3, 3, 2, 2, 1, 0]


def test_sft_leaves_out_the_groups_the_policy_already_solves_and_copies_one_success_each(
        tmp_path):
    from trainer.data import mastered, practice_outcomes, solved, training_set

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            # x seed 1: solved twice; x seed 2: one of two; x seed 3: one attempt, solved;
            # y seed 1: solved twice (every group of y solved: y is mastered)
            for task, seed, truth, policy in [
                    ("x", 1, 1.0, "llm:m"), ("x", 1, 1.0, "llm:m"), ("x", 2, 1.0, "llm:m"),
                    ("x", 2, 0.0, "llm:m"), ("x", 3, 1.0, "llm:m"), ("y", 1, 1.0, "llm:m"),
                    ("y", 1, 1.0, "llm:m"), ("x", 2, 1.0, "oracle")]:   # not the policy's
                e = await store.start_episode(Episode("Click OK", "practice", policy=policy,
                                                      start_url="http://h:1/miniwob/x.html"))
                await store.add_step(Step(e.id, 0, {"action": "click", "id": 1}, True,
                                          prompt="P", raw_output='{"action":"click","id":1}'))
                await store.finish_episode(e.id, "done")
                await store.add_reward(Reward(e.id, "ground_truth", truth, {
                    "benchmark": "miniwob", "task": task, "seed": seed}))
            kept, skipped = [
                [s.group for s in (await training_set(
                    store, TrainConfig(relabel_share=0.0, sft_skip_solved=skip),
                    lambda context: "P", after=0)).sft] for skip in (False, True)]
            return (kept, skipped, await practice_outcomes(store, 0),
                    await practice_outcomes(store, 2, before=6),
                    await practice_outcomes(store, 0, skip=lambda e: e.id == 1))
    kept, skipped, outcomes, between, without_first = run_async(go())
    # one sample per group however often it was solved: the shortest success
    assert sorted(map(str, kept)) == ["miniwob:x:1", "miniwob:x:2", "miniwob:x:3",
                                      "miniwob:y:1"]
    assert sorted(map(str, skipped)) == ["miniwob:x:2", "miniwob:x:3"]   # one attempt: proves
    assert set(map(str, solved(outcomes))) == {"miniwob:x:1", "miniwob:y:1"}      # nothing
    assert mastered(outcomes) == {"miniwob:y"}
    assert {str(g): sorted(won) for g, won in between.items()} == {
        "miniwob:x:2": [False, True], "miniwob:x:3": [True]}
    assert set(map(str, solved(without_first))) == {"miniwob:y:1"}


def test_a_thumbs_up_episode_that_never_said_done_ends_its_sequence_with_done(tmp_path):
    page = {"url": "http://h/", "title": "Saved", "elements": [], "text": "Saved!"}

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            scroll = {"action": "scroll", "direction": "down"}
            relative = {"action": "goto", "url": "/saved"}     # stored before goto took only
            for verdict, status, actions in ((1.0, "step_limit", [scroll]),    # http(s) URLs
                                             (-1.0, "step_limit", [scroll]),
                                             (1.0, "done", [{"action": "done"}]),
                                             (1.0, "step_limit", [relative])):
                e = await store.start_episode(Episode("Save it", "toolbar"))
                for i, action in enumerate(actions):
                    await store.add_step(Step(e.id, i, action, True, prompt="P",
                                              raw_output=json.dumps(action), observation=page))
                await store.finish_episode(e.id, status, final_observation=page
                                           if status == "step_limit" else None)
                await store.add_reward(Reward(e.id, "user", verdict))
            return await load_samples(store, CONFIG, render_prompt=lambda c: c.observation.text)
    samples = run_async(go())
    endings = [s for s in samples if s.completion == '{"action": "done"}' and s.teacher]
    assert [(s.episode_id, s.index, s.prompt, s.reward) for s in endings] == [
        (1, 1, "Saved!", 1.0), (4, 1, "Saved!", 1.0)]  # not the thumbs-down one, not one that
    # said done; an old row today's validation would refuse is read as it was stored


def test_a_servers_episode_is_rerendered_for_the_local_policy(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            e = await store.start_episode(Episode("Click OK", "toolbar", policy="server:big"))
            await store.add_step(Step(e.id, 0, {"action": "click", "id": 1}, True,
                                      prompt="### System\nYou are nightloop",
                                      raw_output='{"action": "click", "id": 1}',
                                      observation={"url": "http://h/", "elements": [
                                          {"id": 1, "tag": "button", "role": "button",
                                           "name": "OK"}]}))
            await store.finish_episode(e.id, "done")
            await store.add_reward(Reward.verdict(e.id, True, "popup"))
            return await load_samples(store, CONFIG, render_prompt=lambda c: f"LOCAL {c.task}")
    [sample] = run_async(go())
    assert sample.prompt == "LOCAL Click OK" and sample.teacher        # not the server's text
    assert sample.completion == '{"action": "click", "target": "OK", "id": 1}'  # as written


def test_a_calibrated_judge_is_trusted_for_sft_only_at_its_stated_precision(tmp_path):
    async def go(config):
        async with await Store.open(tmp_path / "s.db") as store:
            if not await store.episodes():
                e = await store.start_episode(Episode("Click OK", "toolbar"))
                await store.add_step(Step(e.id, 0, {"action": "click", "id": 1}, True,
                                          prompt="P", raw_output='{"action":"click","id":1}'))
                await store.finish_episode(e.id, "done")
                await store.add_reward(Reward(e.id, "judge", 0.8, {
                    "components": {"calibrated": 0.9, "progress": 0.2},
                    "calibrated": {"probability": 0.9,
                                   "stated_precision": {"0.5": 0.7, "0.75": 0.92}}}))
            return await load_samples(store, config)
    [strict] = run_async(go(TrainConfig(judge_sft_precision=0.95)))
    assert (strict.reward, strict.verified) == (0.8, False)         # ranks within groups only
    # SFT's threshold 0.4 means p >= 0.7: read at 0.5, where the fit is right 70% of the time
    [lower] = run_async(go(TrainConfig(sft_threshold=0.4)))
    assert not lower.verified
    [trusting] = run_async(go(TrainConfig()))           # p >= 0.75: 92% right, above 0.9
    assert trusting.reward == 0.8 and trusting.verified
    assert [s.episode_id for s in sft_samples([trusting], CONFIG)] == [1]


def test_a_templated_benchmarks_password_is_rebuilt_for_training_and_never_stored(tmp_path):
    """The store masks a typed password everywhere (task text included); a skills episode's
    task and password come back from its template and seed for its teacher samples, a MiniWoB++
    one's (the page drew its words) stay left out."""
    from daemon.tasks.skills import SKILLS
    task = SKILLS["skills.login"].task(3)
    user, secret = task.values["user"], task.values["password"]
    page = {"url": "http://h/", "elements": [
        {"id": 1, "tag": "input", "role": "textbox", "name": "Username", "editable": True},
        {"id": 2, "tag": "input", "role": "textbox", "name": "Password", "type": "password",
         "editable": True},
        {"id": 3, "tag": "button", "role": "button", "name": "Sign in"}]}
    actions = [{"action": "fill", "id": 1, "text": user},
               {"action": "fill", "id": 2, "text": MASK},       # as privacy.py records it
               {"action": "click", "id": 3}, {"action": "done"}]

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            for benchmark in ("skills", "miniwob"):
                e = await store.start_episode(Episode(task.task, "practice", policy="teacher"))
                for i, action in enumerate(actions):
                    await store.add_step(Step(e.id, i, action, True, observation=page))
                await store.redact(e.id, secret, MASK)
                await store.finish_episode(e.id, "done")
                await store.add_reward(Reward(e.id, "ground_truth", 1.0, {
                    "benchmark": benchmark, "task": "skills.login", "seed": 3}))
            return await load_samples(store, CONFIG,
                                      render_prompt=lambda c: f"{c.task} | {c.history[-1:]}")
    samples = run_async(go())
    skills = [s for s in samples if s.episode_id == 1]
    miniwob = [s for s in samples if s.episode_id == 2]
    assert [json.loads(s.completion).get("text") for s in skills] == [user, secret, None, None]
    assert all(s.prompt.startswith(task.task) for s in skills)      # the task as written
    assert MASK in skills[2].prompt and secret not in skills[2].prompt.split(" | ")[1]
    assert [json.loads(s.completion).get("text") for s in miniwob] == [user, None, None]
    assert all(MASK in s.prompt for s in miniwob)
    assert secret.encode() not in (tmp_path / "s.db").read_bytes()
