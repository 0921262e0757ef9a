"""Secrets of one episode on their own: text typed into a password field is masked in the
action, scrubbed from any other text, and handed out once for redaction."""

from __future__ import annotations

import pytest

from daemon.agent.privacy import EpisodeSecrets
from daemon.core.actions import Action
from daemon.core.observation import MASK, Element, Observation

LOGIN = Observation.from_json({"url": "https://bank.test/", "elements": [
    {"id": 1, "tag": "input", "role": "textbox", "name": "User", "type": "text"},
    {"id": 2, "tag": "input", "role": "textbox", "name": "Password", "type": "password",
     "value": "typed-by-the-page"}]})


def test_a_password_value_from_the_page_never_reaches_the_observation():
    assert LOGIN.element(2).value == MASK and "typed-by-the-page" not in LOGIN.render()


def test_typing_into_a_password_field_is_masked_and_remembered_once():
    secrets = EpisodeSecrets()
    masked = secrets.mask(Action("fill", {"id": 2, "text": "hunter2"}), LOGIN)
    assert masked.args["text"] == MASK and masked.element_id == 2
    secrets.mask(Action("fill", {"id": 2, "text": "hunter2"}), LOGIN)     # again: no duplicate
    assert secrets.take_new() == ["hunter2"] and secrets.take_new() == []
    assert secrets.scrub("log in as ada with hunter2, then hunter2 again") == \
        f"log in as ada with {MASK}, then {MASK} again"
    assert secrets.scrub(None) is None


def test_other_fields_and_actions_pass_through_untouched():
    secrets = EpisodeSecrets()
    fill = Action("fill", {"id": 1, "text": "ada"})
    assert secrets.mask(fill, LOGIN) is fill
    click = Action("click", {"id": 2})
    assert secrets.mask(click, LOGIN) is click                      # no text to hide
    assert secrets.mask(Action("fill", {"id": 2, "text": "x"}), None).args["text"] == "x"
    gone = Observation("https://bank.test/", elements=[Element(1, "input", "textbox")])
    assert secrets.mask(Action("fill", {"id": 2, "text": "x"}), gone).args["text"] == "x"
    assert secrets.take_new() == [] and secrets.scrub("x") == "x"


@pytest.mark.parametrize("field, secret", [
    ({"type": "password", "name": "Password"}, True),
    ({"type": "text", "name": "Number", "autocomplete": "cc-number"}, True),
    ({"type": "text", "name": "Code", "autocomplete": "one-time-code"}, True),
    ({"type": "text", "name": "CVC"}, True),
    ({"type": "text", "name": "Card number"}, True),
    ({"type": "text", "name": "Your IBAN"}, True),
    ({"type": "text", "name": "Security code"}, True),
    ({"type": "text", "name": "Name", "autocomplete": "cc-name"}, False),   # not a secret
    ({"type": "text", "name": "Pineapple count"}, False),
    ({"type": "text", "name": "Shipping"}, False),
])
def test_payment_cards_and_one_time_codes_get_the_password_treatment(field, secret):
    page = Observation.from_json({"url": "http://x/", "elements": [
        {"id": 1, "tag": "input", "role": "textbox", "editable": True, "value": "4111 1111",
         **field}]})
    element = page.elements[0]
    assert element.is_secret is secret
    assert (element.value == MASK) is secret                    # never stored in clear
    masked = EpisodeSecrets().mask(Action("fill", {"id": 1, "text": "4242"}), page)
    assert (masked.args["text"] == MASK) is secret
