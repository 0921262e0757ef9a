"""Benchmark: day one, tried as a new user would. A fresh home and store, the default settings
(the shipped model with the shipped starting adapter, sampled as the daemon samples), a real
headless Chromium with the extension, and `nightloop run TASK --url PAGE` on the hand-written
everyday pages (bench/everyday/): the issue's three tasks on the plain profile form first, then
the others. For each try: how the run ended (its exit status) and its actions. The ground
truth of the same tasks (what the page recorded) is bench/starting_adapter.py's `everyday`
measurement.

Usage: python bench/day_one.py [--tries 3] [--tasks profile-name,profile-city,...]. Prints a
table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import time

from everyday_tasks import PAGES, TASKS
from harness import NIGHTLOOP, bench_setup, header

FIRST = ("profile-name", "profile-city", "profile-news")     # the three


async def main(tries: int, names: list[str]) -> None:
    header("nightloop day-one bench")
    async with bench_setup() as bench:
        for page in PAGES.iterdir():
            shutil.copy(page, bench.work / "pages")
        print("| task | try | exit | steps | actions | s |")
        print("|---|---|---|---|---|---|")
        done = 0
        for name in names:
            task = TASKS[name]
            for n in range(1, tries + 1):
                url = f"{bench.base_url}/{task.page}.html"
                t0 = time.monotonic()
                # the login tasks write their password in clear, as the first version of
                # this bench did: insisted on, to compare with it
                run = subprocess.run([NIGHTLOOP, "run", task.task, "--url", url, "--json",
                                      "--allow-secret-in-task", "--port", str(bench.port)],
                                     capture_output=True,
                                     text=True, timeout=600, check=False)
                seconds = time.monotonic() - t0
                lines = [json.loads(x) for x in run.stdout.splitlines() if x.strip()]
                steps = [x["step"] for x in lines if "step" in x]
                done += run.returncode == 0
                actions = ", ".join(_short(s.get("action") or {}) for s in steps)[:160]
                print(f"| {name} | {n} | {run.returncode} | {len(steps)} | {actions} | "
                      f"{seconds:.0f} |", flush=True)
        print(f"\nended with done (exit 0): {done} / {tries * len(names)}")


def _short(action: dict) -> str:
    """`fill "Ada Lovelace"`, `click 7`: enough to see what the model chose."""
    said = action.get("text") or action.get("option")
    return f"{action.get('action', '?')} " + (f'"{said}"' if said else str(action.get("id", "")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=3, help="runs of each task")
    parser.add_argument("--tasks", default=",".join(FIRST),
                        help=f"comma-separated, of: {', '.join(TASKS)}")
    args = parser.parse_args()
    asyncio.run(main(args.tries, [t.strip() for t in args.tasks.split(",") if t.strip()]))
