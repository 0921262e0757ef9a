"""Sensitive actions wait for the user: what counts as sensitive, and the episode loop asking a
stand-in approver (the daemon's popup and terminal approvers have their own tests)."""

from __future__ import annotations

import pytest
from test_episode import PAGE, Recorder, StandInBrowser, play

from daemon.agent.approvals import allowed_origins, origin, sensitivity
from daemon.agent.episode import Limits
from daemon.core.actions import Action
from daemon.core.observation import Observation

SHOP = Observation.from_json({"url": "https://shop.test/checkout", "elements": [
    {"id": 1, "tag": "input", "role": "textbox", "name": "Card number", "editable": True,
     "form": 1},
    {"id": 2, "tag": "input", "role": "textbox", "name": "Code", "editable": True,
     "autocomplete": "one-time-code", "value": "123456", "form": 1},
    {"id": 3, "tag": "button", "role": "button", "name": "Pay now", "form": 1},
    {"id": 4, "tag": "button", "role": "button", "name": "Back", "form": 1},
    {"id": 5, "tag": "input", "role": "textbox", "name": "Coupon", "editable": True, "form": 1},
    {"id": 6, "tag": "a", "role": "link", "name": "Delete my account",
     "link_origin": "https://shop.test"},
    {"id": 7, "tag": "input", "role": "textbox", "name": "Search", "editable": True, "form": 2},
    {"id": 8, "tag": "button", "role": "button", "name": "Search", "form": 2},
    {"id": 9, "tag": "a", "role": "link", "name": "Claim your prize",
     "link_origin": "https://evil.example"},
    {"id": 10, "tag": "a", "role": "link", "name": "Price list", "link_origin": "http://prices.test"},
    {"id": 11, "tag": "button", "role": "button", "name": "Next"},      # in no form
]})
TASK = "Buy the blue mug on https://shop.test and compare at http://prices.test/mugs"
ORIGINS = allowed_origins("https://shop.test/", TASK)


@pytest.mark.parametrize("action, kind", [
    ({"action": "goto", "url": "https://evil.example/steal"}, "navigation"),
    ({"action": "goto", "url": "https://shop.test/other"}, None),      # the start origin
    ({"action": "goto", "url": "http://prices.test/cups"}, None),       # one the task names
    ({"action": "goto", "url": "http://prices.test:8080/"}, "navigation"),   # another origin
    ({"action": "click", "id": 9}, "navigation"),       # a link to a site the task does not name
    ({"action": "click", "id": 10}, None),              # a link to one it does
    ({"action": "fill", "id": 1, "text": "4242 4242"}, "secret"),
    ({"action": "fill", "id": 5, "text": "SAVE10"}, None),
    ({"action": "fill", "id": 1, "text": "{{CARD}}"}, None),    # a secret the task names
    ({"action": "fill", "id": 5, "text": "{{CARD}}"}, "secret"),   # ... not into a secret field
    ({"action": "fill", "id": 1, "text": "{{CARD}} 4242"}, "secret"),   # more than the name
    ({"action": "click", "id": 3}, "commit"),
    ({"action": "click", "id": 6}, "commit"),
    ({"action": "click", "id": 4}, "commit"),       # a button of the form with the filled code
    ({"action": "press", "key": "Enter", "id": 5}, "commit"),      # Enter in one of its fields
    ({"action": "press", "key": "Enter"}, "commit"),        # wherever the focus is
    ({"action": "click", "id": 8}, None),           # the search form holds no secret
    ({"action": "press", "key": "Enter", "id": 7}, None),
    ({"action": "click", "id": 11}, None),          # in no form: only once the agent typed one
    ({"action": "scroll", "direction": "down"}, None),
])
def test_what_needs_the_users_yes(action, kind):
    why = sensitivity(Action.parse(action), SHOP, origins=ORIGINS)
    assert (why.kind if why else None) == kind


def test_fields_outside_any_form_count_once_the_agent_typed_a_secret():
    """A page that submits by script has no form: its buttons ask only once the agent itself
    typed a secret (a password the browser filled in does not make every button ask)."""
    page = Observation.from_json({"url": "https://bank.test/", "elements": [
        {"id": 1, "tag": "input", "role": "textbox", "type": "password", "value": "x",
         "editable": True},
        {"id": 2, "tag": "div", "role": "button", "name": "Continue"}]})
    click = Action("click", {"id": 2})
    assert sensitivity(click, page, origins=set()) is None
    assert sensitivity(click, page, origins=set(), typed_secret=True).kind == "commit"


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
    policy = Recorder(GO_AWAY, GO_AWAY, PASSWORD, PASSWORD, Action("done"))
    final, steps, _ = play(tmp_path, "log in as ada", policy, browser, approver=approver)
    assert [r.kind for r in approver.asked] == ["navigation", "secret"]
    assert [s.ok for s in steps] == [True] * 5
    assert "approval" not in steps[1].result        # a site the user approved: not asked again
    assert steps[3].result["approval"]["by"] == "approved for this episode"
    assert approver.asked[1].action == {"action": "fill", "id": 2, "text": "•••"}  # masked
    assert approver.asked[1].element == '[2] textbox "Password" (password)'
    assert len(browser.acted) == 4


def test_the_page_the_task_began_on_is_the_start_origin(tmp_path):
    """A task typed on the user's own page (no start URL): its links stay unasked, a link to
    another site asks."""
    links = [{"id": 7, "tag": "a", "role": "link", "name": "Home",
              "link_origin": origin(PAGE["url"])},
             {"id": 8, "tag": "a", "role": "link", "name": "Prize",
              "link_origin": "http://evil.example"}]
    browser = StandInBrowser(page={**PAGE, "elements": PAGE["elements"] + links})
    approver = StandInApprover(("deny", None))
    policy = Recorder(Action("click", {"id": 7}), Action("click", {"id": 8}), Action("done"))
    final, steps, _ = play(tmp_path, "open home", policy, browser, approver=approver)
    assert [s.ok for s in steps] == [True, False, True]
    assert approver.asked[0].kind == "navigation" and "evil.example" in approver.asked[0].reason


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
    kinds = [sensitivity(Action("click", {"id": i}), page, origins=set(), words=words)
             for i in (1, 2)]
    assert kinds[0].kind == "commit" and kinds[1] is None     # "pay" is no longer listed


def test_a_named_secret_typed_into_an_open_field_says_which_and_where():
    why = sensitivity(Action.parse({"action": "fill", "id": 7, "text": "{{CARD}}"}), SHOP,
                      origins=ORIGINS)
    assert why.reason == 'types the secret {{CARD}} into [7] textbox "Search", which is not a ' \
        "secret field"
