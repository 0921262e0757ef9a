"""Train, validation and test seeds, one fixed rule for every task source (MiniWoB++, the
bundled sites): tuning and practice see train seeds only; the nightly gate decides on
validation seeds; test seeds measure.
"""

from __future__ import annotations

from daemon.core.errors import UsageError

TEST_EVERY = 5                  # seeds 0, 5, 10, ... are test seeds
VALIDATION_FROM = 1_000_000     # the other seeds from here on are validation seeds (practice
                                # takes a few train seeds a night: it never gets this far);
                                # the others below it are train seeds
SPLITS = ("train", "validation", "test")


def split_of(seed: int) -> str:
    """The fixed rule: a seed divisible by TEST_EVERY is a test seed; any other is a
    validation seed from VALIDATION_FROM on, else a train seed."""
    if seed % TEST_EVERY == 0:
        return "test"
    return "validation" if seed >= VALIDATION_FROM else "train"


def seeds(split: str, count: int, skip: int = 0) -> list[int]:
    """`count` seeds of `split` in order, after its first `skip` (stable across versions)."""
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose {', '.join(SPLITS)}")
    found, seed = [], VALIDATION_FROM if split == "validation" else 0
    while len(found) < skip + count:
        if split_of(seed) == split:
            found.append(seed)
        seed += 1
    return found[skip:]
