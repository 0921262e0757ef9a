"""Text comparison as FLIP defines it (arXiv 2602.13551): normalise, then unigram F1.

Normalisation: lower-case, strip punctuation, drop the articles a/an/the, collapse whitespace.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = {"a", "an", "the"}


def normalize(text: str) -> list[str]:
    """The tokens FLIP compares: lower-case words without punctuation or articles."""
    words = _PUNCTUATION.sub(" ", text.lower()).split()
    return [w for w in words if w not in _ARTICLES]


def token_f1(predicted: str, reference: str) -> float:
    """Unigram F1 of the normalised tokens; 0.0 when they share nothing (or either is empty)."""
    pred, ref = normalize(predicted), normalize(reference)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)
