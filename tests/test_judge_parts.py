"""The judge's model-free parts: FLIP's text measure, episode rendering, progress rules."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from daemon.store import Episode, Step
from judge import lexical, rules
from judge.render import render
from judge.text import normalize, token_f1

BASELINE = Path(__file__).parent / "data" / "miniwob-core-baseline.jsonl.gz"


def test_normalisation_and_token_f1_follow_flip():
    assert normalize("Click the 'Submit' button, then an OK!") == [
        "click", "submit", "button", "then", "ok"]
    assert token_f1("Click the Submit button.", "click submit button") == 1.0
    assert token_f1("open settings", "click submit") == 0.0
    assert token_f1("", "click submit") == 0.0
    assert token_f1("click submit now", "click submit") == pytest.approx(0.8)


PAGE = {"url": "http://x/form.html", "title": "Form", "text": "Enter your name. Type Ada in Name",
        "elements": [{"id": 1, "tag": "input", "role": "textbox", "name": "Name",
                      "editable": True},
                     {"id": 2, "tag": "button", "role": "button", "name": "Send"}]}
DONE = {**PAGE, "text": "Enter your name. Type Ada in Name Thanks Ada, your message was sent"}


def step(i, action, obs=PAGE, ok=True, error=None, invalid=False):
    return Step(1, i, action, ok, url=obs["url"], observation=obs, error=error, invalid=invalid)


def clean():
    return (Episode("Type Ada in Name", "cli", id=1, status="done"),
            [step(0, {"action": "fill", "id": 1, "text": "Ada"}),
             step(1, {"action": "click", "id": 2}),
             step(2, {"action": "done"}, obs=DONE)])


def looping():
    return (Episode("Type Ada in Name", "cli", id=1, status="step_limit"),
            [step(i, {"action": "click", "id": 2}) for i in range(6)])


def test_the_rendering_shows_labels_and_text_but_never_the_task():
    episode, steps = clean()
    text = render(episode, steps)
    assert "1. fill \"Name\" with 'Ada'" in text and '2. click "Send"' in text
    assert "Form (http://x/form.html)" in text
    assert "Thanks Ada, your message was sent" in text        # what changed at the end
    assert "Type Ada in Name" not in text                      # the page repeats the task
    assert "Enter your name" not in text                       # unchanged text is left out
    assert len(render(episode, steps, max_chars=120)) <= 120


def test_a_looping_episode_scores_lower_than_a_clean_one():
    good, bad = rules.score(*clean()), rules.score(*looping())
    assert good.value > bad.value
    assert bad.counts["repeated"] == 5 and bad.counts["step_limit"] == 1
    assert good.counts["ended_by_agent"] == 1 and good.counts["page_changed"] == 1
    assert good.weights == rules.RULES and -1 <= bad.value <= good.value <= 1


def test_invalid_and_failed_steps_cost_progress():
    episode, steps = clean()
    broken = [step(0, {"action": "click", "id": 9}, ok=False, error="not on page", invalid=True),
              *steps[1:]]
    assert rules.score(episode, broken).value < rules.score(episode, steps).value
    assert rules.score(episode, broken).counts["invalid"] == 1


def test_the_lexical_baseline_prefers_actions_that_echo_the_task():
    episode, steps = clean()
    assert lexical.score(episode, steps) > lexical.score(*looping())


def test_on_the_recorded_baseline_nothing_leaks_the_ground_truth():
    rows = [json.loads(line) for line in gzip.open(BASELINE, "rt")]
    assert len(rows) == 160
    for row in rows[:40]:
        episode = Episode(**{k: v for k, v in row.items() if k not in ("steps", "rewards")})
        text = render(episode, [Step(**s) for s in row["steps"]])
        assert "Last reward" not in text and episode.task not in text


@pytest.fixture(scope="module")
def likelihood():
    from judge.flip import LikelihoodJudge
    return LikelihoodJudge(n_ctx=512)


def test_flip_likelihood_prefers_the_instruction_an_episode_carried_out(likelihood):
    instruction = "Type Ada into the Name field and click Send"
    matching = render(*clean())
    unrelated = ("Pages visited:\n- Settings (http://x/settings.html)\nActions:\n"
                 '1. click "Delete account"\n2. click "Confirm"')
    logprobs = likelihood.token_logprobs("Hello", " world, how are you")
    assert len(logprobs) == 5 and (logprobs <= 0).all()
    assert likelihood.score(matching, instruction) > likelihood.score(unrelated, instruction)
