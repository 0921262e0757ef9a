"""Keeping secrets out of the store, the prompt and the logs.

Secret values (passwords, payment cards, one-time codes: `Element.is_secret`) are dropped in the
page (content script) and again in `Observation.from_json`. Text the agent types into a secret
field is a secret of its episode: `EpisodeSecrets.mask`
swaps it for MASK in the action before the action is stored, logged or shown to the policy, and
`EpisodeSecrets.redact` — the one place that asks the store to redact, for the episode loop and
the daemon's recorder alike — at once rewrites every other place the episode stored it (the task
text, for one). A secret named in the task as ``{{NAME}}`` (daemon/core/vault.py) stays a
placeholder in the action; its value, put in only on the way to the page, is a secret of the
episode like any other (`EpisodeSecrets.add`), masked wherever the page shows it back.

`secret_in_task` finds what looks like a secret written into a task in clear (a value after
"password", "PIN", "code"…, a payment card's number), which the daemon refuses unless the user
insists.
"""

from __future__ import annotations

import re

from daemon.core.actions import Action
from daemon.core.masking import masked
from daemon.core.observation import MASK, Observation
from daemon.core.store import Store
from daemon.core.vault import PLACEHOLDER

# A value right after a word that names a secret ("password hunter2", "PIN: 4711", "the code
# is 123456", 'fill "Password" with "hunter2"', "set the password to hunter2").
_NAMED = re.compile(
    r"\b(?:pass(?:word|wd|code|phrase)|pin(?: code)?|security code|cvc|cvv|one[- ]time code|"
    r"otp|verification code)\b[\"'”’]?\s*(?:(?P<sep>[:=])\s*|(?:is|with|to|as|of)\s+)?"
    r"(?P<quote>[\"'“‘])?(?P<value>[^\s\"'”’,;]+)", re.IGNORECASE)
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")


def secret_in_task(task: str) -> str | None:
    """What looks like a secret written into `task` in clear, or None: a value after a word
    that names a secret — quoted, after ":" or "=", or one that looks like a password (a digit,
    a symbol or mixed case in it: "password is wrong" is no secret) — or a number that passes a
    payment card's checksum (Luhn). A ``{{NAME}}`` placeholder is no secret."""
    named = [m.span() for m in PLACEHOLDER.finditer(task)]
    for match in _NAMED.finditer(task):
        if any(start <= match.start() < end for start, end in named):
            continue
        value = match["value"].rstrip(".!?:)")
        if value[:1].isalnum() and (match["quote"] or match["sep"] or _looks_secret(value)):
            return value
    for match in _CARD.finditer(task):
        if _luhn(re.sub(r"\D", "", match.group())):
            return match.group()
    return None


def _looks_secret(word: str) -> bool:
    return any(c.isdigit() or not c.isalnum() for c in word) or \
        (any(c.isupper() for c in word[1:]) and any(c.islower() for c in word))


def _luhn(digits: str) -> bool:
    total = 0
    for i, digit in enumerate(reversed(digits)):
        n = int(digit) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


class EpisodeSecrets:
    """The secrets typed during one episode."""

    def __init__(self, known: tuple[str, ...] = ()) -> None:
        """`known`: secrets of the episode from its start (one the user wrote into the task
        and insisted on), redacted at the first `redact`."""
        self.secrets: list[str] = []
        self._unredacted: list[str] = []
        for secret in known:
            self.add(secret)

    def add(self, secret: str) -> None:
        """`secret` is one of this episode's: masked from now on, redacted at the next call."""
        if secret and secret not in self.secrets:
            self.secrets.append(secret)
            self._unredacted.append(secret)

    def mask(self, action: Action, observation: Observation | None) -> Action:
        """The action as it may be recorded: text typed into a secret field is masked (a
        ``{{NAME}}`` placeholder is no secret: it stays)."""
        target = observation.element(action.element_id) if observation and \
            action.element_id is not None else None
        if action.name != "fill" or target is None or not target.is_secret or \
                PLACEHOLDER.fullmatch(action.args["text"]):
            return action
        self.add(action.args["text"])
        return Action(action.name, {**action.args, "text": MASK})

    def scrub(self, text: str | None) -> str | None:
        """`text` with every known secret masked."""
        if text is None:
            return None
        for secret in self.secrets:
            text = masked(text, secret, MASK)
        return text

    def scrub_tree(self, value):
        """`value` (decoded JSON: a page's observation) with every known secret masked in
        every string in it."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_tree(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub_tree(v) for k, v in value.items()}
        return value

    async def redact(self, store: Store, episode_id: int, *, every: bool = False) -> None:
        """Rewrite with MASK, everywhere episode `episode_id` stored them, the secrets found
        since the last call — or `every` one of them (after a step that may show a secret
        again, such as the page a recording ends on)."""
        found = self.secrets if every else self._unredacted
        for secret in found:
            await store.redact(episode_id, secret, MASK)
        self._unredacted = []
