"""The judge's model-free parts: FLIP's text measure, episode rendering, progress rules."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from daemon.core.store import Episode, Reward, Step
from judge import lexical, metrics, rules
from judge.flip import distractors, to_unit
from judge.judge import JudgeOptions, Peers, template
from judge.render import render
from judge.reward import WEIGHTS, combine, explain, from_probability, reward_that_counts
from judge.text import normalize, token_f1

LABELLED = Path(__file__).parent / "data" / "miniwob-core-labelled.jsonl.gz"


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


def test_the_rules_cannot_be_gamed_by_stopping_at_once_or_copying_the_task():
    episode, steps = clean()
    honest = (Episode("Book a table", "cli", id=2, status="step_limit"),
              [step(i, {"action": "click", "id": 2}, obs={**PAGE, "text": f"page {i}"})
               for i in range(10)])
    at_once = (Episode("Book a table", "cli", id=3, status="done"),
               [step(0, {"action": "done"})])
    # an immediate `done` earns no bonus and scores below ten honest steps that ran out
    assert rules.score(*at_once).value == -0.3 < rules.score(*honest).value
    assert rules.score(*at_once).counts["ended_at_once"] == 1
    # typing the task's own words into a box earns nothing by itself
    copied = (Episode("Type Ada in Name", "cli", id=4, status="done"),
              [step(0, {"action": "fill", "id": 1, "text": "Ada"}),
               step(1, {"action": "done"}, obs={**PAGE, "text": "Ada typed"})])
    scored = rules.score(*copied)
    assert scored.counts["copied_from_task"] == 1 and scored.counts["executed"] == 0
    assert scored.value == -0.3                                   # nothing else changed
    # the page ended it (a benchmark's end, not the agent's word): no ending rule either way
    page_ended = (Episode("Click the button", "eval", id=5, status="done"),
                  [step(0, {"action": "click", "id": 2})])
    assert rules.score(*page_ended).value == 0.3
    assert not {k for k, n in rules.score(*page_ended).counts.items() if n} - {"executed"}
    # the clean episode: the copied fill earns nothing, the click that sent it does
    good = rules.score(*clean())
    assert good.counts["copied_from_task"] == 1 and good.value == 0.7


def test_invalid_and_failed_steps_cost_progress():
    episode, steps = clean()
    broken = [step(0, {"action": "click", "id": 9}, ok=False, error="not on page", invalid=True),
              *steps[1:]]
    assert rules.score(episode, broken).value < rules.score(episode, steps).value
    assert rules.score(episode, broken).counts["invalid"] == 1


def test_a_reload_that_reshuffles_the_page_is_no_progress_and_old_rows_stay_readable():
    def load(contact, shop):            # the same page loaded again: new ids, another order
        links = [{"id": contact, "tag": "a", "role": "link", "name": "Contact us"},
                 {"id": shop, "tag": "a", "role": "link", "name": "Shop"}]
        return {**PAGE, "elements": links if contact < shop else links[::-1]}
    pages = [load(1, 2), load(7, 5), load(9, 8)]
    reloading = (Episode("Write to support", "cli", id=6, status="step_limit"),
                 [step(i, {"action": "click", "id": contact}, obs=page)
                  for i, (contact, page) in enumerate(zip((1, 7, 9), pages))])
    scored = rules.score(*reloading)
    assert scored.counts["page_changed"] == 0 and scored.counts["repeated"] == 2
    # a goto today's validation refuses (a relative URL), stored by an older version
    old = (Episode("Open it", "cli", id=7, status="step_limit"),
           [step(0, {"action": "goto", "url": "/admin"}, ok=False, error="not an http(s) URL"),
            step(1, {"action": "goto", "url": "/admin"}, ok=False, error="not an http(s) URL")])
    assert rules.score(*old).counts["repeated"] == 1


def test_the_lexical_baseline_prefers_actions_that_echo_the_task():
    episode, steps = clean()
    assert lexical.score(episode, steps) > lexical.score(*looping())


def test_arguments_ask_whether_the_actions_name_what_this_task_asks_for():
    episode, steps = clean()                                    # fills Name with "Ada"
    wrong = [step(0, {"action": "fill", "id": 1, "text": "Bob"}), *steps[1:]]
    template = ["Type Bob in Name", "Type Eve in Name", "Type Ann in Name"]
    # the template's shared words weigh nothing: only "Ada" counts
    assert lexical.arguments(episode, steps, template) == 1.0
    assert lexical.arguments(episode, wrong, template) == 0.0
    # weighed by rarity: "Ada" in one of three others weighs 2/3, the rest still nothing
    assert lexical.arguments(episode, wrong, ["Type Ada in Name", *template[1:]]) == 0.0
    # too few other tasks to tell: every word weighs 1 ("name" is named, three are not)
    assert lexical.arguments(episode, wrong, template[:2]) == 0.25
    # nothing of its own to get wrong
    assert lexical.arguments(episode, wrong, [episode.task] * 3) == 1.0
    # another task's value where this one's belongs weighs against it: a replay that chose
    # the old city: "Paris" failed (chose nothing), "Lagos" was chosen
    task = Episode("Type Ada in Name and Paris", "replay", id=2, status="done")
    choose = [step(0, {"action": "fill", "id": 1, "text": "Ada"}),
              step(1, {"action": "fill", "id": 1, "text": "Lagos"}),
              step(2, {"action": "fill", "id": 1, "text": "Paris"}, ok=False, error="no")]
    peers = ["Type Bob in Name and Lagos", "Type Eve in Name and Lima", "Type Al in Name and Rio"]
    right = [choose[0], step(1, {"action": "fill", "id": 1, "text": "Paris"})]
    assert lexical.arguments(task, right, peers) == 1.0
    assert lexical.arguments(task, choose, peers) == pytest.approx(1 / (2 + 2 / 3))  # Lagos
    # a label clicked is the page's word, never foreign, though another task says it
    sent = [*right, step(2, {"action": "click", "id": 2})]              # "Send"
    more = [*peers, "Send it to Ada in Name and Lima"]
    assert lexical.arguments(task, sent, more) == lexical.arguments(task, right, more)
    # the peers the judge reads it against: its template's tasks apart, in the order given
    assert Peers.among("t", [("a", "t"), ("b", "u"), ("c", "t")], (1.0,)) == \
        Peers(("a", "c"), ("b",), (1.0,))


def test_on_the_labelled_set_nothing_leaks_the_ground_truth():
    rows = [json.loads(line) for line in gzip.open(LABELLED, "rt")]
    assert len(rows) == 224
    for row in rows[::5]:
        episode = Episode(**{k: v for k, v in row.items() if k not in ("steps", "rewards")})
        text = render(episode, [Step(**s) for s in row["steps"]])
        assert "Last reward" not in text and episode.task not in text


def test_metrics_on_hand_checked_cases():
    assert metrics.auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert metrics.auc([0.1, 0.2, 0.9], [True, False, False]) == 0.0
    assert metrics.auc([0.5, 0.5], [True, False]) == 0.5            # a tie counts half
    assert metrics.auc([0.5, 0.6], [True, True]) is None            # one class only
    # best threshold: 0.3 < t < 0.7 gets 3 of 4 right (the 0.8 failure is always wrong)
    assert metrics.best_accuracy([0.1, 0.3, 0.7, 0.8], [False, False, True, False]) == 0.75
    assert metrics.best_accuracy([0.1, 0.2], [True, True]) == 1.0
    assert metrics.ranks([3, 1, 3, 2]) == [3.5, 1, 3.5, 2]
    assert metrics.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert metrics.spearman([1, 1, 1], [1, 2, 3]) is None
    assert metrics.precision([0.9, 0.8, 0.3], [True, False, True], 0.5) == 0.5
    assert metrics.precision([0.9, 0.8, 0.3], [True, False, True], 0.95) is None
    assert metrics.per_group_auc([0.9, 0.1, 0.2, 0.8, 0.5], [True, False, True, False, True],
                                 ["a", "a", "b", "b", "c"]) == 0.5      # (1 + 0) / 2, c skipped


def test_the_combination_is_clipped_and_recomputable():
    assert combine(1.0, 1.0) == 1.0 and combine(0.0, -1.0) == -1.0
    assert combine(0.5, 0.0) == 0.0
    assert combine(0.8, 0.5) == pytest.approx(WEIGHTS["flip"] * 0.6 + WEIGHTS["progress"] * 0.5)
    assert combine(1.0, 1.0, {"flip": 2.0, "progress": 2.0}) == 1.0
    assert from_probability(0.9) == 0.8 and from_probability(0.0) == -1.0
    # a row says what it was made of, in either of the judge's two forms
    assert explain({"components": {"flip": 0.81, "progress": 0.2}, "weights": WEIGHTS}) == \
        "= 0.7 × (2 × FLIP 0.81 − 1) + 0.3 × progress +0.20"
    assert explain({"components": {"calibrated": 0.9, "progress": 0.2},
                    "calibrated": {"features": {"flip_likelihood_z": -1.234, "lexical": 0.4,
                                                "arguments": 0.5}}}) == \
        "= 2 × p(success) 0.90 − 1 (likelihood z -1.23, lexical 0.40, arguments 0.50)"
    assert explain({"components": {"calibrated": 0.9, "progress": 0.2},      # a row from before
                    "calibrated": {"likelihood_z": -1.2}}) == "= 2 × p(success) 0.90 − 1"
    assert explain({}) == ""


def test_one_rule_says_which_reward_counts():
    judge, user = Reward(1, "judge", 0.4), Reward(1, "user", -1.0)
    truth = Reward(1, "ground_truth", 1.0)
    assert reward_that_counts([judge, user, truth]) is user                 # thumbs first
    assert reward_that_counts([judge, truth]) is truth                      # then the page's truth
    assert reward_that_counts([Reward(1, "judge", 0.1), judge]) is judge    # the latest judgement
    assert reward_that_counts([truth, judge], "judge") is judge             # user tasks' rule
    assert reward_that_counts([truth], "judge") is None
    assert reward_that_counts([judge, user], "ground_truth") is None
    with pytest.raises(ValueError, match="unknown reward rule 'best'"):
        reward_that_counts([judge], "best")


def test_calibration_helpers():
    # distractors: other instructions of the template, never the real one, no duplicates
    peers = ["Click the OK button", "click the ok button.", "Click the No button",
             "Click the No button", "Click the Yes button"]
    assert distractors("Click the OK button!", peers, 5) == ["Click the No button",
                                                             "Click the Yes button"]
    assert distractors("x", peers, 1) == ["Click the OK button"]
    assert to_unit(-9.0, 0.0) == 0.5                    # a margin, when there is one, decides
    assert to_unit(-3.0, float("nan")) > 0.5 > to_unit(-6.0, float("nan"))
    assert template("http://127.0.0.1:4242/miniwob/click-button.html?x=1") == \
        template("http://127.0.0.1:5151/miniwob/click-button.html") == \
        "127.0.0.1/miniwob/click-button.html"
    with pytest.raises(ValueError, match="unknown FLIP form"):
        JudgeOptions(form="guess")


def scored_row(success: bool, template: str, rng) -> dict:
    """A row as `evaluate.score_all` gives it: successes end by the agent after a change and
    stand higher in FLIP within their template, with noise; lexical is noise."""
    facts = {**dict.fromkeys(rules.RULES, 0), "steps": rng.randint(1, 8),
             "ended_by_agent": int(success), "step_limit": int(not success),
             "page_changed": rng.randint(1, 3) if success else rng.randint(0, 1)}
    return {"template": template, "truth": float(success), "facts": facts,
            "flip_likelihood_z": rng.gauss(0.8 if success else -0.4, 0.6), "lexical": rng.random(),
            "arguments": 0.5}                                   # says nothing here


def test_the_learned_combination_ranks_unseen_tasks_and_is_calibrated(tmp_path):
    import random

    from judge import calibration
    rng = random.Random(0)
    rows = [scored_row(i % 3 == 0, f"task-{i % 5}", rng) for i in range(200)]
    labels = [r["truth"] > 0 for r in rows]
    groups = [r["template"] for r in rows]
    predicted = calibration.leave_task_out(rows, labels, groups)
    assert None not in predicted
    assert metrics.auc(predicted, labels) > 0.9                      # tasks it never saw
    assert metrics.leave_group_out_accuracy(predicted, labels, groups, 0.5) > 0.85
    # calibrated: the mean predicted probability is near the success rate
    assert abs(sum(predicted) / len(predicted) - sum(labels) / len(labels)) < 0.08
    fitted = calibration.fit(rows, labels)
    fitted.save(tmp_path / "c.json")
    again = calibration.Calibration.load(tmp_path / "c.json")
    assert again.version == fitted.version and len(fitted.version) == 16
    assert again.probability(rows[0]) == pytest.approx(fitted.probability(rows[0]))
    # a template whose others hold one class only cannot be predicted
    assert calibration.leave_task_out(rows[:2], [True, False], ["a", "b"]) == [None, None]


def test_unseen_parts_rank_templates_together_by_a_fit_that_never_saw_them(monkeypatch):
    import random

    from judge import calibration, evaluate
    rng = random.Random(1)
    rows = [scored_row(i % 3 == 0, f"task-{i % 8}", rng) for i in range(240)]
    for row in rows:                                  # every scorer the summary reads
        row.update(seconds={}, rules=row["lexical"])
    labels = [r["truth"] > 0 for r in rows]
    groups = [r["template"] for r in rows]
    fitted_on = []
    real_fit = calibration.fit
    monkeypatch.setattr(calibration, "fit", lambda rs, ys, *a: fitted_on.append(
        {r["template"] for r in rs}) or real_fit(rs, ys, *a))
    parts = calibration.unseen_parts(rows, labels, groups, parts=4, repeats=3)
    assert len(parts) == 12 and len(fitted_on) == 12
    for (inside, probabilities), seen in zip(parts, fitted_on):
        held = {groups[i] for i in inside}
        assert len(held) == 2 and not held & seen and len(seen) == 6
        assert inside == [i for i, g in enumerate(groups) if g in held]
        assert all(0 < p < 1 for p in probabilities)
    for k in range(3):                                # each split covers every episode once
        assert sorted(i for inside, _ in parts[4 * k:4 * k + 4] for i in inside) == \
            list(range(len(rows)))
    monkeypatch.setattr(calibration, "fit", real_fit)
    # the summary's figure: an unfitted scorer's own AUC within each part, averaged
    for row, p in zip(rows, calibration.leave_task_out(rows, labels, groups)):
        row["calibrated"] = p
    summary = evaluate.summarize(rows, ("calibrated", "lexical"))
    by_hand = [metrics.auc([rows[i]["lexical"] for i in inside], [labels[i] for i in inside])
               for inside, _ in calibration.unseen_parts(rows, labels, groups)]
    assert summary["lexical"]["auc_unseen"] == round(sum(by_hand) / len(by_hand), 3)
    assert summary["lexical"]["auc_unseen"] < 0.65     # lexical is noise in these rows
    assert summary["calibrated"]["auc_unseen"] > 0.85  # the likelihood z carries them


def test_the_nightly_refit_adopts_the_stores_own_fit_where_it_ranks_better(tmp_path):
    """Rows as the judge stores them, on five templates where the likelihood's z tells success
    and lexical does not (the shipped fit leans on lexical): too few are kept waiting; enough
    are refitted, saved beside the store and used from then on, with their stated accuracy."""
    import random

    from conftest import run_async

    from daemon.core.store import Store
    from judge import calibration
    from judge.refit import MIN_EPISODES, refit
    rng, db = random.Random(1), tmp_path / "s.db"

    async def add(n: int, features: tuple[str, ...] = calibration.FEATURES):
        async with await Store.open(db) as store:
            for i in range(n):
                row = scored_row(i % 3 == 0, f"http://t/task-{i % 5}.html", rng)
                e = await store.start_episode(Episode("t", "practice", start_url=row["template"]))
                await store.finish_episode(e.id, "done")
                await store.add_reward(Reward(e.id, "ground_truth", row["truth"]))
                await store.add_reward(Reward(e.id, "judge", 0.0, {
                    "calibrated": {"features": {name: row[name] for name in features}},
                    "rules": {"counts": row["facts"]}}))
            return await refit(store, calibration.local_path(db))

    older = run_async(add(5, features=calibration.FEATURES[:-1]))  # before a feature was added
    assert older.episodes == 0                                      # cannot be refitted on
    waiting = run_async(add(MIN_EPISODES - 1))
    assert not waiting.adopted and "too little ground truth yet" in waiting.describe()
    assert calibration.in_use(db) == calibration.shipped()
    done = run_async(add(100))
    assert done.adopted and done.episodes == MIN_EPISODES + 99 and done.templates == 5
    assert done.refit["auc_leave_task_out"] > 0.9 > done.shipped["auc_leave_task_out"]
    assert done.refit["auc_unseen"] is None     # probabilities alone: nothing to refit per part
    assert done.describe().startswith("judge calibration refitted (199 episodes, 5 templates: "
                                      "leave-task-out AUC ")
    mine = calibration.in_use(db)
    assert mine.n == 199 and mine.measured["accuracy_leave_task_out"] == \
        done.refit["accuracy_leave_task_out"] and mine.measured["set"].startswith("s.db: 199")
    calibration.local_path(db).write_text(
        calibration.local_path(db).read_text().replace("flip_likelihood_z", "old_feature"))
    assert calibration.in_use(db) == calibration.shipped()      # stale: the shipped one


def test_thresholds_found_on_other_tasks_and_reliability_bins():
    scores, labels = [0.1, 0.2, 0.8, 0.9, 0.3, 0.7], [False, False, True, True, False, True]
    groups = ["a", "a", "a", "b", "b", "b"]
    assert metrics.best_threshold(scores, labels) == 0.3
    assert metrics.best_accuracy(scores, labels) == 1.0
    # a's threshold comes from b (0.3: a all right); b's from a (0.2: b's 0.3 failure wrong)
    assert metrics.leave_group_out_accuracy(scores, labels, groups) == pytest.approx(5 / 6)
    assert metrics.leave_group_out_accuracy([0.6] * 6, labels, groups, 0.5) == 0.5
    assert metrics.reliability([0.05, 0.15, 0.95, 1.0], [False, True, True, True], bins=2) == [
        (0.1, 0.5, 2), (0.975, 1.0, 2)]
