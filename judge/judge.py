"""The product's judge: FLIP plus the progress rules → one `judge` reward row per episode.

`Judge.score` is synchronous and CPU-bound (run it in a worker thread); it needs the episode,
its steps, and the instructions of other episodes, those of the same task template first (the
peers that calibrate FLIP's likelihood form; see flip.py).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlsplit

from daemon.core.settings import Settings
from daemon.core.store import Episode, Reward, Step

from . import calibration, flip, lexical, rules
from .calibration import Calibration
from .model import JudgeModel
from .render import render
from .reward import RANGE, WEIGHTS, combine
from .server_model import ServerJudgeModel

RENDER_CHARS = 1200
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeOptions:
    form: str = "likelihood"        # FLIP's form: likelihood (calibrated) or generate
    samples: int = 1                # generate: inferred instructions averaged
    temperature: float = 0.7        # generate: sampling temperature when samples > 1
    distractors: int = 4            # likelihood: peer instructions to calibrate against

    def __post_init__(self) -> None:
        if self.form not in ("likelihood", "generate"):
            raise ValueError(f"unknown FLIP form {self.form!r}: likelihood or generate")

    @classmethod
    def from_settings(cls, settings: Settings) -> JudgeOptions:
        return cls(settings.judge_form, settings.judge_samples, settings.judge_temperature)

    @property
    def sampling_temperature(self) -> float:
        """One sample is taken greedily; several at `temperature`."""
        return self.temperature if self.samples > 1 else 0.0


def template(url: str | None) -> str:
    """A task template's identity: host and path of the start URL (ports and queries vary
    between runs of the same task)."""
    parts = urlsplit(url or "")
    return f"{parts.hostname or ''}{parts.path}"


class Judge:
    """`fallback`: why the configured form could not be used (FLIP's likelihood form on a server
    that cannot score given text), kept in every reward row it writes."""

    def __init__(self, model: JudgeModel | ServerJudgeModel,
                 options: JudgeOptions = JudgeOptions(), fallback: str | None = None,
                 calibration: Calibration | None = None):
        self.model = model
        self.options = options
        self.fallback = fallback
        self.calibration = calibration

    def flip(self, rendered: str, instruction: str, peers: list[str]) -> tuple[float, dict]:
        """FLIP's score in [0, 1] and what it was made of."""
        o = self.options
        if o.form == "generate":
            score, inferred = flip.generate(self.model, rendered, instruction,
                                            samples=o.samples,
                                            temperature=o.sampling_temperature)
            return score, {"inferred": inferred}
        others = flip.distractors(instruction, peers, o.distractors)
        raw = flip.likelihood(self.model, rendered, instruction)
        margin = flip.margin(self.model, rendered, raw, others)
        return flip.to_unit(raw, margin), {
            "logprob": round(raw, 4), "distractors": len(others),
            "margin": None if math.isnan(margin) else round(margin, 4)}

    def score(self, episode: Episode, steps: list[Step], peers: list[str],
              peer_flips: list[float] = ()) -> Reward:
        """The `judge` reward row. `peer_flips`: FLIP's scores of the template's earlier
        episodes, the baseline the calibrated probability reads FLIP against."""
        t0 = time.perf_counter()
        with self.model.lock:
            flip_score, flip_parts = self.flip(render(episode, steps, RENDER_CHARS),
                                               episode.task, peers)
        progress = rules.score(episode, steps)
        calibrated = self._calibrated(episode, steps, flip_score, progress, list(peer_flips))
        return Reward(episode.id, "judge", combine(flip_score, progress.value), {
            "components": {"flip": round(flip_score, 4), "progress": progress.value},
            "weights": dict(WEIGHTS), "range": list(RANGE),
            "flip": {"model": self.model.name, **asdict(self.options), **flip_parts,
                     **({"fallback": self.fallback} if self.fallback else {})},
            "rules": progress.details(),
            "version": {"model": self.model.version, "rules": rules.VERSION,
                        **({"calibration": self.calibration.version} if calibrated else {})},
            **({"calibrated": calibrated} if calibrated else {}),
            "seconds": round(time.perf_counter() - t0, 2)})


    def _calibrated(self, episode: Episode, steps: list[Step], flip_score: float,
                    progress: rules.Progress, peer_flips: list[float]) -> dict | None:
        """The learned combination's probability of success and what it read (calibration.py);
        None without a calibration."""
        if self.calibration is None:
            return None
        row = {"flip_z": calibration.z_score(flip_score, peer_flips),
               "lexical": lexical.score(episode, steps), "facts": progress.counts}
        return {"probability": round(self.calibration.probability(row), 4),
                "flip_z": round(row["flip_z"], 4), "lexical": round(row["lexical"], 4),
                "baseline_episodes": len(peer_flips)}


def judge_from_settings(settings: Settings) -> Judge:
    """The judge the settings describe (loads the model: ~0.2-1 s). On a server that cannot
    score given text, FLIP's likelihood form falls back to its generate form, saying why."""
    options = JudgeOptions.from_settings(settings)
    if settings.judge_backend != "openai":
        return Judge(JudgeModel(settings.judge_model, threads=settings.threads), options,
                     calibration=_fitted_for(options))
    model = ServerJudgeModel(settings)
    why = model.cannot_score() if options.form == "likelihood" else None
    if why:
        log.warning("the judge's server cannot score given text: %s; FLIP uses its generate "
                    "form", why)
        options = replace(options, form="generate")
    return Judge(model, options, fallback=f"likelihood form unavailable: {why}" if why else None,
                 calibration=_fitted_for(options))


def _fitted_for(options: JudgeOptions) -> Calibration | None:
    """The shipped calibration, fitted on FLIP's likelihood form: none for the generate form,
    whose scores live on another scale."""
    return calibration.shipped() if options.form == "likelihood" else None
