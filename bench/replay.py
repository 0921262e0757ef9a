"""Benchmark: replaying recorded demonstrations vs running the same tasks with the model.

Playwright acts as the user and records one demonstration per task through the real popup (3
test-page tasks, 3 MiniWoB++ tasks with a fixed seed). Then, per task: replays on fresh loads
(no model) and model-driven runs of the same task, success and seconds per step; and replays on
changed pages (the trip flow renamed / with an inserted page; MiniWoB with other seeds) with
the model as fallback, counting the steps that fell back.

Usage: python bench/replay.py [--runs 3]. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from harness import NIGHTLOOP, bench_setup, header

SEED, OTHER_SEEDS = 3, [7, 11, 13]


@dataclass
class Task:
    name: str                                   # as the user names the demonstration
    url: str                                    # relative to the served pages
    act: Callable[[object], Awaitable[None]]    # the user doing it (Playwright page)
    done: str                                   # page text that shows success
    miniwob: str | None = None


async def _trip(page) -> None:
    await page.click("#city")
    await page.keyboard.type("Paris")
    await page.keyboard.press("Tab")
    await page.keyboard.press("ArrowDown")
    await page.click("text=Next")
    await page.wait_for_url("**/trip-book.html*")
    await page.click("#insurance")
    await page.click("#book")


async def _contact(page) -> None:
    await page.click("#name")
    await page.keyboard.type("Ada")
    await page.click("#email")
    await page.keyboard.type("ada@example.com")
    await page.click("#subscribe")
    await page.click("text=Send")


async def _links(page) -> None:
    await page.click("text=Go to the next page")
    await page.wait_for_url("**/next.html*")
    await page.click("#q")
    await page.keyboard.type("nightloop")
    await page.keyboard.press("Enter")


async def _utterance(page) -> str:
    return await page.evaluate("core.getUtterance()")


async def _click_button(page) -> None:
    word = (await _utterance(page)).split('"')[1]
    await page.click(f"#area button:text-is('{word}')")


async def _enter_text(page) -> None:
    word = (await _utterance(page)).split('"')[1]
    await page.click("#tt")
    await page.keyboard.type(word)
    await page.click("#subbtn")


async def _focus_text(page) -> None:
    await page.click("#tt")


TASKS = [
    Task("Plan a 2-night trip to Paris with insurance and book it", "trip.html", _trip,
         "Booked: Paris, 2 nights, insured"),
    Task("Send the contact form as Ada (ada@example.com), subscribed", "form.html", _contact,
         "Thanks Ada"),
    Task("Go to the next page and search for nightloop", "links.html", _links, "Arrived"),
    Task("click-button", "", _click_button, "", miniwob="click-button"),
    Task("enter-text", "", _enter_text, "", miniwob="enter-text"),
    Task("focus-text", "", _focus_text, "", miniwob="focus-text"),
]


def cli(*args: str) -> dict:
    out = subprocess.run([NIGHTLOOP, *args, "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


async def record(bench, task: Task, url: str) -> int:
    """The user records `task` on `url` through the popup; returns the demonstration's id."""
    page = await bench.context.new_page()
    await page.goto(url)
    if task.miniwob:            # what the harness's miniwob.start probe does, as the page loads
        await page.wait_for_function("typeof core !== 'undefined' && core.cover_div")
        await page.evaluate(f"Math.seedrandom('{SEED}'); core.EPISODE_MAX_TIME = 600000; "
                            "core.startEpisodeReal()")
    popup = await bench.context.new_page()
    await popup.goto(f"chrome-extension://{EXTENSION_ID}/popup.html")
    await popup.fill("#task", task.name)
    await popup.click("#record")
    await popup.wait_for_selector("#recording:not([hidden])")
    await task.act(page)
    await asyncio.sleep(0.5)
    await popup.click("#record-ok")
    await popup.wait_for_selector("#recording", state="hidden")
    await popup.close()
    await page.close()
    return max(e["id"] for e in cli("episodes", "list", "--db", str(bench.db)))


def episode(bench, episode_id: int) -> dict:
    return cli("episodes", "show", str(episode_id), "--db", str(bench.db))


def per_step(ep: dict) -> float:
    seconds = sum(((s.get("observe_ms") or 0) + (s.get("policy_ms") or 0) + (s.get("act_ms") or 0))
                  / 1000 for s in ep["steps"])
    return seconds / max(1, len(ep["steps"]))


def page_outcome(bench, ep: dict, task: Task) -> bool:
    last = ep["steps"][-1]["observation"]["text"] if ep["steps"] else ""
    return task.done in last


async def replay_test_page(bench, task: Task, demo: int, url: str | None = None) -> dict:
    args = ["replay", str(demo), "--port", str(bench.port)] + (["--url", url] if url else [])
    ran = await asyncio.to_thread(cli, *args)
    return episode(bench, ran["id"])


