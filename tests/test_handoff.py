"""`nightloop train export`: what a cycle would learn from, as files TRL's trainers load."""

from __future__ import annotations

import json

import pytest
from conftest import nightloop, run_async

from daemon.agent.policy import Sampled
from daemon.core.store import Episode, Reward, Step, Store

DRAWN = Sampled(1.0, [5, 2], [-0.1, 0.0], [[5, 6], 1])


def seed_store(db) -> None:
    """Two practice attempts of one MiniWoB++ task and seed (a success, a failure), and a
    user's thumbs-up episode."""
    async def go():
        async with await Store.open(db) as store:
            for truth, target in ((1.0, 1), (0.0, 9)):
                e = await store.start_episode(Episode("Click OK", "practice",
                                                      start_url="http://h:1/miniwob/x.html"))
                output = json.dumps({"action": "click", "id": target})
                await store.add_step(Step(e.id, 0, {"action": "click", "id": target}, True,
                                          prompt="<|im_start|>user\nClick OK", raw_output=output,
                                          sampled=DRAWN.to_json()))
                await store.finish_episode(e.id, "done")
                await store.add_reward(Reward(e.id, "ground_truth", truth, {
                    "benchmark": "miniwob", "task": "x", "seed": 7}))
            e = await store.start_episode(Episode("Say hi", "toolbar"))
            await store.add_step(Step(e.id, 0, {"action": "answer", "text": "hi"}, True,
                                      prompt="<|im_start|>user\nSay hi",
                                      raw_output='{"action": "answer", "text": "hi"}'))
            await store.finish_episode(e.id, "done")
            await store.add_reward(Reward.verdict(e.id, True, "popup"))
    run_async(go())


