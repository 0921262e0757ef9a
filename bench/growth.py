"""Benchmark: a store after months of use. Generates a store of N episodes with about ten steps
each (rows the size of real ones: an observation, a prompt, the sampler's record; a judge or a
ground-truth reward; one user verdict in twenty; a hundred nights), then times what a user and
the daemon ask of it, in this process (a CLI command adds its own start, about a second):

- `episodes list` (the newest page), `episodes show` (one episode with its steps and rewards),
  `review` (the next unrated episodes), the judge's backlog (one query when the daemon
  starts; after that the queue hands out finished episodes from memory), the nightly cycle's
  data window (the night's episodes), `practice list` (the tasks it would practise), `status`
  (counts per status, sizes), `night` (the last night's report).

Each is run five times; the table gives the median and the worst, against the 200 ms budget,
and the store's size per episode. The store is generated once into OUT (resumable: generation
commits every 1,000 episodes and goes on from the last one).

Usage: python bench/growth.py [--episodes 100000] [--out DIR]. Prints a table, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import time
from pathlib import Path

from harness import REPO, header, timed

STEPS = 10
CHUNK = 1000
BUDGET_MS = 200.0


def _payloads(rng: random.Random) -> dict[str, str]:
    """Step columns of the sizes real steps have (bench/learning.py's store: observation
    ~1.7 kB, prompt ~2.3 kB, sampled ~4.1 kB)."""
    elements = [{"id": i, "tag": "button", "role": "button", "name": f"Button {i}",
                 "in_view": True} for i in range(20)]
    observation = json.dumps({"url": "http://localhost/page.html", "title": "A page",
                              "elements": elements, "text": "lorem ipsum " * 20,
                              "omitted_elements": 0, "omitted_text": 0})
    prompt = "You are a web agent. " * 110
    sampled = json.dumps({"tokens": [rng.randrange(50000) for _ in range(200)],
                          "logprobs": [round(-rng.random(), 4) for _ in range(200)]})
    return {"observation": observation, "prompt": prompt, "sampled": sampled}


def generate(db: Path, episodes: int) -> None:
    """Fill `db` (created by the real store's migrations) up to `episodes` episodes."""
    from daemon.core.store import Store

    async def create() -> None:
        await (await Store.open(db)).close()
    asyncio.run(create())
    rng = random.Random(0)
    payload = _payloads(rng)
    conn = sqlite3.connect(db)
    have = conn.execute("SELECT count(*) FROM episodes").fetchone()[0]
    tasks = [f"Subscribe user{n}@example.com to the newsletter" for n in range(40)]
    t0 = time.monotonic()
    for start in range(have, episodes, CHUNK):
        with conn:
            for n in range(start, min(episodes, start + CHUNK)):
                source = "practice" if n % 10 else ("toolbar" if n % 20 else "cli")
                day = f"2026-{1 + n * 11 // episodes:02d}-{1 + n % 28:02d}"
                cur = conn.execute(
                    "INSERT INTO episodes (task, source, start_url, status, policy, started_at,"
                    " ended_at) VALUES (?, ?, ?, ?, 'llm:SmolLM2', ?, ?)",
                    (rng.choice(tasks), source, "http://localhost:8978/newsletter.html",
                     "done" if n % 3 else "step_limit", f"{day}T03:00:00.000Z",
                     f"{day}T03:00:09.000Z"))
                episode_id = cur.lastrowid
                conn.executemany(
                    'INSERT INTO steps (episode_id, "index", url, observation, prompt, '
                    "raw_output, action, ok, started_at, sampled) VALUES "
                    "(?, ?, 'http://localhost/page.html', ?, ?, ?, ?, 1, ?, ?)",
                    [(episode_id, i, payload["observation"], payload["prompt"],
                      f'click "Button {i}"', json.dumps({"action": "click", "id": i}),
                      f"{day}T03:00:0{i}.000Z", payload["sampled"]) for i in range(STEPS)])
                kind = "ground_truth" if source == "practice" and n % 2 else "judge"
                conn.execute("INSERT INTO rewards (episode_id, kind, value, details, created_at)"
                             " VALUES (?, ?, ?, ?, ?)",
                             (episode_id, kind, float(n % 3 > 0),
                              json.dumps({"benchmark": "miniwob", "task": "click-button",
                                          "seed": n} if kind == "ground_truth" else {}),
                              f"{day}T03:00:10.000Z"))
                if n % 20 == 0:
                    conn.execute("INSERT INTO rewards (episode_id, kind, value, details, "
                                 "created_at) VALUES (?, 'user', 1, '{}', ?)",
                                 (episode_id, f"{day}T09:00:00.000Z"))
                if n and n % (episodes // 100) == 0:
                    conn.execute("INSERT INTO nights (after_episode, status, phase, practice, "
                                 "started_at, ended_at, last_episode) VALUES (?, 'finished', "
                                 "'done', ?, ?, ?, ?)",
                                 (episode_id - episodes // 100, json.dumps({"yours": []}),
                                  f"{day}T03:00:00.000Z", f"{day}T05:00:00.000Z",
                                  episode_id))
        done = min(episodes, start + CHUNK)
        rate = (done - have) / max(1e-9, time.monotonic() - t0)
        print(f"  generated {done:,} of {episodes:,} episodes ({rate:,.0f}/s)", flush=True)
    conn.close()


async def measure(db: Path) -> list[tuple[str, list[float]]]:
    from daemon.core.maintenance import sizes
    from daemon.core.store import Store
    from daemon.tasks.practice import practice_tasks
    from trainer.night import last_report
    async with await Store.open(db, recover=False) as store:
        newest = (await store.episodes(1))[0].id
        last_night = (await store.nights(1))[0]
        operations = {
            "episodes list (newest 50)": lambda: store.episodes(50),
            "episodes show (one, 10 steps)": lambda: _show(store, newest - 7),
            "review (next 20 unrated)": lambda: store.unrated(limit=20),
            "judge backlog at daemon start": lambda: store.unjudged(limit=1),
            "night's data window": lambda: store.episodes_after(last_night.after_episode),
            "practice list": lambda: practice_tasks(store, 4),
            "status (counts)": lambda: store.counts(),
            "status (sizes)": lambda: asyncio.to_thread(sizes, db),
            "night (last report)": lambda: last_report(store),
        }
        found = []
        for name, call in operations.items():
            found.append((name, [(await timed(call()))[0] for _ in range(5)]))
        return found


async def _show(store, episode_id: int):
    return await store.episode(episode_id), await store.steps(episode_id), \
        await store.rewards(episode_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "growth")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / f"store-{args.episodes}.db"
    header("nightloop growth bench")
    generate(db, args.episodes)
    from daemon.core.maintenance import MB, sizes
    found = sizes(db)
    print(f"\n{found.episodes:,} episodes, {found.episodes * STEPS:,} steps: "
          f"{found.store / MB:,.0f} MB, {found.per_episode() / 1024:,.1f} kB per episode\n")
    print(f"| operation | median ms | worst ms | within {BUDGET_MS:.0f} ms |")
    print("|---|---:|---:|---|")
    for name, times in asyncio.run(measure(db)):
        print(f"| {name} | {statistics.median(times):.1f} | {max(times):.1f} | "
              f"{'yes' if max(times) <= BUDGET_MS else 'NO'} |")


if __name__ == "__main__":
    main()
