"""Benchmark: what naming elements by their label costs the policy's decoding.

On synthetic pages of 10 to 400 elements, one greedy decision per page and task, decoded under
three grammars from the same prompt (the shipped model, 2 threads, the prompt's prefix cached
so that only decoding differs):

- ``id only``: the old form, an id chosen from the page's (`{"action": "click", "id": 4}`);
- ``label + id, one alternative per element``: the action schema through llama.cpp's own
  converter (each element variant an alternative of the root);
- ``label + id, factored``: the same language as the grammar the policy uses
  (daemon/agent/grammar.py).

Usage: python bench/grammar.py [--repeats 3]. Prints ms and tokens per decision (medians) and
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics

from harness import header, sys_path_tests

SIZES = (10, 40, 100, 400)
TASKS = ("Click the Submit button", "Type 'Lisbon' into the city field")


def id_only(schema: dict) -> dict:
    """`schema` as it was before labels: one variant per action, its ids an enum."""
    merged: dict[str, dict] = {}
    for variant in schema["oneOf"]:
        props = variant["properties"]
        name = props["action"]["const"]
        if "const" not in props.get("target", {}):
            merged.setdefault(name + "/plain", variant)
            continue
        kept = merged.setdefault(name, {**variant, "properties": {
            k: ({"enum": []} if k == "id" else rule) for k, rule in props.items()
            if k != "target"}, "required": [k for k in variant["required"] if k != "target"]})
        kept["properties"]["id"]["enum"].append(props["id"]["const"])
    return {"oneOf": list(merged.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from daemon.agent.grammar import to_gbnf
    from daemon.agent.llama_policy import LlamaPolicy
    from daemon.agent.policy import StepContext
    from daemon.core.actions import json_schema
    from daemon.core.observation import Observation
    from daemon.core.settings import Settings
    sys_path_tests()
    from synthetic import observation

    header("nightloop grammar bench")
    policy = LlamaPolicy(Settings(seed=1, temperature=0.0))
    forms = {"id only": lambda s: json_schema_to_gbnf(json.dumps(id_only(s))),
             "label + id, one alternative per element": lambda s: json_schema_to_gbnf(
                 json.dumps(s)),
             "label + id, factored (the policy's)": lambda s: to_gbnf(json.dumps(s))}
    print("| elements | schema variants | " + " | ".join(f"{f}: ms / tokens" for f in forms)
          + " | factored vs one per element |")
    print("|---|---|" + "---|" * len(forms) + "---|")
    for size in SIZES:
        obs = Observation.from_json(observation(size, size))
        schema = json_schema(obs)
        grammars = {name: build(schema) for name, build in forms.items()}
        times: dict[str, list[float]] = {name: [] for name in forms}
        tokens: dict[str, list[int]] = {name: [] for name in forms}
        for task in TASKS:
            _, prompt = policy._prompt(StepContext(task, obs))             # noqa: SLF001
            policy._generate(prompt, grammars["id only"], seed=1)  # noqa: SLF001 (the cache)
            for _ in range(args.repeats):
                for name, gbnf in grammars.items():                 # alternating, cache warm
                    _, usage, _ = policy._generate(prompt, gbnf, seed=1)   # noqa: SLF001
                    times[name].append(usage.decode_ms + usage.prefill_ms)
                    tokens[name].append(usage.completion_tokens)
        cells = [f"{statistics.median(times[n]):.0f} / {statistics.median(tokens[n]):.0f}"
                 for n in forms]
        names = list(forms)
        ratio = statistics.median(times[names[2]]) / statistics.median(times[names[1]])
        print(f"| {size} | {len(schema['oneOf'])} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    print("\nms: decoding one action (the prompt's prefix in llama.cpp's cache: the same for "
          "every form); tokens: the action's. The label adds tokens; the factoring keeps the "
          "sampler's work per token near the id-only form's.")


if __name__ == "__main__":
    main()