async def miniwob_run(task: Task, seed: int, policy, db) -> tuple[bool, dict]:
    from daemon.core.store import Store
    from daemon.tasks.evaluation import EvalPlan, evaluate
    [result] = await evaluate(EvalPlan([task.miniwob], [seed], max_steps=10), policy=policy,
                              db=db)
    async with await Store.open(db, recover=False) as store:
        steps = await store.steps(result.episode_id)
    return result.success, {"steps": [vars(s) for s in steps]}


async def main(runs: int) -> None:
    global EXTENSION_ID
    from daemon.agent.llama_policy import LlamaPolicy
    from daemon.agent.replay import ReplayPolicy
    from daemon.bridge.pairing import extension_id
    from daemon.core.settings import load_settings
    from daemon.core.store import Store
    from daemon.tasks import miniwob
    from daemon.tasks.static import serve_directory

    EXTENSION_ID = extension_id()
    header("nightloop replay bench")
    model = LlamaPolicy(load_settings({"temperature": 0.25}).settings)

    async def no_user(notice: str) -> None:
        raise RuntimeError(notice)

    rows, changed = [], []
    async with bench_setup("--policy", "llm", "--judge", "off") as bench:
        with serve_directory(miniwob.html_dir()) as wob:
            for task in TASKS:
                url = miniwob.task_url(wob, task.miniwob) if task.miniwob else \
                    f"{bench.base_url}/{task.url}"
                demo = await record(bench, task, url)
                recorded = episode(bench, demo)
                replays, model_runs = [], []
                for i in range(runs):
                    if task.miniwob:
                        async with await Store.open(bench.db, recover=False) as store:
                            steps = await store.steps(demo)
                        replays.append(await miniwob_run(
                            task, SEED, ReplayPolicy(steps, fallback=None, ask_user=no_user),
                            bench.work / f"r-{task.name}-{i}.db"))
                        model_runs.append(await miniwob_run(task, SEED, model,
                                                            bench.work / f"m-{task.name}-{i}.db"))
                    else:
                        ep = await replay_test_page(bench, task, demo)
                        replays.append((page_outcome(bench, ep, task), ep))
                        ran = await asyncio.to_thread(cli, "run", task.name, "--url", url,
                                                      "--port", str(bench.port))
                        ep = episode(bench, ran["id"])
                        model_runs.append((page_outcome(bench, ep, task), ep))
                rows.append((task.miniwob or task.url, len(recorded["steps"]),
                             sum(ok for ok, _ in replays), runs,
                             sum(per_step(e) for _, e in replays) / runs,
                             sum(ok for ok, _ in model_runs),
                             sum(per_step(e) for _, e in model_runs) / runs,
                             sum(1 for _, e in replays for s in e["steps"]
                                 if s.get("mode") == "fallback")))
                # changed pages: the model stands in where the page differs
                if task.url == "trip.html":
                    for variant in ("renamed", "extra"):
                        ep = await replay_test_page(bench, task, demo,
                                                    f"{url}?variant={variant}")
                        changed.append((f"trip ?variant={variant}", ep,
                                        page_outcome(bench, ep, task)))
                if task.miniwob:
                    async with await Store.open(bench.db, recover=False) as store:
                        steps = await store.steps(demo)
                    for seed in OTHER_SEEDS:
                        ok, ep = await miniwob_run(
                            task, seed, ReplayPolicy(steps, fallback=model, ask_user=no_user),
                            bench.work / f"c-{task.name}-{seed}.db")
                        changed.append((f"{task.miniwob} seed {seed}", ep, ok))

    print(f"{len(TASKS)} recorded tasks; {runs} replays (fresh load, no model) and {runs} runs "
          "of the shipped SmolLM2 policy each; seconds per step = observe + decide + act\n")
    print("| task | recorded steps | replay success | replay s/step | model success | "
          "model s/step | speed-up | fallback steps in replays |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, ok_r, total, s_r, ok_m, s_m, fb in rows:
        print(f"| {name} | {n} | {ok_r}/{total} | {s_r:.3f} | {ok_m}/{total} | {s_m:.3f} | "
              f"{s_m / s_r:.1f}x | {fb} |")
    print("\nChanged pages, replay with --fallback model:\n")
    print("| page | steps | fallback steps | fallback rate | success |")
    print("|---|---|---|---|---|")
    total_steps = total_fb = 0
    for name, ep, ok in changed:
        fb = sum(1 for s in ep["steps"] if s.get("mode") == "fallback")
        total_steps += len(ep["steps"])
        total_fb += fb
        print(f"| {name} | {len(ep['steps'])} | {fb} | {fb / max(1, len(ep['steps'])):.2f} | "
              f"{'yes' if ok else 'no'} |")
    print(f"\nOverall fallback rate on changed pages: {total_fb}/{total_steps} steps "
          f"({total_fb / max(1, total_steps):.2f}); took {time.strftime('%H:%M')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args().runs))
