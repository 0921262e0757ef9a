"""Benchmark: MiniWoB++ episodes per minute here and on Ray actors (daemon/tasks/cluster.py).

The same plan (a suite's tasks on the first N test seeds) runs as:
- `local`: one process, one tab, llama.cpp in the process (`nightloop eval`'s default) — the
  baseline every ratio is against;
- `local K tabs`: one process, K tabs sharing its model (`--parallel K`);
- `ray A actors`: a Ray instance on this machine, A actors, each its own Chromium and llama.cpp
  (threads: the cores shared out);
- `ray A actors, one server` (`serverA`): A actors whose policies share one OpenAI-compatible
  server (`backend = "openai"`): llama-cpp-python's, which answers one request at a time, or
  with `--llama-server PATH` llama.cpp's own with A parallel slots (`--parallel A`, each slot
  the context a local run has), which decodes them in one batch: the batching question.
`faults2` is `ray2` with one actor's process and one actor's Chromium killed mid-run; it
says how every planned episode ended. The model runs without an adapter in every row (the
server takes none here), so only where the episodes run differs. Episodes per minute are
counted in steady state, from the first episode's end to the last's (start-up is its own
column); with `--policy oracle` no model runs, and the difference per episode to the local
run is Ray's own overhead.

Usage: python bench/cluster.py [--suite core] [--seeds 1] [--policy llm|oracle]
       [--rows local,local2,ray1,ray2,ray4,server1,server2,server4,faults2]
       [--llama-server PATH].
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from harness import free_port

ROWS = ("local", "local2", "ray1", "ray2", "ray4", "server1", "server2", "server4", "faults2")


@dataclasses.dataclass
class Row:
    name: str
    episodes: int
    success: float
    startup_s: float            # from the run's start to its first episode's end
    per_minute: float           # steady state


class Faults:
    """Kills, mid-run, one actor's process (after the 3rd episode) and one actor's Chromium
    (after the 6th), from outside as a crash would; then accounts for every planned episode."""

    def __init__(self):
        self.seen, self.killed = 0, []

    def after(self, tell):
        def on_result(result) -> None:
            tell(result)
            self.seen += 1
            actors = [pid for pid, cmd in processes() if cmd.startswith(b"ray::EpisodeActor")]
            if self.seen == 3 and actors:
                self.kill(actors[0], "an actor")
            if self.seen == 6 and actors:
                under = descendants(actors[-1])
                browsers = [pid for pid, cmd in processes() if pid in under
                            and b"nightloop-harness-" in cmd and b"--type=" not in cmd]
                if browsers:
                    self.kill(browsers[0], "an actor's browser")
        return on_result

    def kill(self, pid: int, what: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            self.killed.append(what)

    def account(self, db: Path, planned: int) -> str:
        with sqlite3.connect(db) as c:
            stored, failed, judged = c.execute(
                "SELECT count(*), sum(status = 'failed'), sum(EXISTS (SELECT 1 FROM rewards r "
                "WHERE r.episode_id = e.id AND r.kind = 'ground_truth')) FROM episodes e"
                ).fetchone()
        return (f"killed {' and '.join(self.killed) or 'nothing'}; {planned} planned, "
                f"{stored} stored ({judged} with their ground truth, {failed} failed saying "
                f"why), lost {planned - stored}")


def processes() -> list[tuple[int, bytes]]:
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            found.append((int(entry.parent.name), entry.read_bytes().replace(b"\0", b" ")))
    return found


def descendants(pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(pid).children(recursive=True)}


async def measure(name: str, run) -> Row:
    """Run `run(on_result)` and time it."""
    ends: list[float] = []
    t0 = time.perf_counter()
    results = await run(lambda r: ends.append(time.perf_counter()))
    steady = (len(ends) - 1) / (ends[-1] - ends[0]) * 60 if len(ends) > 1 else 0.0
    return Row(name, len(results), sum(r.success for r in results) / max(1, len(results)),
               ends[0] - t0 if ends else 0.0, steady)


@contextlib.contextmanager
def model_server(threads: int, slots: int, binary: Path | None):
    """An OpenAI-compatible server on the shipped model: llama.cpp's `binary` with `slots`
    sequences decoded together, or llama-cpp-python's (one at a time); its API's URL."""
    from daemon.core.models import shipped_model
    from daemon.core.settings import Settings
    context = Settings().n_ctx          # per sequence, as a local run's model has
    port = free_port()
    if binary:
        command = [str(binary), "--model", str(shipped_model()), "--port", str(port),
                   "--ctx-size", str(context * slots), "--parallel", str(slots),
                   "--threads", str(threads)]
    else:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(shipped_model()),
                   "--port", str(port), "--n_ctx", str(context), "--n_threads", str(threads)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url + "/models", timeout=1):
                    break
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(15)


async def main(suite: str, n_seeds: int, policy_name: str, rows: list[str],
               llama_server: Path | None) -> None:
    import ray

    from daemon.core.settings import Settings
    from daemon.service.app import make_policy
    from daemon.tasks import miniwob, splits
    from daemon.tasks.cluster import Cluster, Recipe, evaluate_on_ray
    from daemon.tasks.evaluation import EvalPlan, evaluate
    from daemon.tasks.oracle import SOLVERS, OraclePolicy

    cores = os.cpu_count() or 2
    tasks = miniwob.suite(suite)
    if policy_name == "oracle":
        tasks = [t for t in tasks if t in SOLVERS]
    seeds = splits.seeds("test", n_seeds)
    work = Path(tempfile.mkdtemp(prefix="nightloop-bench-cluster-"))
    os.environ["XDG_DATA_HOME"] = str(work / "data")
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")

    def recipe(threads: int, server: str | None = None) -> Recipe:
        if policy_name == "oracle":
            return Recipe(lambda _: OraclePolicy())
        settings = Settings(policy="llm", adapter="none", threads=threads, temperature=0.0,
                            **({"backend": "openai", "server_url": server} if server else {}))
        return Recipe(make_policy, settings)

    print(f"# nightloop on Ray: {suite} ({len(tasks)} tasks) x {len(seeds)} test seeds, policy "
          f"{policy_name}, {cores} cores, Ray {ray.__version__}, server "
          f"{llama_server or 'llama-cpp-python'}\n")
    measured: list[Row] = []
    accounts: list[tuple[str, str]] = []
    for name in rows:
        plan = EvalPlan(tasks, seeds, parallel=2 if name == "local2" else 1)
        db = work / f"{name}.db"
        actors = int(name.lstrip("alocrysevftu") or 1)  # local2 → 2, ray4 → 4, faults2 → 2
        if name.startswith("local"):
            policy = recipe(cores).build()
            row = await measure(name, lambda tell: evaluate(plan, policy=policy, db=db,
                                                            on_result=tell))
        else:
            faults = Faults() if name.startswith("faults") else None
            serving = model_server(cores, actors, llama_server) \
                if name.startswith("server") else contextlib.nullcontext()
            with serving as url:
                ray.init(num_cpus=actors, include_dashboard=False, object_store_memory=2**28)
                try:
                    row = await measure(name, lambda tell: evaluate_on_ray(
                        plan, recipe(1 if url else max(1, cores // actors), url), db=db,
                        cluster=Cluster(actors=actors),
                        on_result=faults.after(tell) if faults else tell))
                finally:
                    ray.shutdown()
            if faults:
                print(f"  {name}: {faults.account(db, len(plan.jobs))}", file=sys.stderr)
                accounts.append((name, faults.account(db, len(plan.jobs))))
        measured.append(row)
        print(f"  {name}: {row.episodes} episodes, {row.per_minute:.1f}/min", file=sys.stderr)

    base = measured[0] if measured and measured[0].name == "local" else None
    print("| run | episodes | success | start-up (s) | episodes/min | vs local | "
          "ms/episode vs local |")
    print("|---|---|---|---|---|---|---|")
    for row in measured:
        ratio = f"{row.per_minute / base.per_minute:.2f}x" if base and base.per_minute else "-"
        overhead = (f"{(60_000 / row.per_minute - 60_000 / base.per_minute):+.0f}"
                    if base and base.per_minute and row.per_minute else "-")
        print(f"| {row.name} | {row.episodes} | {row.success:.2f} | {row.startup_s:.1f} | "
              f"{row.per_minute:.1f} | {ratio} | {overhead} |")
    for name, account in accounts:
        print(f"\n{name}: {account}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="core")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--policy", choices=("llm", "oracle"), default="llm")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"which runs, in order (the first should be local): {ROWS}")
    parser.add_argument("--llama-server", type=Path,
                        help="llama.cpp's llama-server binary for the server rows (default: "
                             "llama-cpp-python's server, which does not batch)")
    args = parser.parse_args()
    if args.llama_server and not args.llama_server.is_file():
        parser.error(f"--llama-server: no such file {args.llama_server}")
    rows = args.rows.split(",")
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}: choose from {ROWS}")
    asyncio.run(main(args.suite, args.seeds, args.policy, rows, args.llama_server))
