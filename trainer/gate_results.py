"""What earlier gates measured: each adapter's MiniWoB++ outcome per (task, validation seed), kept
beside the store (``<store>.gate.json``), so that a night whose serving adapter an earlier gate
already measured — last night's promoted candidate, or the same adapter again after a
rejection — spends its gate on the candidate alone.

Only greedy outcomes are kept (a sample at a temperature above 0 is not repeatable), under a
key that holds everything that shapes one: the model's and the adapter's files, the step limit,
the prompt's settings and nightloop's version; a change in any of them measures anew.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from daemon.core.settings import Settings

KEEP = 8                # adapters remembered, the latest measured kept


def policy_key(settings: Settings, model: Path, adapter_sha256: str | None,
               max_steps: int) -> str | None:
    """The key of one greedy policy's outcomes; None when it does not decode greedily."""
    if settings.temperature > 0:
        return None
    shaping = {"model": [model.name, model.stat().st_size], "adapter": adapter_sha256,
               "max_steps": max_steps, "n_ctx": settings.n_ctx,
               "obs_tokens": settings.obs_tokens, "history": settings.history,
               "nightloop": metadata.version("nightloop")}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class GateResults:
    path: Path
    runs: dict[str, dict[str, float]]          # key → {"task seed": success}
    episode_seconds: float | None = None        # the last gate's pace: what the next plans with

    @classmethod
    def beside(cls, db: Path | str) -> GateResults:
        """The outcomes kept beside store `db` (none when the file is missing or unreadable)."""
        path = Path(f"{db}.gate.json")
        try:
            kept = json.loads(path.read_text())
            runs, pace = kept["runs"], kept.get("episode_seconds")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            runs, pace = {}, None
        return cls(path, runs if isinstance(runs, dict) else {},
                   pace if isinstance(pace, (int, float)) else None)

    def known(self, key: str | None) -> dict[tuple[str, int], float]:
        """The outcomes on record for the policy `key` names, by (task, seed)."""
        return {(task, int(seed)): value for pair, value in self.runs.get(key, {}).items()
                for task, seed in [pair.rsplit(" ", 1)]} if key else {}

    def add(self, key: str | None, outcomes: dict) -> None:
        """Record the (task, seed) outcomes of `outcomes` for `key` and write the file (the
        `KEEP` latest keys stay)."""
        if not key:
            return
        run = self.runs.pop(key, {})
        run.update({f"{k[0]} {k[1]}": v for k, v in outcomes.items() if isinstance(k, tuple)})
        self.runs[key] = run
        while len(self.runs) > KEEP:
            self.runs.pop(next(iter(self.runs)))
        self._write()

    def paced(self, seconds: list[float]) -> None:
        """Record the pace of a gate whose episodes took `seconds` (none: nothing to record)."""
        if seconds:
            self.episode_seconds = round(sum(seconds) / len(seconds), 2)
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".partial")
        tmp.write_text(json.dumps({"runs": self.runs, "episode_seconds": self.episode_seconds}))
        tmp.replace(self.path)
