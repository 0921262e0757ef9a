"""What every benchmark needs: a private set-up with served pages, a real daemon process, and a
real headless Chromium with the extension paired to it. Figures only; nothing here asserts."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NIGHTLOOP = str(Path(sys.executable).parent / "nightloop")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def timed(coro) -> tuple[float, object]:
    """(milliseconds, result) of awaiting `coro`."""
    t0 = time.perf_counter()
    result = await coro
    return (time.perf_counter() - t0) * 1000, result


@dataclass
class Bench:
    work: Path
    base_url: str           # the served pages: the test pages and synth_{100,1000,10000}.html
                            # (bench/pages.py, generated into the bench's temporary folder)
    port: int
    token: str
    daemon: subprocess.Popen
    context: object         # the Playwright BrowserContext
    db: Path


@asynccontextmanager
async def bench_setup(*daemon_args: str) -> AsyncIterator[Bench]:
    """Start everything in a temporary home; tear it all down afterwards."""
    work = Path(tempfile.mkdtemp(prefix="nightloop-bench-"))
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    os.environ["XDG_DATA_HOME"] = str(work / "data")
    from pages import write_pages
    from playwright.async_api import async_playwright

    from daemon.bridge.launch import launch_with_playwright
    from daemon.bridge.pairing import load_or_create_token
    from daemon.core import protocol as p
    from daemon.core.settings import config_dir
    from daemon.service.client import connected

    pages = work / "pages"
    write_pages(pages)
    for page in (REPO / "tests" / "pages").glob("*.html"):
        shutil.copy(page, pages)
    from daemon.tasks.static import serve_directory

    port, token, db = free_port(), load_or_create_token(config_dir()), work / "bench.db"
    daemon = subprocess.Popen([NIGHTLOOP, "daemon", "--port", str(port), "--db", str(db),
                               *daemon_args], stdout=subprocess.PIPE, text=True)
    try:
        line = daemon.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"the daemon did not start: {line}")
        with serve_directory(pages) as base_url:
            async with async_playwright() as pw:
                context = await launch_with_playwright(pw.chromium, work / "profile",
                                                       port=port, token=token)
                async with connected(port, token) as client:
                    for _ in range(200):
                        if (await client.request(p.Status())).browser_connected:
                            break
                        await asyncio.sleep(0.1)
                yield Bench(work, base_url, port, token, daemon, context, db)
                await context.close()
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(work, ignore_errors=True)


def use_home(home: Path, adapter: str = "none"):
    """Point the XDG folders (config, store, adapters) into `home`; the settings there, with
    `adapter` (``none``: a cycle on the new store starts from the bare model; empty: from the
    shipped starting adapter, as a new user's does)."""
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    from daemon.core.settings import load_settings
    return load_settings({"db": str(home / "store.db"), "adapter": adapter}).settings


async def one_cycle(settings, config, plan, budget: float, label: str) -> dict:
    """Run one learning cycle (it resumes itself if cut short); its result and the path of
    the adapter it wrote. SystemExit when the cycle failed."""
    import dataclasses

    from daemon.core.store import Store
    from trainer.cycle import run_cycle
    result = await run_cycle(settings, config, plan, budget=budget,
                             say=lambda line: print(f"  [{label}] {line}", flush=True))
    if result.error:
        raise SystemExit(f"{label}: the cycle failed: {result.error}")
    async with await Store.open(settings.db_path, recover=False) as store:
        adapter = await store.adapter(result.adapter_id)
    return {"cycle": dataclasses.asdict(result), "adapter": adapter.path}


async def measure(tasks: list[str], seeds: list[int], policy, db: Path, partial: Path,
                  **plan: object) -> list[dict]:
    """Every task x seed with `policy` (an `EvalPlan` with `plan`'s fields), seed by seed;
    each result is appended to `partial` as it finishes, and those already there are not run
    again (a measurement cut short goes on where it stopped)."""
    import json

    from daemon.tasks.evaluation import EvalPlan, evaluate
    done = [json.loads(line) for line in partial.read_text().splitlines()] \
        if partial.exists() else []
    seen = {(r["task"], r["seed"]) for r in done}
    for seed in seeds:
        todo = [t for t in tasks if (t, seed) not in seen]
        if not todo:
            continue

        def keep(r) -> None:
            row = {"task": r.task, "seed": r.seed, "success": r.success, "steps": r.steps,
                   "status": r.status, "error": r.error}
            done.append(row)
            with partial.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"  {len(done)}/{len(tasks) * len(seeds)} {r.task} seed {r.seed}: "
                  f"{'solved' if r.success else 'failed'} in {r.steps} steps", flush=True)
        await evaluate(EvalPlan(todo, [seed], **plan), policy=policy, db=db, on_result=keep)
    return done


def save_stage(out: Path, stage: str, result: dict) -> None:
    """Write a finished stage's `result` to OUT/<stage>.json (atomically), with the commit it
    ran at, when it finished and its peak memory."""
    import json
    import resource
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True, check=False).stdout.strip()
    result.update(stage=stage, commit=commit, peak_mib=round(max(own, kids) / 1024),
                  finished=time.strftime("%Y-%m-%d %H:%M"))
    path = out / f"{stage}.json"
    path.with_suffix(".partial").write_text(json.dumps(result, indent=1))
    path.with_suffix(".partial").replace(path)


def run_stages(script: str, out: Path, stages: list[str], *args: str) -> None:
    """Run each of `stages` not finished yet (no OUT/<stage>.json) as `script --stage STAGE`
    in a child process, in order; stop at the first that fails."""
    for stage in stages:
        if (out / f"{stage}.json").exists():
            continue
        print(f"stage {stage} ({time.strftime('%H:%M')})", flush=True)
        done = subprocess.run([sys.executable, script, "--stage", stage, "--out", str(out),
                               *args], check=False)
        if done.returncode:
            sys.exit(f"stage {stage} failed (exit {done.returncode}); run again to go on")


def staged_main(script: str, doc: str, name: str, stages: tuple[str, ...], budget: float,
                child: Callable[[str, Path, float], None],
                report: Callable[[Path, float], None],
                default: tuple[str, ...] | None = None) -> None:
    """The command line of a staged bench: --out, --stages (any of `stages`; `default`, else
    all of them, when not given), --budget, --report (and the child's hidden --stage); runs the
    missing stages one child process each, then the report."""
    import argparse
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / name,
                        help="where each stage's result is kept (and resumed from)")
    default = default or stages
    parser.add_argument("--stages", default=",".join(default),
                        help=f"comma-separated, run in this order (default: {','.join(default)};"
                             f" also: {','.join(s for s in stages if s not in default) or '-'})")
    parser.add_argument("--budget", type=float, default=budget, help="seconds per cycle")
    parser.add_argument("--report", action="store_true", help="only print what is measured")
    parser.add_argument("--stage", help=argparse.SUPPRESS)      # the child's one stage
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage:
        return child(args.stage, args.out, args.budget)
    chosen = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in stages]
    if unknown:
        parser.error(f"--stages: unknown {', '.join(unknown)}; choose from {', '.join(stages)}")
    header(f"nightloop {name} bench")
    if not args.report:
        run_stages(script, args.out, chosen, "--budget", str(args.budget))
    report(args.out, args.budget)


def sys_path_tests() -> None:
    """Make tests/ importable (its synthetic observations)."""
    sys.path.insert(0, str(REPO / "tests"))


def header(title: str) -> None:
    print(f"# {title}: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
          "headless Chromium with the extension, daemon on 127.0.0.1\n")
