"""Sensitive actions wait for the user's yes.

`sensitivity` says why an action needs approval before it runs in the user's own browser:

- **navigation**: `goto` to an origin that is neither the episode's start origin nor one the
  task text names (a page cannot send the agent elsewhere on its own);
- **secret**: typing into a secret field (a password, a payment card, a one-time code:
  `Element.is_secret`);
- **commit**: clicking a control whose name says it pays, buys, orders, deletes or sends money
  (the `approval_words` setting), or submitting (a click on a button, Enter) once the agent
  has typed a secret in this episode and a secret field holds a value.

The episode loop asks its `Approver` before acting (none: nothing is asked, as in benchmarks and
practice, which run in a browser of their own); a denial is recorded in the step, and the
policy sees it next step. "Approve for this episode" approves the rest of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

from daemon.core.actions import Action, urls_in
from daemon.core.observation import Observation
from daemon.core.settings import DEFAULTS

Verdict = Literal["approve", "approve_episode", "deny"]


@dataclass(frozen=True)
class Sensitivity:
    kind: Literal["navigation", "secret", "commit"]
    reason: str


@dataclass(frozen=True)
class ApprovalRequest:
    episode_id: int
    index: int                      # the step
    action: dict                    # as it would be recorded (secrets masked)
    page: str                       # the page's URL
    element: str | None             # the target as the policy saw it, e.g. `[4] button "Pay"`
    kind: str
    reason: str


class Approver(Protocol):
    async def approve(self, request: ApprovalRequest) -> tuple[Verdict, str | None]:
        """The user's verdict, and why when it is not theirs (e.g. no answer in time)."""


def origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


def sensitivity(action: Action, page: Observation, *, start_url: str | None, task: str,
                words: tuple[str, ...] = DEFAULTS.approval_words,
                typed_secret: bool = False) -> Sensitivity | None:
    """Why `action` on `page` needs the user's approval, or None when it does not."""
    if action.name == "goto":
        allowed = {origin(u) for u in (start_url or "", *urls_in(task))} - {None}
        target = origin(action.args["url"])
        if target not in allowed:
            return Sensitivity("navigation", f"opens {target}, a site the task does not name")
        return None
    element = page.element(action.element_id) if action.element_id is not None else None
    if element and action.name == "fill" and element.is_secret:
        return Sensitivity("secret", f"types into the secret field {element.render()}")
    if element and action.name == "click" and _says(element.name, words):
        return Sensitivity("commit", f"clicks {element.render()}")
    submits = (action.name == "click" and element is not None and element.role == "button") \
        or (action.name == "press" and action.args.get("key") == "Enter")
    if submits and typed_secret and any(e.is_secret and e.value for e in page.elements):
        return Sensitivity("commit", "submits a form with a filled secret field")
    return None


def _says(name: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(w)}\b", name, re.IGNORECASE) for w in words)
