"""The judge against the real thing: the shipped GGUF through llama.cpp, real stores, the daemon
as a process judging in the background, and FLIP's AUC on the shipped labelled MiniWoB set."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from conftest import nightloop, run_async, wait_until
from test_judge_parts import LABELLED, clean

from daemon.core.store import Episode, Step, Store
from judge import calibration, direct, flip, rules
from judge.judge import Judge, JudgeOptions, Peers
from judge.model import JudgeModel
from judge.render import render
from judge.reward import combine, explain, from_probability

INSTRUCTION = "Type Ada into the Name field and click Send"
UNRELATED = ('Pages visited:\n- Settings (http://x/settings.html)\nActions:\n'
             '1. click "Delete account"\n2. click "Confirm"')


@pytest.fixture(scope="module")
def model() -> JudgeModel:
    return JudgeModel()           # the shipped SmolLM2-135M-Instruct


@pytest.mark.model
def test_flip_likelihood_prefers_the_instruction_an_episode_carried_out(model):
    matching = render(*clean())
    logprobs = model.continuation_logprobs("Hello", " world, how are you")
    assert len(logprobs) == 5 and (logprobs <= 0).all()
    assert flip.likelihood(model, matching, INSTRUCTION) > \
        flip.likelihood(model, UNRELATED, INSTRUCTION)
    # calibrated: the episode explains its own instruction better than a neighbour's
    raw = flip.likelihood(model, matching, INSTRUCTION)
    margin = flip.margin(model, matching, raw, ["Delete the account"])
    assert margin > 0 and margin == pytest.approx(
        raw - flip.likelihood(model, matching, "Delete the account"))
    assert flip.to_unit(raw, margin) > 0.5
    assert math.isnan(flip.margin(model, matching, raw, []))


@pytest.mark.model
def test_flip_generate_writes_instructions_and_scores_them_by_token_f1(model):
    score, inferred = flip.generate(model, render(*clean()), INSTRUCTION, samples=2,
                                    temperature=0.7)
    assert len(inferred) == 2 and all(i.strip() and not i.startswith("{") for i in inferred)
    assert 0 <= score <= 1


@pytest.mark.model
def test_the_direct_judge_gives_a_probability(model):
    p = direct.p_yes(model, render(*clean()), INSTRUCTION)
    assert 0 < p < 1


@pytest.mark.model
def test_a_judge_reward_row_keeps_its_parts_and_can_be_recomputed(model):
    episode, steps = clean()
    reward = Judge(model).score(episode, steps, Peers(other_tasks=("Delete the account",
                                                                   episode.task)))
    details = reward.details
    assert reward.kind == "judge" and details["flip"]["distractors"] == 1
    assert reward.value == combine(details["components"]["flip"],
                                   details["components"]["progress"], details["weights"])
    assert details["rules"]["counts"]["ended_by_agent"] == 1 and details["seconds"] > 0
    # what judged it: the model file by hash, the rules by theirs, so a row can be recomputed
    assert details["version"]["model"].startswith("SmolLM2-135M-Instruct.Q4_1.gguf:")
    assert details["version"]["rules"] == rules.VERSION
    generated = Judge(model, JudgeOptions(form="generate")).score(episode, steps)
    assert generated.details["flip"]["inferred"]


@pytest.mark.model
def test_the_calibrated_judge_reads_one_likelihood_against_the_templates_earlier_ones(model):
    episode, steps = clean()
    judge = Judge(model, calibration=calibration.shipped())
    alone = judge.score(episode, steps, Peers(other_tasks=("Delete the account",)))
    details = alone.details
    assert "distractors" not in details["flip"]             # one model pass, no distractors
    p = details["components"]["calibrated"]
    assert 0 < p < 1 and alone.value == from_probability(p)
    assert details["calibrated"]["baseline_episodes"] == 0      # too few: z = 0
    assert details["version"]["calibration"] == calibration.shipped().version
    raw = details["flip"]["logprob"]
    above = judge.score(episode, steps, Peers(likelihoods=(raw - 1, raw - 1.5, raw - 0.5)))
    below = judge.score(episode, steps, Peers(likelihoods=(raw + 1, raw + 1.5, raw + 0.5)))
    assert above.details["calibrated"]["features"]["flip_likelihood_z"] == \
        pytest.approx(6 ** 0.5, abs=1e-3)
    assert above.value > alone.value > below.value     # the same episode, read against others
    p = above.details["components"]["calibrated"]
    assert explain(above.details).startswith(f"= 2 × p(success) {p:.2f} − 1 (likelihood z +2.45")


# -- the AUC floor on real episodes ---------------------------------------------------------

# The templates of the labelled set that hold both successes and failures (the model's own
# natural failures): within a task is where GRPO compares attempts, so that is the figure
# the floor guards. Measured on this subset alone (42 episodes, 14 successes; its distractors
# come from these templates only): flip AUC per task 0.79 (lexical 0.75, calibrated 0.83),
# pooled 0.63 (lexical 0.80); deterministic up to llama.cpp's float order.
FLOOR_TEMPLATES = ("click-button", "click-dialog-2", "click-tab-2", "click-widget",
                   "focus-text-2", "navigate-tree")
FLIP_AUC_PER_TASK_FLOOR, FLIP_AUC_FLOOR = 0.72, 0.58


@pytest.mark.slow                    # the whole labelled set through the judge
@pytest.mark.model
@pytest.mark.timeout(900)
def test_flip_auc_on_the_labelled_set_stays_above_the_floor(tmp_path):
    subset = tmp_path / "subset.jsonl"
    with gzip.open(LABELLED, "rt") as src, open(subset, "w") as dst:
        for line in src:
            if json.loads(line)["start_url"].rsplit("/", 1)[-1][:-5] in FLOOR_TEMPLATES:
                dst.write(line)
    out = tmp_path / "report"
    summary = json.loads(nightloop("judge", "eval", "--jsonl", str(subset), "--scorers",
                                   "flip,lexical,rules,hybrid,calibrated", "--json", "--out",
                                   str(out), timeout=800).stdout)
    assert summary["flip"]["n"] == summary["lexical"]["n"] == 42
    assert summary["flip"]["auc_per_task"] >= FLIP_AUC_PER_TASK_FLOOR, summary
    assert summary["flip"]["auc"] >= FLIP_AUC_FLOOR, summary
    assert summary["flip"]["auc_per_task"] > summary["lexical"]["auc_per_task"], summary
    assert {"auc", "accuracy", "spearman", "n", "auc_per_task"} <= set(summary["hybrid"])
    assert "| flip |" in (out / "report.md").read_text()
    assert (out / "scores.png").read_bytes()[:4] == b"\x89PNG"
    episodes = json.loads((out / "results.json").read_text())["episodes"]
    assert len(episodes) == summary["flip"]["n"] and "flip" in episodes[0]
    # the default, fitted on the other templates for each one: its figures become the fit's
    assert summary["default"] == "calibrated" and summary["calibrated"]["n"] == 42
    fitted = calibration.Calibration.load(out / "calibration.json")
    assert fitted.n == 42 and fitted.measured["auc_leave_task_out"] == \
        summary["calibrated"]["auc"] and fitted.measured["set"] == f"{subset} (42 episodes, " \
        "14 successes)"
    assert fitted.measured["precision_leave_task_out"] == \
        summary["calibrated"]["precision_leave_task_out"]


# -- judging episodes in the store: on demand, and by the daemon ------------------------------

def seed_finished(db: Path, n: int, url: str = "http://x/form.html") -> None:
    async def go():
        async with await Store.open(db) as store:
            episode, steps = clean()
            for _ in range(n):
                e = await store.start_episode(Episode(episode.task, "cli",
                                                      start_url=url))
                for s in steps:
                    await store.add_step(Step(e.id, s.index, s.action, s.ok, url=s.url,
                                              observation=s.observation))
                await store.finish_episode(e.id, "done")
    run_async(go())


def judge_rewards(db: Path, episode_id: int) -> list[dict]:
    shown = json.loads(nightloop("episodes", "show", str(episode_id), "--json",
                                 "--db", str(db)).stdout)
    return [r for r in shown["rewards"] if r["kind"] == "judge"]


@pytest.mark.model
def test_judge_pending_and_by_id_from_the_cli(home):
    db = home / "s.db"
    seed_finished(db, 2)
    out = nightloop("judge", "--pending", "--db", str(db)).stdout
    assert "[1/2] episode 1:" in out and "[2/2] episode 2:" in out
    assert nightloop("judge", "--pending", "--db", str(db)).stdout.strip() == "nothing to judge"
    again = json.loads(nightloop("judge", "2", "--json", "--db", str(db)).stdout)
    assert again[0]["episode"] == 2 and len(judge_rewards(db, 2)) == 2   # a new row each time
    # the shipped calibration's probability, FLIP read against the template's earlier scores
    calibrated = judge_rewards(db, 2)[-1]["details"]["calibrated"]
    assert 0 < calibrated["probability"] < 1 and calibrated["baseline_episodes"] == 1
    assert judge_rewards(db, 2)[-1]["details"]["version"]["calibration"] == \
        calibration.shipped().version
    shown = nightloop("episodes", "show", "1", "--db", str(db)).stdout
    assert "reward judge:" in shown and "= 2 × p(success)" in shown and "likelihood z" in shown
    missing = nightloop("judge", "7", "--db", str(db), check=False)
    assert missing.returncode == 1 and "there is no episode 7" in missing.stderr


@pytest.mark.browser
def test_the_daemon_judges_in_the_background_and_after_a_restart(browser, daemon_proc,
                                                                   pages_url):
    seed_finished(daemon_proc.db, 1, f"{pages_url}/form.html")   # finished, judge off
    daemon_proc.stop()
    daemon_proc.start(judge="on")                   # the queue picks it up at start
    wait_until(lambda: judge_rewards(daemon_proc.db, 1), timeout=60,
               what="the pending episode to be judged")
    wait_until(lambda: '"browser_connected": true' in nightloop(
        "status", "--json", *daemon_proc.args(), check=False).stdout, timeout=20,
        what="the extension to reconnect")
    nightloop("run", *daemon_proc.args(), "--url", f"{pages_url}/form.html",
              'fill "Name" with "Ada"; click "Send"; done')
    reward = wait_until(lambda: judge_rewards(daemon_proc.db, 2), timeout=60,
                        what="the new episode to be judged")[0]
    assert reward["details"]["components"]["progress"] > 0
    assert reward["details"]["calibrated"]["baseline_episodes"] == 1    # episode 1's likelihood
