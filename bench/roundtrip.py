"""Benchmark: observe + act round trips through daemon ↔ extension, and observation cost.

Starts a real daemon and a real headless Chromium with the extension, serves the pages
bench/pages.py generates (about 100, 1,000 and 10,000 elements) plus the test form, and prints:

1. round-trip latency (p50/p95 ms) of observe, act and observe+act as a client sees them;
2. per page: observe latency, observation size (JSON chars, prompt text chars, real tokens of
   the policy model's tokenizer, elements kept/cut), beside a baseline measured in the same run:
   fetching the DOM snapshot + full accessibility tree over CDP, which is what browser-use and
   BrowserGym start from (their own processing comes on top).

Usage: python bench/roundtrip.py [--rounds 50] [--repeats 10] [--pages DIR]. With --pages, the
observation table covers every *.html under DIR (served as it is, so its assets load) instead
of the generated pages. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from harness import bench_setup, header, pct, timed


async def main(rounds: int, repeats: int, pages: Path | None) -> None:
    from llama_cpp import Llama

    from daemon.core import protocol as p
    from daemon.core.models import shipped_model
    from daemon.core.observation import Observation
    from daemon.service.client import connected
    from daemon.tasks.static import serve_directory

    tokenizer = Llama(model_path=str(shipped_model()), vocab_only=True, verbose=False)

    def n_tokens(text: str) -> int:
        return len(tokenizer.tokenize(text.encode(), add_bos=False))

    async with bench_setup("--policy", "scripted") as bench:
        page = await bench.context.new_page()
        await page.goto(f"{bench.base_url}/form.html")
        async with connected(bench.port, bench.token) as client:
            header("nightloop round-trip bench")
            await roundtrips(client, p, rounds)
            if pages is None:
                urls = {name: f"{bench.base_url}/{name}.html"
                        for name in ("form", "synth_100", "synth_1000", "synth_10000")}
                await observations(client, p, bench.context, page, urls, repeats, n_tokens,
                                   Observation)
                return
            with serve_directory(pages) as base:
                urls = {str(f.relative_to(pages)): f"{base}/{f.relative_to(pages).as_posix()}"
                        for f in sorted(pages.rglob("*.html"))}
                if not urls:
                    raise SystemExit(f"no *.html pages under {pages}")
                await observations(client, p, bench.context, page, urls, repeats, n_tokens,
                                   Observation)


async def roundtrips(client, p, rounds: int) -> None:
    observe_ms, act_ms, both_ms = [], [], []
    for i in range(rounds + 5):
        t_obs, reply = await timed(client.request(p.Observe("")))
        name_id = next(e["id"] for e in reply.observation["elements"] if e["name"] == "Name")
        t_act, result = await timed(client.request(
            p.Act("", {"action": "fill", "id": name_id, "text": f"round {i}"})))
        assert result.ok, result.error
        if i >= 5:      # warm-up rounds are not counted
            observe_ms.append(t_obs)
            act_ms.append(t_act)
            both_ms.append(t_obs + t_act)
    print(f"## Round trip on the test form ({rounds} rounds after 5 warm-up)\n")
    print("| request | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|")
    for label, values in (("observe", observe_ms), ("act (fill)", act_ms),
                          ("observe + act", both_ms)):
        print(f"| {label} | {pct(values, .5):.1f} | {pct(values, .95):.1f} | "
              f"{max(values):.1f} |")
    print()


async def observations(client, p, context, page, urls: dict[str, str], repeats, n_tokens,
                       Observation) -> None:
    print(f"## Observation per page (median of {repeats})\n")
    print("| page | DOM elements | ours: observe ms | JSON chars | prompt chars | "
          "prompt tokens | kept / cut | CDP snapshot+AX ms | CDP JSON chars | time ratio | "
          "size ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cdp = await context.new_cdp_session(page)
    for name, url in urls.items():
        await page.goto(url)
        n_dom = await page.evaluate("document.querySelectorAll('*').length")
        ours, reply = [], None
        for _ in range(repeats + 1):
            ms, reply = await timed(client.request(p.Observe("")))
            ours.append(ms)
        ours = ours[1:]
        obs = reply.observation
        text = Observation.from_json(obs).render()
        baseline, size = [], 0
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            snap = await cdp.send("DOMSnapshot.captureSnapshot",
                                  {"computedStyles": ["display", "visibility", "opacity"],
                                   "includeDOMRects": True})
            ax = await cdp.send("Accessibility.getFullAXTree")
            baseline.append((time.perf_counter() - t0) * 1000)
            size = len(json.dumps(snap)) + len(json.dumps(ax))
        baseline = baseline[1:]
        ours_ms, base_ms = statistics.median(ours), statistics.median(baseline)
        json_chars = len(json.dumps(obs))
        print(f"| {name} | {n_dom} | {ours_ms:.1f} | {json_chars:,} | {len(text):,} | "
              f"{n_tokens(text):,} | {len(obs['elements'])} / {obs['omitted_elements']} | "
              f"{base_ms:.1f} | {size:,} | {base_ms / ours_ms:.1f}x | "
              f"{size / json_chars:.0f}x |")
    print("\nratios: CDP baseline / ours (higher is better for us). Tokens are SmolLM2's.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--pages", type=Path, default=None,
                        help="time the observation of every *.html under this folder")
    args = parser.parse_args()
    if args.pages is not None and not args.pages.is_dir():
        parser.error(f"--pages {args.pages}: not a folder")
    asyncio.run(main(args.rounds, args.repeats, args.pages))
