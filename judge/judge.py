"""The product's judge: FLIP, the lexical match and the progress rules → one `judge` reward row
per episode (the calibrated probability by default; reward.py says which).

`Judge.score` is synchronous and CPU-bound (run it in a worker thread); it needs the episode,
its steps, and what other episodes say about its task template (`Peers`).
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
from .reward import RANGE, WEIGHTS, combine, from_probability
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


@dataclass(frozen=True)
class Peers:
    """What one episode is read against: the tasks of the other episodes of its template and
    of the rest (FLIP's distractors, the template's own first; the words `lexical.arguments`
    weighs), and FLIP's likelihoods of its template's earlier judged episodes (the baseline of
    the calibrated likelihood)."""
    template_tasks: tuple[str, ...] = ()
    other_tasks: tuple[str, ...] = ()
    likelihoods: tuple[float, ...] = ()

    @classmethod
    def among(cls, key: str, others: list[tuple[str, str]],
              likelihoods: tuple[float, ...] = ()) -> Peers:
        """The peers of an episode of template `key` among the (task, template) of the other
        episodes, in their order."""
        return cls(tuple(task for task, k in others if k == key),
                   tuple(task for task, k in others if k != key), likelihoods)

    @property
    def tasks(self) -> list[str]:
        return [*self.template_tasks, *self.other_tasks]


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

    def score(self, episode: Episode, steps: list[Step], peers: Peers = Peers()) -> Reward:
        """The `judge` reward row: the calibrated probability where the judge has a calibration
        (one model pass: FLIP's raw likelihood, read against the peers' likelihoods, and the
        text matches), else the hybrid of FLIP (the peers' tasks as distractors) and the
        progress rules (reward.py)."""
        t0 = time.perf_counter()
        rendered = render(episode, steps, RENDER_CHARS)
        progress = rules.score(episode, steps)
        if self.calibration:
            with self.model.lock:
                raw = flip.likelihood(self.model, rendered, episode.task)
            parts: dict = {"form": "likelihood", "logprob": round(raw, 4)}
            read = self._calibrated(episode, steps, raw, peers)
            value, made = from_probability(read["probability"]), {
                "components": {"calibrated": read["probability"], "progress": progress.value},
                "calibrated": read}
        else:
            with self.model.lock:
                flip_score, parts = self.flip(rendered, episode.task, peers.tasks)
            parts = {**asdict(self.options), **parts}
            value, made = combine(flip_score, progress.value), {
                "components": {"flip": round(flip_score, 4), "progress": progress.value},
                "weights": dict(WEIGHTS)}
        return Reward(episode.id, "judge", value, {
            **made, "range": list(RANGE),
            "flip": {"model": self.model.name, **parts,
                     **({"fallback": self.fallback} if self.fallback else {})},
            "rules": progress.details(),
            "version": {"model": self.model.version, "rules": rules.VERSION,
                        **({"calibration": self.calibration.version}
                           if self.calibration else {})},
            "seconds": round(time.perf_counter() - t0, 2)})

    def _calibrated(self, episode: Episode, steps: list[Step], likelihood: float,
                    peers: Peers) -> dict:
        """The learned combination's probability of success and the features it read
        (calibration.py), which the nightly refit fits on again."""
        assert self.calibration is not None
        row = {"flip_likelihood_z": calibration.z_score(likelihood, list(peers.likelihoods)),
               "lexical": lexical.score(episode, steps),
               "arguments": lexical.arguments(episode, steps, list(peers.template_tasks))}
        return {"probability": round(self.calibration.probability(row), 4),
                "features": {name: round(value, 4) for name, value in row.items()},
                "baseline_episodes": len(peers.likelihoods),
                "stated_precision": (self.calibration.measured or {}).get(
                    "precision_leave_task_out")}


def judge_from_settings(settings: Settings) -> Judge:
    """The judge the settings describe (loads the model: ~0.2-1 s). On a server that cannot
    score given text, FLIP's likelihood form falls back to its generate form, saying why."""
    options = JudgeOptions.from_settings(settings)
    if settings.judge_backend != "openai":
        return Judge(JudgeModel(settings.judge_model, threads=settings.threads), options,
                     calibration=_fitted_for(options, settings))
    model = ServerJudgeModel(settings)
    why = model.cannot_score() if options.form == "likelihood" else None
    if why:
        log.warning("the judge's server cannot score given text: %s; FLIP uses its generate "
                    "form", why)
        options = replace(options, form="generate")
    return Judge(model, options, fallback=f"likelihood form unavailable: {why}" if why else None,
                 calibration=_fitted_for(options, settings))


def _fitted_for(options: JudgeOptions, settings: Settings) -> Calibration | None:
    """The calibration in use for the store (its refit, else the shipped one), fitted on FLIP's
    likelihood form: none for the generate form, whose scores live on another scale."""
    return calibration.in_use(settings.db_path) if options.form == "likelihood" else None
