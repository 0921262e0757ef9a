"""The action schema: one table behind the validator, the JSON schema and the prompt text."""

from __future__ import annotations

import jsonschema
import pytest

from daemon.core.actions import ACTIONS, Action, describe_actions, json_schema
from daemon.core.wire import InvalidMessage

VALID = [
    {"action": "click", "id": 3},
    {"action": "fill", "id": 0, "text": ""},
    {"action": "select_option", "id": 2, "option": "Blue"},
    {"action": "press", "key": "Enter"},
    {"action": "press", "key": "Enter", "id": 7},
    {"action": "scroll", "direction": "down"},
    {"action": "scroll", "id": 9},
    {"action": "hover", "id": 1},
    {"action": "goto", "url": "https://example.com"},
    {"action": "go_back"},
    {"action": "wait", "seconds": 1.5},
    {"action": "answer", "text": "42"},
    {"action": "done"},
    {"action": "give_up"},
    {"action": "give_up", "reason": "login wall"},
]
INVALID = [
    ({"action": "click"}, "click needs the argument 'id'"),
    ({"action": "click", "id": "3"}, "click.id must be an element id"),
    ({"action": "click", "id": -1}, "click.id must be an element id"),
    ({"action": "click", "id": True}, "click.id must be an element id"),
    ({"action": "fill", "id": 1}, "fill needs the argument 'text'"),
    ({"action": "fill", "id": 1, "text": 5}, "fill.text must be a string"),
    ({"action": "scroll", "direction": "sideways"}, "must be one of up, down"),
    ({"action": "wait", "seconds": 31}, "between 0 and 30"),
    ({"action": "done", "text": "x"}, "done takes no argument text"),
    ({"action": "teleport"}, "unknown action 'teleport'"),
    ({"id": 1}, "unknown action None"),
    (["click", 1], "must be a JSON object"),
]


@pytest.mark.parametrize("data", VALID)
def test_valid_actions_parse_and_round_trip(data):
    action = Action.parse(data)
    assert action.to_json() == data
    jsonschema.validate(data, json_schema())


@pytest.mark.parametrize("data, reason", INVALID)
def test_invalid_actions_are_rejected_with_a_reason(data, reason):
    with pytest.raises(InvalidMessage, match=reason):
        Action.parse(data)


@pytest.mark.parametrize("data, _", INVALID)
def test_the_json_schema_rejects_what_the_validator_rejects(data, _):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json_schema())


def test_the_prompt_text_documents_every_action():
    text = describe_actions()
    for name, spec in ACTIONS.items():
        assert f'"action": "{name}"' in text and spec.doc in text


def test_describe_is_a_short_readable_line():
    assert Action.parse({"action": "fill", "id": 4, "text": "Ada"}).describe() == "fill [4] 'Ada'"
