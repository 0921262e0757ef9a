"""The scripted policy reads written instructions and finds elements by label."""

from __future__ import annotations

import pytest
from conftest import run_async

from daemon.agent.policy import (
    PastStep,
    ScriptedPolicy,
    StepContext,
    split_instructions,
)
from daemon.core.actions import Action
from daemon.core.observation import Observation

OBS = Observation.from_json({"url": "http://x/", "title": "Form", "elements": [
    {"id": 1, "tag": "input", "role": "textbox", "name": "Full name", "editable": True},
    {"id": 2, "tag": "label", "role": "label", "name": "Name"},
    {"id": 3, "tag": "input", "role": "textbox", "name": "Name", "editable": True},
    {"id": 4, "tag": "select", "role": "combobox", "name": "Colour", "options": ["Red", "Blue"]},
    {"id": 5, "tag": "button", "role": "button", "name": "Send it now"},
]})


def decide(task: str, done_steps: int = 0) -> Action:
    history = [PastStep(Action("done"), True)] * done_steps
    return run_async(ScriptedPolicy().decide(StepContext(task, OBS, history))).action


def test_instructions_split_on_semicolons_newlines_and_then():
    assert split_instructions('click "A"; click "B"\nclick "C" then done.') == [
        'click "A"', 'click "B"', 'click "C"', "done"]


@pytest.mark.parametrize("instruction, expected", [
    ('fill "Name" with "Ada"', {"action": "fill", "id": 3, "text": "Ada"}),
    ('type "Ada" into "full name"', {"action": "fill", "id": 1, "text": "Ada"}),
    ('select "Blue" in "Colour"', {"action": "select_option", "id": 4, "option": "Blue"}),
    ('click "Send"', {"action": "click", "id": 5}),
    ('press Enter on "Full name"', {"action": "press", "key": "Enter", "id": 1}),
    ("scroll down", {"action": "scroll", "direction": "down"}),
    ('scroll to "Send"', {"action": "scroll", "id": 5}),
    ("goto https://example.com/", {"action": "goto", "url": "https://example.com/"}),
    ("go back", {"action": "go_back"}),
    ("wait 2", {"action": "wait", "seconds": 2.0}),
    ("answer 42 apples", {"action": "answer", "text": "42 apples"}),
])
def test_each_instruction_becomes_its_action(instruction, expected):
    assert decide(instruction).to_json() == expected


def test_it_takes_the_instruction_whose_turn_it_is_then_finishes():
    task = 'fill "Name" with "Ada"; click "Send"'
    assert decide(task, 0).name == "fill"
    assert decide(task, 1).to_json() == {"action": "click", "id": 5}
    assert decide(task, 2).to_json() == {"action": "done"}


def test_it_gives_up_with_a_reason_when_it_cannot_go_on():
    assert decide('click "Nowhere"').to_json() == {
        "action": "give_up", "reason": "no element labelled 'Nowhere' on the page"}
    assert decide("make me a sandwich").args["reason"] == (
        "cannot read the instruction 'make me a sandwich'")
    # fill only targets editable elements: the label element 2 is skipped for 3.
    assert decide('fill "Colour" with "x"').name == "give_up"