@pytest.mark.process
def test_the_export_is_what_trls_trainers_load(home, tmp_path):
    import datasets
    import trl
    db, out = home / "s.db", tmp_path / "data"
    seed_store(db)
    printed = nightloop("train", "export", "--out", str(out), "--db", str(db)).stdout
    assert printed.strip() == (f"wrote 2 SFT samples and 2 GRPO samples (1 groups) to {out}/ "
                               "(format trl)")
    sft = datasets.load_dataset("json", data_files=str(out / "sft.jsonl"), split="train")
    assert set(sft.column_names) >= {"prompt", "completion"}
    assert sorted(sft["completion"]) == ['{"action": "answer", "text": "hi"}',
                                         '{"action": "click", "id": 1}']   # the good ones
    grpo = datasets.load_dataset("json", data_files=str(out / "grpo.jsonl"), split="train")
    assert grpo.column_names == ["prompt", "completion", "reward", "advantage", "group"]
    assert sorted(zip(grpo["reward"], grpo["group"])) == [(0.0, "miniwob:x:7"),
                                                          (1.0, "miniwob:x:7")]
    assert sorted(grpo["advantage"])[0] < 0 < sorted(grpo["advantage"])[1]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["base_model"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and meta["groups"] == 1
    assert oct((out / "sft.jsonl").stat().st_mode & 0o777) == "0o600"
    # TRL's own configs for these columns (training itself needs a GPU's time, not a test's)
    cpu = {"use_cpu": True, "bf16": False, "report_to": []}       # a GPU keeps the defaults
    config = trl.SFTConfig(output_dir=str(tmp_path / "sft"), completion_only_loss=True, **cpu)
    assert config.completion_only_loss and config.dataset_text_field == "text"
    assert trl.GRPOConfig(output_dir=str(tmp_path / "grpo"), num_generations=2,
                          per_device_train_batch_size=2, **cpu).num_generations == 2

    nightloop("train", "export", "--format", "jsonl", "--out", str(out), "--db", str(db))
    row = json.loads((out / "grpo.jsonl").read_text().splitlines()[0])
    assert row["sampled"] == DRAWN.to_json() and row["episode_id"] in (1, 2)


@pytest.mark.process
def test_the_export_leaves_out_the_held_out_tasks_as_the_cycle_does(home, tmp_path):
    """An adapter trained on an export is gated like the cycle's own, on the user's held-out
    tasks: so the export must not hold them (one training window for both)."""
    from daemon.core.store import PracticeRule
    from daemon.tasks.practice import PracticeTask
    db, out = home / "s.db", tmp_path / "data"
    seed_store(db)
    url, tasks = "https://shop.example/", ("Order pizza number 6", "Order pizza number 7")
    assert [PracticeTask(t, url, 0).held_out for t in tasks] == [True, False]

    async def go():
        async with await Store.open(db) as store:
            await store.allow_practice(PracticeRule("shop.example"))
            for task in tasks:
                e = await store.start_episode(Episode(task, "toolbar", start_url=url))
                await store.add_step(Step(e.id, 0, {"action": "done"}, True, url=url,
                                          prompt=f"<|im_start|>user\n{task}",
                                          raw_output='{"action": "done"}'))
                await store.finish_episode(e.id, "done")
                await store.add_reward(Reward.verdict(e.id, True, "popup"))
    run_async(go())
    nightloop("train", "export", "--format", "jsonl", "--out", str(out), "--db", str(db))
    prompts = [json.loads(line)["prompt"] for line in (out / "sft.jsonl").read_text().splitlines()]
    assert any(tasks[1] in p for p in prompts) and not any(tasks[0] in p for p in prompts)
    assert json.loads((out / "meta.json").read_text())["held_out_tasks"] == [tasks[0]]


@pytest.mark.process
def test_train_without_now_or_a_subcommand_says_what_it_needs(home):
    result = nightloop("train", check=False)
    assert result.returncode == 2
    assert "say --now to run a cycle now (or `nightloop train export`)" in result.stderr


def peft_folder(path):
    """A LoRA adapter as TRL/peft save it, for the shipped model (random, not trained)."""
    from daemon.core.models import shipped_model
    from trainer.config import TrainConfig
    from trainer.model import add_lora, load_base
    model, _, _ = load_base(shipped_model())
    add_lora(model, TrainConfig(), init=False).save_pretrained(str(path))
    return path


@pytest.mark.slow                    # two and a half minutes: the gate runs both adapters
@pytest.mark.browser
def test_an_adapter_trained_elsewhere_is_imported_and_gated_like_the_cycles_own(home, tmp_path):
    db = home / "s.db"
    folder = peft_folder(tmp_path / "trl-out")
    bad = nightloop("adapters", "import", str(tmp_path), "--db", str(db), check=False)
    assert bad.returncode == 1 and "holds no peft adapter (no adapter_config.json)" in bad.stderr

    said = nightloop("adapters", "import", str(folder), "--no-gate", "--db", str(db)).stderr
    assert "adapter 2: imported from" in said and "the next `nightloop train --now` gates" in said
    adapter, shipped = json.loads(nightloop("adapters", "list", "--json", "--db", str(db)).stdout)
    assert adapter["status"] == "candidate" and adapter["parent"] == shipped["id"] == 1
    assert adapter["config"] == {"imported_from": str(folder.resolve())}
    assert shipped["config"]["source"] == "shipped"     # the new store's serving adapter
    from llama_cpp import Llama

    from daemon.core.models import shipped_model
    Llama(model_path=str(shipped_model()), lora_path=adapter["path"], n_ctx=256, verbose=False)

    gated = nightloop("adapters", "import", str(folder), "--tasks", "click-test",
                      "--gate-seeds", "1", "--budget", "4", "--json", "--db", str(db),
                      timeout=600)
    result = json.loads(gated.stdout)
    assert result["resumed"] == "gate" and result["adapter_id"] == 3
    assert result["gate"]["candidate"] is not None and result["practice_episodes"] == 0
    statuses = {a["id"]: a["status"] for a in json.loads(
        nightloop("adapters", "list", "--json", "--db", str(db)).stdout)}
    assert statuses[3] == ("promoted" if result["promoted"] else "rejected")
