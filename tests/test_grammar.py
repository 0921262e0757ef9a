"""The action grammar (GBNF for llama.cpp): the schema's language, with its element variants
factored so that the sampler follows few alternatives. Checked with llama.cpp's own grammar
engine on the shipped model's vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import observations

from daemon.agent.grammar import to_gbnf
from daemon.agent.policy import StepContext
from daemon.agent.sampling import GrammarSampler
from daemon.core.actions import TARGETS, Action, json_schema, written
from daemon.core.models import shipped_model
from daemon.core.observation import Observation

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def vocab():
    from llama_cpp import Llama
    return Llama(model_path=str(shipped_model()), vocab_only=True, verbose=False)


def accepts(llm, gbnf: str, text: str) -> bool:
    """Whether llama.cpp's grammar engine takes `text`, token by token, to a finished action."""
    scores = np.zeros(llm.n_vocab(), dtype=np.single)
    with GrammarSampler(llm, gbnf, 1.0) as grammar:
        try:
            for token in llm.tokenize(text.encode(), add_bos=False, special=False):
                grammar(None, scores)
                grammar.accept(token)
        except ValueError:
            return False
        return bool(np.isfinite(grammar(None, scores)[llm.token_eos()]))


PAGE = Observation.from_json(observations(4, seed=5)[3])        # 40 elements


def test_every_action_on_every_element_is_written_in_the_grammar_and_nothing_else(vocab):
    gbnf = to_gbnf(json.dumps(json_schema(PAGE)))
    clickable = [e for e in PAGE.elements if TARGETS["clickable"](e)]
    assert len(clickable) >= 5
    for e in clickable[:5]:
        assert accepts(vocab, gbnf, written(Action("click", {"id": e.id}), PAGE))
    editable = next(e for e in PAGE.elements if e.editable)
    assert accepts(vocab, gbnf, written(Action("fill", {"id": editable.id, "text": "Ada"}), PAGE))
    assert accepts(vocab, gbnf, '{"action": "press", "key": "Enter"}')      # no element: fine
    assert accepts(vocab, gbnf, '{"action": "done"}')
    first, second = clickable[:2]
    assert not accepts(vocab, gbnf, json.dumps(                             # another's label
        {"action": "click", "target": PAGE.labels()[second.id], "id": first.id}))
    assert not accepts(vocab, gbnf, json.dumps({"action": "click", "id": first.id}))
    if not editable.context and TARGETS["clickable"](editable):
        assert not accepts(vocab, gbnf, json.dumps(                        # a box is not a button
            {"action": "fill", "target": PAGE.labels()[first.id], "id": first.id, "text": "x"}))


def test_an_actions_element_variants_share_one_alternative_of_the_root():
    schema = json_schema(PAGE)
    gbnf = to_gbnf(json.dumps(schema))
    root = next(line for line in gbnf.splitlines() if line.startswith("root ::= "))
    actions = {v["properties"]["action"]["const"] for v in schema["oneOf"]}
    assert len(schema["oneOf"]) > 3 * len(actions)              # many elements...
    own = sum(1 for e in PAGE.elements if e.choices)            # each its own options; the
    free = any(e.options and not e.choices for e in PAGE.elements)  # rest share one rule
    assert root.count("|") + 1 <= len(actions) + 2 + max(0, own + free - 1)  # ...few alternatives
                                                # (press and scroll: with and without one)


