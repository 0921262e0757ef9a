"""Benchmark: harness overhead on MiniWoB++ — episodes per minute with the oracle policy (the
ceiling that model-driven runs approach), at --parallel 1 and 4, measured in one run.

Usage: python bench/miniwob.py [--seeds 10]. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from harness import header


async def main(n_seeds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="nightloop-bench-"))
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    os.environ["XDG_DATA_HOME"] = str(work / "data")
    from daemon.tasks import splits
    from daemon.tasks.evaluation import EvalPlan, evaluate
    from daemon.tasks.oracle import SOLVERS, OraclePolicy

    header("nightloop MiniWoB++ harness bench")
    tasks, seeds = sorted(SOLVERS), splits.seeds("train", n_seeds)
    print(f"Oracle policy, {len(tasks)} tasks x {len(seeds)} train seeds = "
          f"{len(tasks) * len(seeds)} episodes per run (browser start-up included)\n")
    print("| parallel | episodes | success | seconds | episodes/min | ratio to parallel 1 |")
    print("|---|---|---|---|---|---|")
    base = None
    for parallel in (1, 4):
        t0 = time.perf_counter()
        results = await evaluate(EvalPlan(tasks, seeds, parallel=parallel),
                                 policy=OraclePolicy(), db=work / f"p{parallel}.db")
        seconds = time.perf_counter() - t0
        rate = len(results) / seconds * 60
        base = base or rate
        print(f"| {parallel} | {len(results)} | {sum(r.success for r in results)} | "
              f"{seconds:.1f} | {rate:.0f} | {rate / base:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    asyncio.run(main(parser.parse_args().seeds))
