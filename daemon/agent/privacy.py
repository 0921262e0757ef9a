"""Keeping secrets out of the store, the prompt and the logs.

Secret values (passwords, payment cards, one-time codes: `Element.is_secret`) are dropped in the
page (content script) and again in `Observation.from_json`. Text the agent types into a secret
field is a secret of its episode: `EpisodeSecrets.mask`
swaps it for MASK in the action before the action is stored, logged or shown to the policy, and
the episode loop at once redacts every other place it was stored (the task text, for one).
"""

from __future__ import annotations

from daemon.core.actions import Action
from daemon.core.observation import MASK, Observation


class EpisodeSecrets:
    """The secrets typed during one episode."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self._unredacted: list[str] = []

    def mask(self, action: Action, observation: Observation | None) -> Action:
        """The action as it may be recorded: text typed into a secret field is masked."""
        target = observation.element(action.element_id) if observation and \
            action.element_id is not None else None
        if action.name != "fill" or target is None or not target.is_secret:
            return action
        secret = action.args["text"]
        if secret and secret not in self.secrets:
            self.secrets.append(secret)
            self._unredacted.append(secret)
        return Action(action.name, {**action.args, "text": MASK})

    def scrub(self, text: str | None) -> str | None:
        """`text` with every known secret masked."""
        if text is None:
            return None
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def take_new(self) -> list[str]:
        """Secrets found since the last call: the store still has them in clear somewhere."""
        new, self._unredacted = self._unredacted, []
        return new
