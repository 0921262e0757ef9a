"""The action grammar: `actions.json_schema` as GBNF for llama.cpp, factored so that sampling
stays fast on large pages.

The schema offers one variant per element an action may name (its label and id fixed): a page of
40 elements gives some 190 variants. llama.cpp's own converter makes each an alternative of the
root, and its sampler then follows all of them at once at every token (2x to 9x a bare id's
decoding time on pages of 10 to 400 elements: bench/grammar.py; factored, ~1.7x, the cost of
the label's tokens). Here the element variants of one action with the same other properties
become one object rule whose (label, id) pair is an alternation: they share their prefix, and
only the chosen action's pairs are followed (a select's own options make one rule per select).
The language is the converter's (tested: the same draws for the same seed) but for one rule: a
JSON string's character excludes raw control characters, as llama.cpp's own converter has it
(llama-cpp-python's accepts a raw newline inside a string, which no JSON parser takes). Built on
llama-cpp-python's `SchemaConverter` (its rule table and literal escaping).
"""

from __future__ import annotations

import functools
import json
import re

ELEMENT = "element"     # the placeholder property that an element's (label, id) pair replaces
CHAR = (r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] '
        r'[0-9a-fA-F])')    # a JSON string's character (llama.cpp's json-schema-to-grammar)


@functools.lru_cache(maxsize=32)
def to_gbnf(schema: str) -> str:
    """GBNF accepting exactly the JSON texts that `schema` (a JSON schema, as JSON) accepts;
    an action schema (json_schema's) factored as above."""
    from llama_cpp.llama_grammar import SchemaConverter
    parsed = json.loads(schema)
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False,
                                raw_pattern=False)
    if "oneOf" not in parsed:
        converter.visit(converter.resolve_refs(parsed, "stdin"), "")
        return _strict(converter)
    by_action: dict[str, list[dict]] = {}
    for variant in parsed["oneOf"]:
        by_action.setdefault(variant["properties"]["action"]["const"], []).append(variant)
    branches = []
    for action, variants in by_action.items():
        pinned = [v for v in variants if "const" in v["properties"].get("target", {})]
        branches += [converter.visit(v, f"{action}-{i}")
                     for i, v in enumerate(v for v in variants if v not in pinned)]
        alike: dict[str, list[dict]] = {}           # the same other properties (a select's
        for v in pinned:                            # own options differ)
            rest = {k: r for k, r in v["properties"].items() if k not in ("target", "id")}
            alike.setdefault(json.dumps(rest, sort_keys=True), []).append(v)
        branches += [_on_elements(converter, f"{action}{f'-own{i}' if i else ''}", group)
                     for i, group in enumerate(alike.values())]
    converter._add_rule("root", " | ".join(branches))                  # noqa: SLF001
    return _strict(converter)


def _strict(converter) -> str:
    """The converter's grammar, its string characters JSON's (no raw control characters)."""
    rules = converter._rules                                            # noqa: SLF001
    if "char" in rules:
        rules["char"] = CHAR
    return converter.format_grammar()


def _on_elements(converter, action: str, pinned: list[dict]) -> str:
    """One object rule for `action`'s element variants (the same other properties), their
    (label, id) pairs in one alternation; returns its name."""
    shape = {(ELEMENT if k == "target" else k): {"const": 0} if k == "target" else rule
             for k, rule in pinned[0]["properties"].items() if k != "id"}
    required = [ELEMENT if k == "target" else k for k in pinned[0]["required"] if k != "id"]
    name = converter.visit({"type": "object", "properties": shape, "required": required,
                            "additionalProperties": False}, f"{action}-on")
    rules = converter._rules                                            # noqa: SLF001
    kv = re.search(rf"\S+-{ELEMENT}-kv", rules[name]).group(0)
    del rules[kv.removesuffix("-kv")]                                   # the placeholder's value
    rules[kv] = " | ".join(
        f'{_pair(converter, "target", v["properties"]["target"]["const"])} "," space '
        f'{_pair(converter, "id", v["properties"]["id"]["const"])}' for v in pinned)
    return name


def _pair(converter, key: str, value: object) -> str:
    literal = converter._format_literal                                 # noqa: SLF001
    return f'{literal(json.dumps(key))} space ":" space {literal(json.dumps(value))}'
