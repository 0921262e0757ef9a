"""Benchmark: what a screenshot per step costs, and a picture of the HTML report.

The bundled sites' templates are run by their scripted teacher (no model: every millisecond a
screenshot adds is on the step's critical path, the worst case) on the same test seeds twice,
without and with ``--screenshots``; with ``--llm``, one template also by the shipped model, where
the picture is taken while the model decides and the step waits only for what is left.
Per step: wall time, the extension's capture and encode, the daemon's write, how long the step
waited for the picture after the policy decided, and the JPEG's size. Then one episode's report
(`nightloop episodes report`) is opened in headless Chromium and saved as ``OUT/report.png``
(the README's picture).

Usage: python bench/screenshots.py [--seeds 3] [--llm] [--out DIR]. Prints a table, asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import tempfile
from pathlib import Path

from harness import NIGHTLOOP, REPO, header, pct


def run_eval(home: Path, db: Path, seeds: int, *extra: str) -> list[dict]:
    """`nightloop eval sites` in `home`; its episodes."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_DATA_HOME": str(home / "data")}
    out = subprocess.run([NIGHTLOOP, "eval", "sites", "--seeds", str(seeds), "--json",
                          "--db", str(db), "--out", str(home / f"report-{db.stem}"), *extra],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)["episodes"]


def shots(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        return [json.loads(row[0]) for row in
                conn.execute("SELECT screenshot FROM steps WHERE screenshot IS NOT NULL")]


def per_step_seconds(episodes: list[dict]) -> float:
    return sum(e["seconds"] for e in episodes) / max(1, sum(e["steps"] for e in episodes))


def row(label: str, episodes: list[dict], taken: list[dict], base: float | None) -> str:
    kept = [s for s in taken if "file" in s]
    step = per_step_seconds(episodes)

    def p50(key: str) -> str:
        values = [s[key] for s in kept if s.get(key) is not None]
        return f"{statistics.median(values):.0f}" if values else "–"
    size = [s["bytes"] / 1000 for s in kept]
    return (f"| {label} | {sum(e['steps'] for e in episodes)} | {step * 1000:.0f} | "
            f"{f'{step / base:.2f}' if base else '1.00'} | {len(kept)} | {p50('capture_ms')} | "
            f"{p50('encode_ms')} | {p50('write_ms')} | {p50('waited_ms')} | "
            + (f"{statistics.median(size):.0f} / {max(size):.0f}" if size else "–") + " |")


def picture_of_report(db: Path, episode_id: int, out: Path) -> None:
    """Write the episode's report and save how Chromium shows it."""
    from playwright.sync_api import sync_playwright

    from daemon.bridge.launch import find_chromium
    html = out / "report.html"
    subprocess.run([NIGHTLOOP, "episodes", "report", str(episode_id), "--db", str(db),
                    "--out", str(html)], check=True, capture_output=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(),
                                     args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.goto(html.as_uri())
        page.screenshot(path=str(out / "report.png"))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="test seeds per template")
    parser.add_argument("--llm", action="store_true",
                        help="also run one template with the shipped model (minutes)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    header("nightloop screenshots bench")
    home = Path(tempfile.mkdtemp(prefix="nightloop-shots-"))
    off = run_eval(home, home / "off.db", args.seeds, "--policy", "teacher")
    on = run_eval(home, home / "on.db", args.seeds, "--policy", "teacher", "--screenshots")
    base = per_step_seconds(off)
    print(f"bundled sites, every template x {args.seeds} test seeds; p50 over steps\n")
    print("| run | steps | ms/step | vs off | pictures | capture ms | encode ms | write ms "
          "| waited ms | kB (p50 / max) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(row("teacher, screenshots off", off, [], None))
    print(row("teacher, screenshots on", on, shots(home / "on.db"), base))
    if args.llm:
        llm_args = ("--policy", "llm", "--templates", "settings.update", "--temperature", "0")
        llm_off = run_eval(home, home / "llm-off.db", 1, *llm_args)
        llm_on = run_eval(home, home / "llm-on.db", 1, *llm_args, "--screenshots")
        print(row("model, screenshots off", llm_off, [], None))
        print(row("model, screenshots on", llm_on, shots(home / "llm-on.db"),
                  per_step_seconds(llm_off)))
    sizes = [s["bytes"] for s in shots(home / "on.db") if "file" in s]
    print(f"\n{len(sizes)} pictures, {sum(s > 60_000 for s in sizes)} over 60 kB; "
          f"p90 {pct(sizes, 0.9) / 1000:.0f} kB")
    longest = max(on, key=lambda e: e["steps"])
    picture_of_report(home / "on.db", longest["episode_id"], args.out)
    print(f"report of episode {longest['episode_id']} ({longest['task']}): "
          f"{args.out / 'report.png'}")


if __name__ == "__main__":
    main()
