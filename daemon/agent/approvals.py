"""Sensitive actions wait for the user's yes.

`sensitivity` says why an action needs approval before it runs in the user's own browser:

- **navigation**: `goto`, or a click on a link, to an origin the episode may not go to unasked:
  only its start origin (the page it started on), the origins its task text names and those the
  user approved earlier in it are allowed (a page cannot send the agent elsewhere on its own);
- **secret**: typing into a secret field (a password, a payment card, a one-time code:
  `Element.is_secret`) — except a secret the task names as ``{{NAME}}`` (the user chose it for
  this task) — and typing such a named secret into a field that is not a secret field;
- **commit**: clicking a control whose name says it pays, buys, orders, deletes or sends money
  (the `approval_words` setting), or submitting a form with a filled secret field (a click on a
  button of that form, Enter in one of its fields). Fields outside any form (a page that
  submits by script) count as one form once the agent itself typed a secret in the episode (a
  password the browser filled in would otherwise make every button ask).

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
from daemon.core.observation import Element, Observation
from daemon.core.settings import DEFAULTS
from daemon.core.vault import PLACEHOLDER, placeholders

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


def allowed_origins(start_url: str | None, task: str) -> set[str]:
    """The origins an episode may open unasked, as far as its start and its task say."""
    return {origin(u) for u in (start_url or "", *urls_in(task))} - {None}


def sensitivity(action: Action, page: Observation, *, origins: set[str],
                words: tuple[str, ...] = DEFAULTS.approval_words,
                typed_secret: bool = False) -> Sensitivity | None:
    """Why `action` on `page` needs the user's approval, or None when it does not; `origins`
    are those the episode may open unasked."""
    if action.name == "goto":
        target = origin(action.args["url"])
        if target not in origins:
            return Sensitivity("navigation", f"opens {target}, a site the task does not name")
        return None
    element = page.element(action.element_id) if action.element_id is not None else None
    named = placeholders(action.args.get("text")) if action.name == "fill" else []
    if element and named and not element.is_secret:
        return Sensitivity("secret", f"types the secret {{{{{named[0]}}}}} into "
                                     f"{element.render()}, which is not a secret field")
    if element and action.name == "fill" and element.is_secret and \
            not PLACEHOLDER.fullmatch(action.args["text"]):
        return Sensitivity("secret", f"types into the secret field {element.render()}")
    if element and action.name == "click" and _says(element.name, words):
        return Sensitivity("commit", f"clicks {element.render()}")
    if element and action.name == "click" and element.link_origin \
            and element.link_origin not in origins:
        return Sensitivity("navigation", f"follows {element.render()} to {element.link_origin}, "
                                         "a site the task does not name")
    if _submits(action, element) and _holds_secret(page, element, typed_secret):
        return Sensitivity("commit", "submits a form with a filled secret field")
    return None


def _submits(action: Action, element: Element | None) -> bool:
    return (action.name == "click" and element is not None and element.role == "button") \
        or (action.name == "press" and action.args.get("key") == "Enter")


def _holds_secret(page: Observation, element: Element | None, typed_secret: bool) -> bool:
    """Whether the form `element` belongs to (any form: Enter wherever the focus is) has a
    filled secret field; fields outside any form count once the agent typed a secret."""
    forms = {element.form} if element is not None else {e.form for e in page.elements}
    return any(e.is_secret and e.value and e.form in forms and (e.form is not None or typed_secret)
               for e in page.elements)


def _says(name: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(w)}\b", name, re.IGNORECASE) for w in words)
