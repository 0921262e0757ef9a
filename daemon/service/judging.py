"""The daemon's background judge: every finished episode gets a `judge` reward, without ever
holding up the user's next task.

Contract:
- The queue is the store itself: episodes without a judge reward. At start the queue takes all
  of them (so nothing is lost across a crash or restart), then each episode as it finishes.
- One episode is judged at a time, in a worker thread, and only while no episode is running;
  an episode that starts meanwhile waits for nothing (the judgement in flight finishes first).
- The judge model is loaded on the first episode to judge, not at daemon start.
- A judgement that fails is logged and left pending for the next start or `nightloop judge
  --pending`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from daemon.core.store import Store
from judge.judge import Judge
from judge.scoring import judge_episode

log = logging.getLogger(__name__)


class JudgeQueue:
    def __init__(self, store: Store, make_judge: Callable[[], Judge], idle: asyncio.Event):
        self.store = store
        self._make_judge = make_judge
        self._judge: Judge | None = None
        self._idle = idle
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def submit(self, episode_id: int) -> None:
        self._queue.put_nowait(episode_id)

    async def start(self) -> None:
        for episode_id in await self.store.unjudged():
            self.submit(episode_id)
        self._task = asyncio.create_task(self._work())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            episode_id = await self._queue.get()
            await self._idle.wait()
            try:
                if self._judge is None:
                    self._judge = await asyncio.to_thread(self._make_judge)
                reward = await judge_episode(self.store, self._judge, episode_id)
                log.info("judged episode %s: %.3f", episode_id, reward.value)
            except Exception:
                log.exception("judging episode %s failed; it stays pending", episode_id)
