"""A store holding two nights as the cycle records them (the real `Store` and trainer/night.py
summaries, no model): the CLI's, the report's and the popup's tests read it back."""

from __future__ import annotations

import dataclasses

from daemon.core.store import Adapter, Episode, Night, Reward, Store
from trainer.data import Sample, TrainingSet
from trainer.gate import compare
from trainer.night import practised, trained_on

MINE = ("Subscribe alice@example.com to the newsletter", "Set the display name to Bob")
HELD = "Add a todo: water the plants"


async def _practice(store: Store, task: str, url: str, judged: list[float]) -> list[int]:
    ids = []
    for value in judged:
        episode = await store.start_episode(Episode(task, "practice", start_url=url,
                                                    policy="llm:SmolLM2"))
        await store.finish_episode(episode.id, "done")
        await store.add_reward(Reward(episode.id, "judge", value, {"components": {}}))
        ids.append(episode.id)
    return ids


async def record_nights(db, url: str) -> dict:
    """Night 1 (not promoted) and night 2 (adapter 3 promoted over adapter 1, a short night:
    GRPO ran 10 of its 180 steps); what each holds."""
    async with await Store.open(db) as store:
        shipped = await store.add_adapter(Adapter("shipped.gguf", "s", "m", status="promoted"))
        night_ids, practice = [], {}
        for n, (promote, values) in enumerate(((False, [-0.6, -0.2]), (True, [0.4, -0.2, 0.6]))):
            start = max((e.id for e in await store.episodes(1)), default=0)
            night = await store.start_night(Night(start, serving=shipped.id, budget=7200,
                                                  started_at=f"2026-12-0{n + 6}T03:00:00.000Z"))
            for task in MINE:
                practice[(n, task)] = await _practice(store, task, url, values)
            last = max(e.id for e in await store.episodes(1))
            candidate = await store.add_adapter(Adapter(f"night-{n}.gguf", f"c{n}", "m",
                                                        parent=shipped.id))
            gate = compare({("click-button", 1): 1.0, ("focus-text", 1): 1.0,
                            ("click-link", 1): float(promote), MINE[0]: 0.6, MINE[1]: -0.2,
                            HELD: 0.0},
                           {("click-button", 1): 0.0, ("focus-text", 1): 1.0,
                            ("click-link", 1): 1.0, MINE[0]: -0.4, MINE[1]: 0.2, HELD: 0.0},
                           held={HELD})
            data = TrainingSet([Sample(i, 0, "p", "c", 1.0, "g") for i in
                                practice[(n, MINE[0])]], [], [], {HELD})
            await store.update_night(
                night.id, practice=await practised(store, start, last, set(MINE)),
                last_episode=last,
                judge={"judged": 2 * len(values), "calibration": "judge calibration kept"},
                phase="train")
            await store.update_night(night.id, candidate=candidate.id, phase="gate",
                                     training=await trained_on(store, data) | {
                                         "sft": {"steps": 4, "total_steps": 4,
                                                 "stopped_early": False},
                                         "grpo": {"steps": 170 - 160 * n, "total_steps": 180,
                                                  "stopped_early": True}})
            await store.set_adapter_status(candidate.id, "promoted" if promote else "rejected")
            await store.update_night(
                night.id, gate=dataclasses.asdict(gate), promoted=promote, status="finished",
                phase="done", decision=("promoted: won 1 / lost 0 paired seeds (sign test p "
                                        "1.000)") if promote else "not promoted: won 1 / lost "
                "1 paired seeds (sign test p 1.000); it needs more won than lost",
                ended_at=f"2026-12-0{n + 6}T05:00:00.000Z",
                seconds={"practice": 3000.0, "train": 2600.0, "gate": 1400.0})
            night_ids.append(night.id)
        return {"nights": night_ids, "practice": practice, "serving_before": shipped.id}