def test_a_string_holds_no_raw_control_character_so_every_output_parses(vocab):
    """Practice drew `"text": "...\n..."` with a raw newline, which no JSON parser takes: the
    string's characters are JSON's, as in llama.cpp's own converter."""
    editable = next(e for e in PAGE.elements if e.editable)
    fill = written(Action("fill", {"id": editable.id, "text": "two\nlines"}), PAGE)
    answer = json.dumps({"action": "answer", "text": "two\nlines"})
    with pytest.raises(json.JSONDecodeError):
        json.loads(fill.replace("\\n", "\n"))
    for gbnf, text in ((to_gbnf(json.dumps(json_schema(PAGE))), fill),
                       (to_gbnf(json.dumps(json_schema(PAGE))), answer),
                       (to_gbnf(json.dumps(json_schema())), answer)):
        assert accepts(vocab, gbnf, text)                   # escaped: fine
        assert not accepts(vocab, gbnf, text.replace("\\n", "\n"))
        assert not accepts(vocab, gbnf, text.replace("two", "two\t"))


def test_with_fill_text_task_a_fill_types_only_a_span_of_the_task(vocab):
    """The grammar, built by llama.cpp's engine on the shipped vocabulary, holds a fill's text
    to the task's spans; with none in the task, or free, any text."""
    task = 'Type "Ada Lovelace" into the Full name box, then press Save'
    editable = next(e for e in PAGE.elements if e.editable)
    held = to_gbnf(json.dumps(StepContext(task, PAGE).schema("task")))
    free = to_gbnf(json.dumps(StepContext(task, PAGE).schema("free")))

    def fill(text: str) -> str:
        return written(Action("fill", {"id": editable.id, "text": text}), PAGE)
    for span in ("Ada Lovelace", "Full name", "Save", "into the Full name box"):
        assert accepts(vocab, held, fill(span))
    for other in ("Ada Lovelace into the Full name box", "Bob", "Ada Lovelace,"):
        assert not accepts(vocab, held, fill(other)) and accepts(vocab, free, fill(other))
    assert accepts(vocab, held, '{"action": "done"}')
    none = to_gbnf(json.dumps(StepContext("...", PAGE).schema("task")))    # nothing to copy
    assert accepts(vocab, none, fill("Bob"))
    # A secret the task names is one span, typed as its placeholder, never its bare name.
    named = to_gbnf(json.dumps(StepContext("Log in with {{SHOP_PW}}", PAGE).schema("task")))
    assert accepts(vocab, named, fill("{{SHOP_PW}}"))
    assert not accepts(vocab, named, fill("SHOP_PW")) and not accepts(vocab, named,
                                                                     fill("{{SHOP_PW"))


def test_a_select_takes_only_its_own_options_unless_the_page_cut_some_off(vocab):
    from daemon.core.observation import Element
    city = Element(7, "select", "combobox", "City", options=["Paris", "Lima", "Rome"],
                   selected="Paris")
    size = Element(8, "select", "combobox", "Size", options=["S", "M"], selected="S")
    long = Element(9, "select", "combobox", "Country", options=[f"C{i}" for i in range(30)],
                   options_omitted=170)
    page = Observation("https://a.test/", "A", [city, size, long,
                                                Element(10, "button", "button", "Save")])
    gbnf = to_gbnf(json.dumps(json_schema(page)))

    def choose(element: Element, option: str) -> str:
        return written(Action("select_option", {"id": element.id, "option": option}), page)
    assert accepts(vocab, gbnf, choose(city, "Lima")) and accepts(vocab, gbnf, choose(size, "M"))
    assert not accepts(vocab, gbnf, choose(city, "M"))             # another select's option
    assert not accepts(vocab, gbnf, choose(city, "Lisbon"))        # no such option
    assert accepts(vocab, gbnf, choose(long, "Zambia"))            # the rest were cut: free
    assert "(and 170 more options)" in long.render()
    assert Element(1, "select", "combobox", "X", options=["A very long option te…"]).choices \
        is None                                                     # a clipped text: free
    quoted = Element(2, "select", "combobox", "Y", options=['"quoted" total', "na\\ive"])
    assert quoted.choices is None                                   # escapes: free
    assert accepts(vocab, to_gbnf(json.dumps(json_schema(Observation("u", "", [quoted])))),
                   written(Action("select_option", {"id": 2, "option": "na\\ive"}),
                           Observation("u", "", [quoted])))
