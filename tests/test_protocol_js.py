"""extension/protocol.js mirrors daemon/core/protocol.py: every message type, with the same
fields, the same optional ones and compatible JSON types. The daemon validates every frame, so a
drift here is a typedef the extension's author would trust and the daemon would refuse."""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from pathlib import Path

import pytest

from daemon.core import protocol as p
from daemon.core.observation import Element, Observation

PROTOCOL_JS = Path(__file__).resolve().parent.parent / "extension" / "protocol.js"
WIRE_SECTION = re.compile(r"// -- wire messages(.*?)// -- service worker", re.S)
TYPEDEF = re.compile(r"@typedef \{\{(.*?)\}\} (\w+)")


def split_top(text: str) -> list[str]:
    """Split `a: x, b: {c: y, d: z}` on the commas outside braces and brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "{[("
        depth -= char in "}])"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return parts + [current.strip()] if current.strip() else parts


def js_messages() -> dict[str, dict[str, tuple[bool, str]]]:
    """type → {field: (optional, JS type)} for each wire typedef of protocol.js."""
    section = WIRE_SECTION.search(PROTOCOL_JS.read_text()).group(1)
    found: dict[str, dict[str, tuple[bool, str]]] = {}
    for body, name in TYPEDEF.findall(section):
        fields = {}
        for member in split_top(body):
            key, _, kind = member.partition(":")
            fields[key.strip().rstrip("?")] = (key.strip().endswith("?"), kind.strip())
        kind = fields.pop("type")[1].strip('"')
        assert kind not in found, f"protocol.js has two typedefs for {kind!r} ({name})"
        found[kind] = fields
    return found


def py_fields(cls: type[p.Message]) -> dict[str, tuple[bool, object]]:
    hints = typing.get_type_hints(cls, vars(p))
    return {f.name: (f.default is not dataclasses.MISSING
                     or f.default_factory is not dataclasses.MISSING, hints[f.name])
            for f in dataclasses.fields(cls)}


def js_type_fits(annotation: object, js: str) -> bool:
    """Does the JS type admit the Python one's JSON values? Literals must list the same values
    (or name an alias such as `Source`); str, int, float and bool map to string, number and
    boolean;
    anything else (dict) to an object type."""
    args = typing.get_args(annotation)
    if type(None) in args:
        annotation = next(a for a in args if a is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        values = {f'"{v}"' if isinstance(v, str) else str(v) for v in typing.get_args(annotation)}
        return js.isidentifier() or {part.strip() for part in js.split("|")} == values
    simple = {str: "string", int: "number", float: "number", bool: "boolean"}
    return simple.get(annotation) == js if annotation in simple else js not in simple.values()


def test_protocol_js_has_every_message_type_and_no_other():
    assert sorted(js_messages()) == sorted(p.MESSAGES)


@pytest.mark.parametrize("kind", sorted(p.MESSAGES))
def test_each_message_has_the_same_fields_and_optionality(kind):
    js = js_messages()[kind]
    py = py_fields(p.MESSAGES[kind])
    assert sorted(js) == sorted(py), f"{kind}: fields differ"
    for name, (optional, annotation) in py.items():
        assert js[name][0] == optional, \
            f"{kind}.{name} is {'optional' if optional else 'required'} in protocol.py"
        assert js_type_fits(annotation, js[name][1]), \
            f"{kind}.{name}: {js[name][1]!r} in protocol.js, {annotation} in protocol.py"


def test_a_drifted_typedef_is_caught(tmp_path, monkeypatch):
    """The check itself can fail: drop a field from one typedef and it must notice."""
    drifted = PROTOCOL_JS.read_text().replace(", notice?: string}} EpisodeUpdate",
                                              "}} EpisodeUpdate")
    assert drifted != PROTOCOL_JS.read_text()
    copy = tmp_path / "protocol.js"
    copy.write_text(drifted)
    monkeypatch.setattr(sys.modules[__name__], "PROTOCOL_JS", copy)
    with pytest.raises(AssertionError, match="episode: fields differ"):
        test_each_message_has_the_same_fields_and_optionality("episode")


@pytest.mark.parametrize("cls", [Element, Observation], ids=lambda c: c.__name__)
def test_the_observation_typedefs_name_the_fields_the_daemon_reads(cls):
    """What the content script sends (protocol.js's Element and Observation) is what
    daemon/core/observation.py reads: the same field names."""
    text = re.sub(r"\n\s*\*", " ", PROTOCOL_JS.read_text())      # typedefs over several lines
    typedefs = {name: body for body, name in TYPEDEF.findall(text)}
    js = {member.partition(":")[0].strip().rstrip("?")
          for member in split_top(typedefs[cls.__name__])}
    assert js == {f.name for f in dataclasses.fields(cls)}
