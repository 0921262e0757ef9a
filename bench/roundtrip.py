"""Benchmark: observe + act round trips through daemon ↔ extension, and observation cost.

Starts a real daemon and a real headless Chromium with the extension, serves the generated pages
of ../shared/bench-pages (about 100, 1,000 and 10,000 elements) plus the test form, and prints:

1. round-trip latency (p50/p95 ms) of observe, act and observe+act as a client sees them;
2. per page: observe latency, observation size (JSON chars, prompt text chars, real tokens of
   the policy model's tokenizer, elements kept/cut), beside a baseline measured in the same run:
   fetching the DOM snapshot + full accessibility tree over CDP, which is what browser-use and
   BrowserGym start from (their own processing comes on top).

Usage: python bench/roundtrip.py [--rounds 50] [--repeats 10]. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GEN_PAGES = REPO.parent / "shared" / "bench-pages" / "gen_pages.py"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve(directory: Path) -> str:
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def timed(coro) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = await coro
    return (time.perf_counter() - t0) * 1000, result


async def main(rounds: int, repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="nightloop-bench-"))
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    os.environ["XDG_DATA_HOME"] = str(work / "data")
    from playwright.async_api import async_playwright

    from daemon import protocol as p
    from daemon.browser import launch_with_playwright
    from daemon.client import connected
    from daemon.config import config_dir
    from daemon.models import shipped_model
    from daemon.observation import Observation
    from daemon.pairing import load_or_create_token

    pages = work / "pages"
    subprocess.run([sys.executable, str(GEN_PAGES), str(pages)], check=True,
                   stdout=subprocess.DEVNULL)
    shutil.copy(REPO / "tests" / "pages" / "form.html", pages)
    base = serve(pages)
    port = free_port()
    token = load_or_create_token(config_dir())
    daemon = subprocess.Popen([str(Path(sys.executable).parent / "nightloop"), "daemon",
                               "--port", str(port), "--db", str(work / "bench.db")],
                              stdout=subprocess.PIPE, text=True)
    assert "listening" in daemon.stdout.readline()

    from llama_cpp import Llama
    tokenizer = Llama(model_path=str(shipped_model()), vocab_only=True, verbose=False)

    def n_tokens(text: str) -> int:
        return len(tokenizer.tokenize(text.encode(), add_bos=False))

    try:
        async with async_playwright() as pw:
            context = await launch_with_playwright(pw.chromium, work / "profile", port=port,
                                                   token=token)
            page = await context.new_page()
            await page.goto(f"{base}/form.html")
            async with connected(port, token) as client:
                for _ in range(100):
                    status = await client.request(p.Status())
                    if status.browser_connected:
                        break
                    await asyncio.sleep(0.1)
                print(f"# nightloop bench: {time.strftime('%Y-%m-%d %H:%M')}, "
                      f"{os.cpu_count()} cores, Chromium via extension, daemon on 127.0.0.1\n")
                await roundtrips(client, p, rounds)
                await observations(client, p, context, page, base, repeats, n_tokens,
                                   Observation)
            await context.close()
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(work, ignore_errors=True)


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


async def observations(client, p, context, page, base, repeats, n_tokens, Observation) -> None:
    print(f"## Observation per page (median of {repeats})\n")
    print("| page | DOM elements | ours: observe ms | JSON chars | prompt chars | "
          "prompt tokens | kept / cut | CDP snapshot+AX ms | CDP JSON chars | time ratio | "
          "size ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cdp = await context.new_cdp_session(page)
    for name in ("form", "synth_100", "synth_1000", "synth_10000"):
        await page.goto(f"{base}/{name}.html")
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
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.repeats))
