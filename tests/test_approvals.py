"""Sensitive actions wait for the user: what counts as sensitive, and the episode loop asking a
stand-in approver (the daemon's popup and terminal approvers have their own tests)."""

from __future__ import annotations

import pytest
from test_episode import Recorder, StandInBrowser, play

from daemon.agent.approvals import sensitivity
from daemon.agent.episode import Limits
from daemon.core.actions import Action
from daemon.core.observation import Observation

SHOP = Observation.from_json({"url": "https://shop.test/checkout", "elements": [
    {"id": 1, "tag": "input", "role": "textbox", "name": "Card number", "editable": True},
    {"id": 2, "tag": "input", "role": "textbox", "name": "Code", "editable": True,
     "autocomplete": "one-time-code", "value": "123456"},
    {"id": 3, "tag": "button", "role": "button", "name": "Pay now"},
    {"id": 4, "tag": "button", "role": "button", "name": "Back"},
    {"id": 5, "tag": "input", "role": "textbox", "name": "Coupon", "editable": True},
    {"id": 6, "tag": "a", "role": "link", "name": "Delete my account"},
]})
TASK = "Buy the blue mug on https://shop.test and compare at http://prices.test/mugs"


@pytest.mark.parametrize("action, kind", [
    ({"action": "goto", "url": "https://evil.example/steal"}, "navigation"),
    ({"action": "goto", "url": "https://shop.test/other"}, None),      # the start origin
    ({"action": "goto", "url": "http://prices.test/cups"}, None),       # one the task names
    ({"action": "goto", "url": "http://prices.test:8080/"}, "navigation"),   # another origin
    ({"action": "fill", "id": 1, "text": "4242 4242"}, "secret"),
    ({"action": "fill", "id": 5, "text": "SAVE10"}, None),
    ({"action": "click", "id": 3}, "commit"),
    ({"action": "click", "id": 6}, "commit"),
    ({"action": "click", "id": 4}, "commit"),       # a button, a filled secret field: submits
    ({"action": "press", "key": "Enter", "id": 5}, "commit"),
    ({"action": "press", "key": "Enter"}, "commit"),        # wherever the focus is
    ({"action": "scroll", "direction": "down"}, None),
])
def test_what_needs_the_users_yes(action, kind):
    why = sensitivity(Action.parse(action), SHOP, start_url="https://shop.test/", task=TASK,
                      typed_secret=True)
    assert (why.kind if why else None) == kind
    if action["action"] in ("press",) or action.get("id") == 4:     # a submit: only once the
        assert sensitivity(Action.parse(action), SHOP, start_url="https://shop.test/",
                           task=TASK) is None          # agent itself typed a secret


class StandInApprover:
    def __init__(self, *verdicts):
        self.verdicts, self.asked = list(verdicts), []

    async def approve(self, request):
        self.asked.append(request)
        return self.verdicts.pop(0)


GO_AWAY = Action("goto", {"url": "http://evil.example/steal"})
PASSWORD = Action("fill", {"id": 2, "text": "hunter2"})


def test_a_denied_action_never_runs_and_the_policy_is_told(tmp_path):
    """A page that talks the policy into leaving cannot make it navigate unapproved."""
    browser, approver = StandInBrowser(), StandInApprover(("deny", "no answer within 60 s"))
    policy = Recorder(GO_AWAY, Action("done"))
    final, steps, _ = play(tmp_path, "log in as ada", policy, browser, approver=approver)
    assert browser.acted == []                          # the goto never reached the browser
    assert not steps[0].ok and steps[0].result["approval"]["approved"] is False
    assert "not approved (no answer within 60 s)" in steps[0].error
    assert "evil.example" in policy.seen[1].last_error  # the policy sees the denial
    assert approver.asked[0].kind == "navigation" and approver.asked[0].index == 0
    assert final.status == "done"


def test_approved_actions_run_and_approve_for_episode_stops_asking(tmp_path):
    browser = StandInBrowser()
    approver = StandInApprover(("approve", None), ("approve_episode", None))
    policy = Recorder(PASSWORD, GO_AWAY, PASSWORD, GO_AWAY, Action("done"))
    final, steps, _ = play(tmp_path, "log in as ada", policy, browser, approver=approver)
    assert len(approver.asked) == 2                     # the third and fourth are not asked
    assert [s.ok for s in steps] == [True] * 5
    assert steps[3].result["approval"]["by"] == "approved for this episode"
    assert approver.asked[0].action == {"action": "fill", "id": 2, "text": "•••"}  # masked
    assert approver.asked[0].element == '[2] textbox "Password" (password)'
    assert len(browser.acted) == 4


def test_without_an_approver_nothing_is_asked(tmp_path):
    """Benchmarks and practice run in a browser of their own: MiniWoB++'s enter-password."""
    browser = StandInBrowser()
    final, steps, _ = play(tmp_path, "log in", Recorder(PASSWORD, Action("done")), browser,
                           limits=Limits(3))
    assert steps[0].ok and "approval" not in steps[0].result and len(browser.acted) == 1


def test_the_words_that_make_a_click_sensitive_are_a_setting(monkeypatch):
    from daemon.core.settings import load_settings
    monkeypatch.setenv("NIGHTLOOP_APPROVAL_WORDS", "wire money, unsubscribe")
    words = load_settings().settings.approval_words
    assert words == ("wire money", "unsubscribe")
    page = Observation.from_json({"url": "https://bank.test/", "elements": [
        {"id": 1, "tag": "button", "role": "button", "name": "Wire money now"},
        {"id": 2, "tag": "button", "role": "button", "name": "Pay"}]})
    kinds = [sensitivity(Action("click", {"id": i}), page, start_url=page.url, task="x",
                         words=words) for i in (1, 2)]
    assert kinds[0].kind == "commit" and kinds[1] is None     # "pay" is no longer listed
