"""How well a score separates successes from failures: ROC-AUC, accuracy at the best threshold,
Spearman correlation with the ground-truth reward. Plain Python, no dependencies; ties count
half (AUC) or share their average rank (Spearman)."""

from __future__ import annotations

import math
import statistics


def auc(scores: list[float], labels: list[bool]) -> float | None:
    """P(a random success scores above a random failure); None without both classes."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def precision(scores: list[float], labels: list[bool], threshold: float) -> float | None:
    """The share of successes among the scores at or above `threshold`; None when none is."""
    chosen = [y for s, y in zip(scores, labels) if s >= threshold]
    return sum(chosen) / len(chosen) if chosen else None


def best_accuracy(scores: list[float], labels: list[bool]) -> float:
    """Accuracy of `score > t` at the best threshold t, including all-one-class."""
    if not scores:
        return math.nan
    t = best_threshold(scores, labels)
    return sum((s > t) == y for s, y in zip(scores, labels)) / len(scores)


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    ra, rb = ranks(a), ranks(b)
    if statistics.pstdev(ra) == 0 or statistics.pstdev(rb) == 0:
        return None
    return statistics.correlation(ra, rb)


def leave_group_out_accuracy(scores: list[float], labels: list[bool], groups: list[str],
                             threshold: float | None = None) -> float | None:
    """Accuracy on each group of `score > t`, t the best threshold on the other groups (or the
    fixed `threshold`, for a calibrated probability): what a threshold does on unseen tasks."""
    right = total = 0
    for key in sorted(set(groups)):
        inside = [(s, y) for s, y, g in zip(scores, labels, groups) if g == key]
        t = threshold if threshold is not None else best_threshold(
            [s for s, g in zip(scores, groups) if g != key],
            [y for y, g in zip(labels, groups) if g != key])
        right += sum((s > t) == y for s, y in inside)
        total += len(inside)
    return right / total if total else None


def best_threshold(scores: list[float], labels: list[bool]) -> float:
    """The t where `score > t` is most accurate on these (below every score when none)."""
    pairs = sorted(zip(scores, labels))
    if not pairs:
        return 0.0
    best_t = pairs[0][0] - 1                            # below everything: all "yes"
    best = correct = sum(1 for _, y in pairs if y)
    for i, (score, y) in enumerate(pairs):
        correct += -1 if y else 1                       # this one now predicted "no"
        if (i + 1 == len(pairs) or pairs[i + 1][0] != score) and correct > best:
            best, best_t = correct, score
    return best_t


def reliability(probabilities: list[float], labels: list[bool],
                bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean predicted, observed success rate, count) per probability bin that holds any."""
    out = []
    for b in range(bins):
        inside = [(p, y) for p, y in zip(probabilities, labels)
                  if b / bins <= p < (b + 1) / bins or (b == bins - 1 and p == 1.0)]
        if inside:
            out.append((statistics.mean(p for p, _ in inside),
                        sum(y for _, y in inside) / len(inside), len(inside)))
    return out


def per_group_auc(scores: list[float], labels: list[bool], groups: list[str]) -> float | None:
    """Mean AUC over the groups (task templates) that hold both classes."""
    values = [auc([s for s, g in zip(scores, groups) if g == key],
                  [y for y, g in zip(labels, groups) if g == key]) for key in sorted(set(groups))]
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None
