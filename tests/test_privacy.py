"""Secrets of one episode on their own: text typed into a password field is masked in the
action, scrubbed from any other text, and redacted from the store once it is found."""

from __future__ import annotations

import pytest
from conftest import run_async

from daemon.agent.privacy import EpisodeSecrets, secret_in_task
from daemon.core.actions import Action
from daemon.core.observation import MASK, Element, Observation
from daemon.core.store import Episode, Step, Store

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
    assert secrets.secrets == ["hunter2"]
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
    assert secrets.secrets == [] and secrets.scrub("x") == "x"


def test_a_found_secret_is_redacted_from_the_store_once_and_every_time_asked(tmp_path):
    secrets = EpisodeSecrets()

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            e = await store.start_episode(Episode("log in as ada with hunter2", "user"))
            secrets.mask(Action("fill", {"id": 2, "text": "hunter2"}), LOGIN)
            await secrets.redact(store, e.id)
            task = (await store.episode(e.id)).task
            await store.add_step(Step(e.id, 0, {"action": "done"}, True,
                                      raw_output="the page says hunter2"))
            await secrets.redact(store, e.id)           # nothing found since: nothing redacted
            kept = (await store.steps(e.id))[0].raw_output
            await secrets.redact(store, e.id, every=True)
            return task, kept, (await store.steps(e.id))[0].raw_output
    task, kept, redacted = run_async(go())
    assert task == f"log in as ada with {MASK}"
    assert kept == "the page says hunter2" and redacted == f"the page says {MASK}"


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


def test_a_named_secret_stays_a_placeholder_in_the_action():
    secrets = EpisodeSecrets()
    named = Action("fill", {"id": 2, "text": "{{BANK_PW}}"})
    assert secrets.mask(named, LOGIN) == named and secrets.secrets == []
    secrets.add("correct horse")
    assert secrets.scrub_tree({"elements": [{"value": "x correct horse"}], "n": 3}) == \
        {"elements": [{"value": "x •••"}], "n": 3}


@pytest.mark.parametrize("task, found", [
    ("Log in with username admin and password hunter2", "hunter2"),
    ('fill "Password" with "s3cret-pw"; click "Send"', "s3cret-pw"),
    ("the PIN is 4711.", "4711"),
    ("Enter the one-time code: 123456", "123456"),
    ("Set the password to correct-horse", "correct-horse"),
    ("Pay with card 4242 4242 4242 4242 today", "4242 4242 4242 4242 "),
    ("Log in with password {{BANK_PW}}", None),         # named: no secret in it
    ("Reset my password", None),
    ("Type the password into the box", None),
    ("Change the password field", None),
    ("Tell me if my password was leaked", None),        # words, not a password
    ("the password is HunterTwo", "HunterTwo"),
    ("password: (see the note)", None),
    ("Log in with {{PIN}} and {{PASSWORD}}", None),
    ("Order 1234 5678 9012 3456 mugs", None),           # no card's checksum
    ("Call 0049 30 1234567", None),
])
def test_a_secret_written_into_a_task_in_clear_is_found(task, found):
    assert secret_in_task(task) == (found.strip() if found else None)


def test_what_the_model_reads_keeps_words_that_merely_hold_a_short_secret():
    secrets = EpisodeSecrets(("ab",))
    assert secrets.scrub("Password ab: table, about, ab.") == "Password •••: table, about, •••."
    assert secrets.scrub_tree({"t": ["cab ab"]}) == {"t": ["cab •••"]}
