"""Benchmark: a long day. One daemon and one headless Chromium with the extension run N scripted
episodes back to back on the bundled sites (each template in turn, a new seed each time, its
solution script as the task, all in one tab as a person's would be), the browser restarted
every B episodes and the daemon restarted once half-way (the extension reconnects by itself).
A script waits a second first: a site draws its page after it loads, and the scripted policy
reads the page once. Every M episodes the memory (PSS) of the daemon and of all of Chromium's
processes is recorded.

Nothing may be lost: every episode is in the store with every step the daemon streamed. The
table gives memory per checkpoint and, per daemon and per browser life, its growth from the
first checkpoint of that life to the last. tests/test_soak.py runs a short version (slow
suite).

Usage: python bench/soak.py [--episodes 1000] [--browser-every 200] [--memory-every 100].
Prints a table, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import NIGHTLOOP, free_port, header


@dataclass
class Checkpoint:
    episodes: int
    daemon_mb: float
    browser_mb: float
    daemon_life: int
    browser_life: int


@dataclass
class Soak:
    ran: list[tuple[int, str, int]] = field(default_factory=list)   # (id, status, steps seen)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    stored: dict[int, tuple[str, int]] = field(default_factory=dict)  # id → (status, steps)
    seconds: float = 0.0

    @property
    def lost(self) -> list[int]:
        """Episodes whose stored record differs from what the daemon streamed."""
        return [i for i, status, steps in self.ran if self.stored.get(i) != (status, steps)]

    def growth(self, key: str) -> dict[int, float]:
        """Per life (of the daemon or of the browser): last checkpoint / first - 1."""
        lives: dict[int, list[float]] = {}
        for c in self.checkpoints:
            lives.setdefault(getattr(c, f"{key}_life"), []).append(getattr(c, f"{key}_mb"))
        return {life: mb[-1] / mb[0] - 1 for life, mb in lives.items() if len(mb) > 1}


def memory_mb(pids: list[int]) -> float:
    """The processes' proportional set size (PSS: memory they share counted once over them),
    in MB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def pids_of(marker: str) -> list[int]:
    """The processes whose command line holds `marker` (a browser's profile folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


class _Daemon:
    def __init__(self, work: Path, port: int, sites_port: int):
        self.work, self.port, self.sites_port, self.proc = work, port, sites_port, None

    def start(self) -> None:
        log = open(self.work / "daemon.log", "a")
        self.proc = subprocess.Popen(
            [NIGHTLOOP, "daemon", "--port", str(self.port), "--db", str(self.work / "soak.db"),
             "--policy", "scripted", "--judge", "off", "--sites", "--sites-port",
             str(self.sites_port)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "practice sites on" not in (self.work / "daemon.log").read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.work / "daemon.log").read_text()[-2000:])
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


async def _wait_connected(port: int, token: str, timeout: float = 60) -> None:
    from daemon.core import protocol as p
    from daemon.service.client import DaemonUnavailable, connected
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with connected(port, token) as client:
                if (await client.request(p.Status())).browser_connected:
                    return
        except DaemonUnavailable:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError("the extension did not connect to the daemon")


async def _run_one(port: int, token: str, task) -> tuple[int, str, int, int | None]:
    """Start `task` and follow it to its end: (episode id, status, steps streamed, its tab)."""
    from daemon.core import protocol as p
    from daemon.service.client import connected
    async with connected(port, token) as client:
        started = await client.request(task)
        episode_id, steps, tab = started.episode["id"], set(), None
        async for message in client.messages():
            if isinstance(message, p.StepUpdate) and message.episode_id == episode_id:
                steps.add(message.step["index"])
                tab = (message.step.get("result") or {}).get("tab_id", tab)
            elif isinstance(message, p.EpisodeUpdate) and message.episode["id"] == episode_id \
                    and message.episode["status"] != "running":
                return episode_id, message.episode["status"], len(steps), tab
    raise RuntimeError("the daemon closed the connection")


async def soak(work: Path, episodes: int, *, browser_every: int, memory_every: int,
               restart_daemon_at: int | None, say=print) -> Soak:
    """Run the soak in `work` (the caller points XDG_CONFIG_HOME / XDG_DATA_HOME there)."""
    from playwright.async_api import async_playwright

    from daemon.bridge.launch import launch_with_playwright
    from daemon.bridge.pairing import load_or_create_token
    from daemon.core import protocol as p
    from daemon.core.settings import config_dir
    from daemon.tasks.sites.templates import TEMPLATES
    daemon = _Daemon(work, free_port(), free_port())
    token = load_or_create_token(config_dir())
    base = f"http://127.0.0.1:{daemon.sites_port}"
    names, result, t0, tab = list(TEMPLATES), Soak(), time.monotonic(), None
    daemon_life = browser_life = 0
    daemon.start()
    try:
        async with async_playwright() as pw:
            profile = work / f"profile-{browser_life}"
            context = await launch_with_playwright(pw.chromium, profile, port=daemon.port,
                                                   token=token)
            await _wait_connected(daemon.port, token)
            for n in range(episodes):
                if n and n % browser_every == 0:            # a new browser, a new profile
                    await context.close()
                    browser_life += 1
                    profile = work / f"profile-{browser_life}"
                    context = await launch_with_playwright(pw.chromium, profile,
                                                           port=daemon.port, token=token)
                    await _wait_connected(daemon.port, token)
                if n and n == restart_daemon_at:            # the extension reconnects itself
                    daemon.stop()
                    daemon_life += 1
                    daemon.start()
                    await _wait_connected(daemon.port, token)
                task = TEMPLATES[names[n % len(names)]].task(n)
                *ran, tab = await _run_one(daemon.port, token, p.Task(
                    f"wait 1; {task.script}", source="cli", url=task.url(base), approve=True,
                    tab_id=tab if n % browser_every else None))     # one tab, as a person's
                result.ran.append(tuple(ran))
                if (n + 1) % memory_every == 0:
                    point = Checkpoint(n + 1, memory_mb([daemon.proc.pid]),
                                       memory_mb(pids_of(str(profile))), daemon_life,
                                       browser_life)
                    result.checkpoints.append(point)
                    say(f"  {n + 1} episodes: daemon {point.daemon_mb:.0f} MB, Chromium "
                        f"{point.browser_mb:.0f} MB")
            await context.close()
    finally:
        daemon.stop()
    result.seconds = time.monotonic() - t0
    with sqlite3.connect(work / "soak.db") as conn:
        result.stored = {i: (status, steps) for i, status, steps in conn.execute(
            "SELECT e.id, e.status, (SELECT count(*) FROM steps s WHERE s.episode_id = e.id) "
            "FROM episodes e")}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--browser-every", type=int, default=200)
    parser.add_argument("--memory-every", type=int, default=100)
    args = parser.parse_args()
    header("nightloop soak bench")
    work = Path(tempfile.mkdtemp(prefix="nightloop-soak-"))
    os.environ.update(XDG_CONFIG_HOME=str(work / "config"), XDG_DATA_HOME=str(work / "data"))
    found = asyncio.run(soak(work, args.episodes, browser_every=args.browser_every,
                             memory_every=args.memory_every,
                             restart_daemon_at=args.episodes // 2))
    done = sum(status == "done" for _, status, _ in found.ran)
    print(f"\n{len(found.ran)} episodes in {found.seconds / 60:.0f} min ({done} done), "
          f"{len(found.stored)} stored, {len(found.lost)} lost or different\n")
    print("| episodes | daemon MB | Chromium MB | daemon life | browser life |")
    print("|---:|---:|---:|---:|---:|")
    for c in found.checkpoints:
        print(f"| {c.episodes} | {c.daemon_mb:.0f} | {c.browser_mb:.0f} | {c.daemon_life} | "
              f"{c.browser_life} |")
    for key in ("daemon", "browser"):
        growth = ", ".join(f"life {life}: {g:+.0%}" for life, g in found.growth(key).items())
        print(f"\n{key} memory growth within a life: {growth or 'one checkpoint per life'}")


if __name__ == "__main__":
    main()
