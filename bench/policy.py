"""Benchmark: the on-device policy, step by step, in real episodes.

1. Runs model-driven episodes on a typical page (synth_100: 99 elements) through the real
   daemon, extension and browser until --steps steps are recorded, then prints p50/p95 of each
   part of a step: observation, prompt build, prefill (uncached tokens, ms), decode (tokens,
   ms), action execution.
2. Prefix-cache reuse on steps 2..n: the fraction of prompt tokens not recomputed.
3. Peak memory (VmHWM) of the daemon process with the model loaded.
4. In this process: prefill and decode throughput of `LlamaPolicy` against a bare
   llama-cpp-python streaming call on the same prompt with the same grammar and sampling, both
   from an empty cache, alternating, --repeats times (ratio: policy / bare; 1.0 = no overhead).

Usage: python bench/policy.py [--steps 50] [--repeats 10]. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import time

from harness import bench_setup, header, pct, sys_path_tests

TASKS = ["Click the Edit button of the first row", "Type 'north' into the search field",
         "Open the report details", "Select the second option of the first list",
         "Check the first checkbox"]


async def episodes(steps: int) -> None:
    from daemon.core import protocol as p
    from daemon.service.client import connected

    async with bench_setup("--policy", "llm", "--max-steps", "10", "--seed", "1") as bench:
        header("nightloop policy bench")
        done = 0
        async with connected(bench.port, bench.token) as client:
            for i in range(100):
                if done >= steps:
                    break
                reply = await client.request(p.Task(TASKS[i % len(TASKS)], source="cli",
                                                    url=f"{bench.base_url}/synth_100.html"))
                async for message in client.messages():
                    if isinstance(message, p.EpisodeUpdate) and \
                            message.episode["id"] == reply.episode["id"] and \
                            message.episode["status"] != "running":
                        done += message.episode["n_steps"]
                        break
        peak_kb = _vm_hwm_kb(bench.daemon.pid)
        report_steps(bench.db, steps)
    print(f"Daemon peak resident memory (VmHWM, model loaded, {done} steps run): "
          f"{peak_kb / 1024:.0f} MiB\n")


def _vm_hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))


def report_steps(db, limit: int) -> None:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = conn.execute('SELECT * FROM steps WHERE prompt_tokens IS NOT NULL '
                        'ORDER BY episode_id, "index" LIMIT ?', (limit,)).fetchall()
    columns = [
        ("observation (ms)", lambda r: r["observe_ms"]),
        ("prompt build (ms)", lambda r: r["prompt_ms"]),
        ("prefill: uncached tokens", lambda r: r["prompt_tokens"] - r["cached_tokens"]),
        ("prefill (ms)", lambda r: r["prefill_ms"]),
        ("decode: tokens", lambda r: r["completion_tokens"]),
        ("decode (ms)", lambda r: r["decode_ms"]),
        ("policy total (ms)", lambda r: r["policy_ms"]),
        ("action execution (ms)", lambda r: r["act_ms"]),
        ("step total (ms)", lambda r: r["observe_ms"] + r["policy_ms"] + r["act_ms"]),
    ]
    print(f"## Per-step breakdown on synth_100 ({len(rows)} model-driven steps)\n")
    print("| part | p50 | p95 |")
    print("|---|---|---|")
    for label, get in columns:
        values = [get(r) for r in rows]
        print(f"| {label} | {pct(values, .5):.1f} | {pct(values, .95):.1f} |")
    later = [r for r in rows if r["index"] > 0]
    reused = sum(r["cached_tokens"] for r in later) / sum(r["prompt_tokens"] for r in later)
    mean_prompt = statistics.mean(r["prompt_tokens"] for r in later)
    print(f"\nPrefix-cache reuse on steps 2..n: {reused:.1%} of prompt tokens not recomputed "
          f"({len(later)} steps; mean prompt {mean_prompt:.0f} tokens)\n")
    invalid = sum(r["invalid"] for r in rows)
    print(f"Invalid actions: {invalid} of {len(rows)} steps\n")


def throughput(repeats: int) -> None:
    from llama_cpp import LlamaGrammar

    from daemon.agent.llama_policy import LlamaPolicy
    from daemon.agent.policy import StepContext
    from daemon.core.actions import json_schema
    from daemon.core.observation import Observation
    from daemon.core.settings import Settings

    sys_path_tests()
    from synthetic import observation

    policy = LlamaPolicy(Settings(seed=1, temperature=0.25))
    llm = policy.llm
    obs = Observation.from_json(observation(7, 60))
    context = StepContext("Type 'Lisbon' into the city field and press Enter", obs, [])
    text, tokens = policy._prompt(context)
    grammar = LlamaGrammar.from_json_schema(json.dumps(json_schema(obs)), verbose=False)
    ours = {"prefill": [], "decode": []}
    bare = {"prefill": [], "decode": []}
    for _ in range(repeats):
        llm.reset()
        usage = policy.decide_now(context).usage
        ours["prefill"].append(usage.prompt_tokens / usage.prefill_ms * 1000)
        ours["decode"].append(usage.completion_tokens / usage.decode_ms * 1000)

        llm.reset()
        llm.set_seed(1)
        t0 = time.perf_counter()
        first, n = None, 0
        for _chunk in llm.create_completion(tokens, max_tokens=400, temperature=0.25,
                                            grammar=grammar, stream=True, seed=1):
            if first is None:
                first = time.perf_counter()
            n += 1
        end = time.perf_counter()
        bare["prefill"].append(len(tokens) / (first - t0))
        bare["decode"].append((n - 1) / (end - first))
    print(f"## Throughput, policy vs bare llama-cpp-python ({repeats} alternating runs, "
          f"{len(tokens)}-token prompt, empty cache)\n")
    print("| | policy tok/s | bare tok/s | ratio |")
    print("|---|---|---|---|")
    for part in ("prefill", "decode"):
        a, b = statistics.median(ours[part]), statistics.median(bare[part])
        print(f"| {part} | {a:.1f} | {b:.1f} | {a / b:.3f} |")
    print("\nBoth stream through llama.cpp with the same grammar and sampling; 'policy' adds "
          "prompt fitting, tokenization, the grammar cache and action parsing.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(episodes(args.steps))
    throughput(args.repeats)
