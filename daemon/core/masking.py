"""Masking a secret in text: the one rule the store's redaction and an episode's scrubbing of
what the model reads share."""

from __future__ import annotations

import re

SHORT = 6       # characters: a secret shorter than this is masked only where it stands alone


def masked(text: str, secret: str, mask: str) -> str:
    """`text` with `secret` replaced by `mask`. A long secret goes wherever it occurs; a short
    one (a benchmark's two-letter password, a PIN) only where no letter or digit touches it,
    so the words that merely contain those letters ("ab" in "table") stay as they were."""
    if len(secret) >= SHORT:
        return text.replace(secret, mask)
    return re.sub(rf"(?<![^\W_]){re.escape(secret)}(?![^\W_])", lambda _: mask, text)
