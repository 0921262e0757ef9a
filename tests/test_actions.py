"""The action schema: one table behind the validator, the JSON schema and the prompt text."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from daemon.core.actions import ACTIONS, Action, describe_actions, json_schema, violation, written
from daemon.core.errors import InvalidMessage
from daemon.core.observation import Element, Observation

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


@pytest.mark.parametrize("data, reason", [
    ({"action": "goto", "url": "javascript:alert(1)"}, "must be an http\\(s\\) URL"),
    ({"action": "goto", "url": "file:///etc/passwd"}, "must be an http\\(s\\) URL"),
    ({"action": "goto", "url": "https://"}, "must be an http\\(s\\) URL"),
    ({"action": "wait", "seconds": float("nan")}, "must be a finite number"),
    ({"action": "wait", "seconds": float("inf")}, "must be a finite number"),
])
def test_goto_opens_only_web_pages_and_wait_only_a_finite_time(data, reason):
    """What a grammar cannot say (the policy's output is a plain string there; a peer's JSON
    may hold NaN): the validator refuses it."""
    with pytest.raises(InvalidMessage, match=reason):
        Action.parse(data)


def test_the_prompt_text_documents_every_action():
    text = describe_actions()
    for name, spec in ACTIONS.items():
        assert f'"action": "{name}"' in text and spec.doc in text


def test_describe_is_a_short_readable_line():
    assert Action.parse({"action": "fill", "id": 4, "text": "Ada"}).describe() == "fill [4] 'Ada'"


FORM = Observation("https://a.test/", "Form", [
    Element(1, "h1", "heading", "Contact", context=True),
    Element(2, "input", "textbox", "Name", type="text", editable=True),
    Element(3, "select", "combobox", "Colour", options=["Red", "Blue"]),
    Element(4, "button", "button", "Save"),
    Element(5, "button", "button", "Delete", disabled=True)])


def valid(data: dict, schema: dict, page: Observation = FORM) -> bool:
    """Whether the schema accepts `data` as the policy writes it on `page` (its label first)."""
    try:
        jsonschema.validate(json.loads(written(Action.parse(data), page)), schema)
    except jsonschema.ValidationError:
        return False
    return True


def test_on_a_page_the_label_the_policy_writes_decides_the_id():
    schema = json_schema(FORM)
    assert json.loads(written(Action.parse({"action": "fill", "id": 2, "text": "Ada"}), FORM)) \
        == {"action": "fill", "target": "Name", "id": 2, "text": "Ada"}
    jsonschema.validate({"action": "click", "target": "Save", "id": 4}, schema)
    for wrong in ({"action": "click", "target": "Name", "id": 4},       # another's label
                  {"action": "click", "id": 4},                          # no label
                  {"action": "click", "target": "Sav", "id": 4}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)
    unnamed = Observation("https://a.test/", elements=[Element(7, "input", "textbox",
                                                              editable=True)])
    assert json.loads(written(Action("fill", {"id": 7, "text": "x"}), unnamed))["target"] \
        == "textbox"                                    # no name: its role
    long = Element(8, "a", "link", "x" * 100)
    assert long.label == "x" * 40


def test_elements_sharing_a_label_are_told_apart_by_their_order_on_the_page():
    boxes = Observation("https://a.test/", elements=[
        Element(3, "input", "textbox", editable=True), Element(8, "button", "button", "Go"),
        Element(5, "input", "textbox", editable=True), Element(6, "button", "button", "Go")])
    assert boxes.labels() == {3: "textbox 1", 8: "Go 1", 5: "textbox 2", 6: "Go 2"}
    assert json.loads(written(Action("fill", {"id": 5, "text": "x"}), boxes))["target"] \
        == "textbox 2"
    schema = json_schema(boxes)
    jsonschema.validate({"action": "click", "target": "Go 2", "id": 6}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"action": "click", "target": "Go", "id": 6}, schema)


def test_the_label_is_read_past_and_not_kept_in_the_action():
    action = Action.parse({"action": "click", "target": "Save", "id": 4})
    assert action.to_json() == {"action": "click", "id": 4}
    with pytest.raises(InvalidMessage, match="click.target must be a string"):
        Action.parse({"action": "click", "target": 4, "id": 4})
    with pytest.raises(InvalidMessage, match="done takes no argument target"):
        Action.parse({"action": "done", "target": "Save"})


def test_violation_names_the_ids_an_action_may_take_on_the_page():
    schema = json_schema(FORM)
    assert violation(Action.parse({"action": "click", "id": 4}), schema) is None
    assert violation(Action.parse({"action": "fill", "id": 4, "text": "x"}), schema) \
        == "fill.id 4 is not one of 2"
    assert violation(Action.parse({"action": "press", "key": "Enter"}), schema) is None
    assert violation(Action.parse({"action": "go_back"}),
                     json_schema(FORM, frozenset({("go_back", None)}))) \
        == "go_back is not possible on this page now"


def test_on_a_page_each_action_may_name_only_the_elements_it_applies_to():
    schema = json_schema(FORM)
    assert [i for i in range(1, 6) if valid({"action": "click", "id": i}, schema)] == [2, 3, 4]
    assert [i for i in range(1, 6) if valid({"action": "fill", "id": i, "text": "x"},
                                            schema)] == [2]
    assert [i for i in range(1, 6) if valid({"action": "select_option", "id": i, "option": "Red"},
                                            schema)] == [3]
    assert valid({"action": "scroll", "id": 1}, schema)        # context can be scrolled to
    assert not valid({"action": "click", "id": 9}, schema)     # not on the page


def test_actions_with_nothing_to_act_on_and_blocked_ones_are_not_offered():
    empty = json_schema(Observation("https://a.test/"))
    offered = {v["properties"]["action"]["const"] for v in empty["oneOf"]}
    assert "click" not in offered and "fill" not in offered and "done" in offered
    assert valid({"action": "press", "key": "Enter"}, empty)        # its id is optional
    assert not valid({"action": "press", "key": "Enter", "id": 1}, empty, FORM)
    blocked = json_schema(FORM, frozenset({("click", 4), ("go_back", None)}))
    assert not valid({"action": "click", "id": 4}, blocked)
    assert valid({"action": "click", "id": 2}, blocked)
    assert valid({"action": "fill", "id": 2, "text": "x"}, blocked)
    assert not valid({"action": "go_back"}, blocked)


def test_the_observation_lists_targets_first_and_context_after():
    text = FORM.render()
    assert text.index('[4] button "Save"') < text.index("Context (headings, images: not targets)")
    assert text.index("Context (") < text.index('[1] heading "Contact"')


def test_the_state_key_ignores_ids_and_order_and_sees_every_visible_change():
    renumbered = Observation(FORM.url, FORM.title, [dataclasses.replace(e, id=e.id + 10)
                                                    for e in FORM.elements][::-1])
    assert renumbered.state_key() == FORM.state_key()
    shuffled = [dataclasses.replace(FORM, text=t) for t in ("Red mug Blue mug", "Blue mug Red mug")]
    assert shuffled[0].state_key() == shuffled[1].state_key()   # a reshuffled list's text
    typed = Observation(FORM.url, FORM.title, [dataclasses.replace(e, value="Ada")
                                               if e.id == 2 else e for e in FORM.elements])
    assert typed.state_key() != FORM.state_key()
    assert dataclasses.replace(FORM, text="Saved!").state_key() != FORM.state_key()


def test_goto_may_lead_only_where_the_task_says_or_to_the_sites_front_page_elsewhere():
    from daemon.agent.policy import StepContext
    from daemon.core.actions import urls_in
    assert urls_in("Open https://a.test/x?q=1, then http://b.test/. Not ftp://c.test") == (
        "https://a.test/x?q=1", "http://b.test/")
    page = Observation("https://shop.test/cart?id=3", elements=[])
    context = StepContext("Compare with https://other.test/price.", page)
    assert context.destinations == ("https://other.test/price", "https://shop.test/")
    schema = json_schema(page, urls=context.destinations)
    goto = next(v for v in schema["oneOf"] if v["properties"]["action"]["const"] == "goto")
    assert goto["properties"]["url"] == {"enum": ["https://other.test/price",
                                                  "https://shop.test/"]}
    jsonschema.validate({"action": "goto", "url": "https://shop.test/"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"action": "goto", "url": "http://evil.example/"}, schema)
    front = StepContext("Compare with https://other.test/price.", Observation("https://shop.test/"))
    assert front.destinations == ("https://other.test/price",)    # not where it already is
    nowhere = json_schema(Observation("file:///tmp/a.html"), urls=())
    assert "goto" not in {v["properties"]["action"]["const"] for v in nowhere["oneOf"]}
