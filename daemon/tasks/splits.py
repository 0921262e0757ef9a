"""Train and test seeds, one fixed rule for every task source (MiniWoB++, the bundled sites):
tuning and practice see train seeds only; test seeds measure.
"""

from __future__ import annotations

TEST_EVERY = 5                  # seeds 0, 5, 10, ... are test seeds; all others train seeds


def split_of(seed: int) -> str:
    """The fixed rule: a seed divisible by TEST_EVERY is a test seed, any other a train seed."""
    return "test" if seed % TEST_EVERY == 0 else "train"


def seeds(split: str, count: int, skip: int = 0) -> list[int]:
    """`count` seeds of `split` in order, after its first `skip` (stable across versions)."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose train or test")
    found, seed = [], 0
    while len(found) < skip + count:
        if split_of(seed) == split:
            found.append(seed)
        seed += 1
    return found[skip:]
