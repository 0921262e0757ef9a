"""A learned combination of the judge's parts into one calibrated probability of success.

Features (`FEATURES`): FLIP's raw likelihood of the instruction against the other episodes of
its task template (a z-score: the likelihood ranks attempts of one task well but its scale
differs between tasks, so only its standing within its template is comparable), the lexical
F1 of task and actions, and how much of what this task asks for the actions name
(`lexical.arguments`: the words its template's other tasks lack). Chosen by AUC on tasks
the fit never saw, on labelled MiniWoB++ episodes, among FLIP (raw, calibrated against
distractors, z-scored), direct, lexical, arguments, rules, every rule count and the episode's
length (see the README's judge section); checked on the bundled sites' episodes, which the
choice never saw. The raw likelihood's z ranks as well as the distractor-calibrated
FLIP's with one model pass instead of five. How an episode ended is left out: MiniWoB++ ends
its episodes itself, and the few its agent ended taught a weight that put the sites' episodes,
which the agent ends, at a mean probability of 0.05 for a success rate of 0.28.
A logistic regression with an L2 penalty (Newton's method, numpy), each feature standardised by
the fit's own mean and spread, fitted on episodes with ground truth (MiniWoB++ practice gives
it for free). `leave_task_out` predicts each task template's episodes from a fit on the other
templates only: the figure that says what the judge does on a task it never saw.

A fit is a small JSON file (`Calibration.save` / `load`); its `version` (sha256 of the file's
content) is what a reward row records, so a score can be traced and recomputed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FEATURES = ("flip_likelihood_z", "lexical", "arguments")


def features(row: dict) -> list[float]:
    """The feature vector of one scored episode (a row of `evaluate.score_all`)."""
    return [float(row.get(name, 0.0)) for name in FEATURES]


def z_score(value: float, others: list[float]) -> float:
    """`value` against the mean and spread of `others` (its template's other episodes); 0 with
    fewer than 3 others."""
    if len(others) < 3:
        return 0.0
    spread = float(np.std(others)) or 1.0
    return (value - float(np.mean(others))) / spread


@dataclass
class Calibration:
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    n: int                              # episodes it was fitted on
    successes: int
    features: tuple[str, ...] = FEATURES
    measured: dict | None = None        # its leave-task-out figures where it was fitted
                                        # (auc, accuracy, precision, the set): what it states

    def probability(self, row: dict) -> float:
        x = (np.array(features(row)) - self.mean) / self.scale
        logit = float(x @ np.array(self.weights) + self.bias)
        return 0.5 * (1 + math.tanh(logit / 2))         # the logistic, without overflow

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "features": list(self.features)}, indent=1)

    @property
    def version(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def save(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        data = json.loads(path.read_text())
        data["features"] = tuple(data["features"])
        data.setdefault("measured", None)
        if data["features"] != FEATURES:
            raise ValueError(f"{path} was fitted on other features: refit it")
        return cls(**data)


SHIPPED = Path(__file__).with_name("calibration.json")


@functools.cache
def shipped() -> Calibration | None:
    """The fit that ships with the judge (None when there is none), read once."""
    return Calibration.load(SHIPPED) if SHIPPED.exists() else None


def local_path(db: Path) -> Path:
    """Where the nightly refit (refit.py) keeps the fit of a store's own episodes."""
    return Path(f"{db}.calibration.json")


def in_use(db: Path) -> Calibration | None:
    """The fit the judge of the store `db` uses: the store's own refit where there is one
    fitted on today's features, else the shipped one."""
    try:
        return Calibration.load(local_path(db))
    except FileNotFoundError:
        return shipped()
    except ValueError as exc:       # fitted on other features: refit by the next cycle
        log.warning("%s; the shipped calibration is used", exc)
        return shipped()


def fit(rows: list[dict], labels: list[bool], l2: float = 1.0, steps: int = 50) -> Calibration:
    """Logistic regression of `labels` on the rows' features (Newton's method)."""
    x = np.array([features(r) for r in rows], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.eye(z.shape[1]) * l2
    penalty[-1, -1] = 0.0                                   # the bias is not shrunk
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) + penalty @ w
        hess = z.T @ (z * (p * (1 - p))[:, None]) + penalty
        delta = np.linalg.solve(hess, grad)
        w -= delta
        if np.abs(delta).max() < 1e-8:
            break
    return Calibration(mean.tolist(), scale.tolist(), w[:-1].tolist(), float(w[-1]),
                       len(rows), int(y.sum()))


def leave_task_out(rows: list[dict], labels: list[bool], groups: list[str],
                   l2: float = 1.0) -> list[float | None]:
    """Each episode's probability from a fit on the other templates' episodes (None where the
    others hold only one class)."""
    out: list[float | None] = [None] * len(rows)
    for group in sorted(set(groups)):
        train = [i for i, g in enumerate(groups) if g != group]
        if len({labels[i] for i in train}) < 2:
            continue
        model = fit([rows[i] for i in train], [labels[i] for i in train], l2)
        for i, g in enumerate(groups):
            if g == group:
                out[i] = model.probability(rows[i])
    return out


def unseen_parts(rows: list[dict], labels: list[bool], groups: list[str], parts: int = 4,
                 repeats: int = 10, seed: int = 0) -> list[tuple[list[int], list[float]]]:
    """The templates split at random into `parts` parts, `repeats` times: each part's episodes
    (indices) with their probabilities from one fit on the other parts. Unlike
    `leave_task_out`, whose every template has its own fit, one fit ranks a part's templates
    together, as the shipped fit ranks tasks it never saw; a part is left out where the other
    parts hold one class only."""
    rng = np.random.default_rng(seed)
    templates = sorted(set(groups))
    out = []
    for _ in range(repeats):
        shuffled = rng.permutation(templates)
        for k in range(parts):
            held = set(shuffled[k::parts])
            inside = [i for i, g in enumerate(groups) if g in held]
            train = [i for i, g in enumerate(groups) if g not in held]
            if not inside or len({labels[i] for i in train}) < 2:
                continue
            model = fit([rows[i] for i in train], [labels[i] for i in train])
            out.append((inside, [model.probability(rows[i]) for i in inside]))
    return out
