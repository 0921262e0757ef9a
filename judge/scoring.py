"""Judging episodes that are in the store: the one path shared by `nightloop judge` and the
daemon's background queue."""

from __future__ import annotations

import asyncio

from daemon.core.errors import NotFound, UsageError
from daemon.core.store import Reward, Store

from .judge import Judge, Peers, template


async def judge_episode(store: Store, judge: Judge, episode_id: int) -> Reward:
    """Score one finished episode and store its `judge` reward (a new row each time: the
    latest counts). ValueError if it does not exist or is still running."""
    episode = await store.episode(episode_id)
    if episode is None:
        raise NotFound(f"there is no episode {episode_id}")
    if episode.status == "running":
        raise UsageError(f"episode {episode_id} is still running")
    steps = await store.steps(episode_id)
    key = template(episode.start_url)
    tasks = await store.tasks(exclude=episode_id)
    earlier = [(details.get("flip") or {}).get("logprob")
               for url, details in await store.judged(exclude=episode_id)
               if template(url) == key]
    peers = Peers.among(key, [(task, template(url)) for task, url in tasks],
                        tuple(f for f in earlier if f is not None))
    reward = await asyncio.to_thread(judge.score, episode, steps, peers)
    return await store.add_reward(reward)
