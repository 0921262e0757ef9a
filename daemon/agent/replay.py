"""Replaying a recorded episode without the model: its actions, re-targeted by descriptor.

`ReplayPolicy` stands where the model would in the normal episode loop, so a replay is an
ordinary episode (source ``replay``) with every step stored, each marked ``replayed``,
``fallback`` or ``user``. Per recorded step:

- an action without a target (goto, scroll, press without element, …) is replayed as is;
- an action with a target is replayed on the element its descriptor finds (descriptors.find);
  a click on a toggle already in the state the task wants (`wants_checked`, values.py) is left
  out;
- a `fill` of a password field pauses the replay: the user is asked to type it (the recording
  never held it), and the replay goes on when they say so;
- a target that is not found is first waited for (`PATIENCE` short waits: a page may still be
  rendering what it fetched); then, with a fallback policy (shown the steps taken, not the
  waits), the policy decides that one step, given
  the task and the recorded plan; after it, the same recorded step is tried again if its target
  has appeared (the policy got past an inserted step), else the replay moves on (the policy did
  the step itself). Without a fallback the replay ends (give_up) with a report of where and why.
"""

from __future__ import annotations

import dataclasses
from typing import Awaitable, Callable

from daemon.core.actions import Action
from daemon.core.store import Episode, Step, Store

from .descriptors import find, label
from .episode import BrowserError
from .policy import Decision, Policy, StepContext
from .values import Unmatched, rebind

AskUser = Callable[[str], Awaitable[None]]

PATIENCE = 4            # waits of WAIT_S for a recorded target before the replay looks elsewhere
WAIT_S = 0.5


def plan_line(step: Step) -> str:
    """`click button "Send"`, `fill textbox "Name" with "Ada"`: a recorded step for people."""
    action = dict(step.action or {})
    name = action.pop("action", "?")
    parts = [name] + ([label(step.target)] if action.pop("id", None) is not None else [])
    parts += [f"{k} {v!r}" for k, v in action.items()]
    return " ".join(parts)


class ReplayPolicy:
    def __init__(self, recorded: list[Step], *, fallback: Policy | None, ask_user: AskUser):
        self.plan = [s for s in recorded if s.action and s.ok]
        self.replay_of = recorded[0].episode_id if recorded else None   # the episode it re-runs
        self.fallback = fallback
        self.ask_user = ask_user
        self.name = f"replay+{fallback.name}" if fallback else "replay"
        self.adapter = fallback.adapter if fallback else None
        self.cursor = 0
        self._waited = 0                    # waits for the target of the step at `cursor`
        self._after_fallback = False

    async def decide(self, context: StepContext) -> Decision:
        if self.cursor >= len(self.plan):
            return Decision(Action("done"), mode="replayed")
        step = self.plan[self.cursor]
        action = Action.parse(step.action)
        if action.element_id is None:
            self.cursor += 1
            return Decision(action, mode="replayed")
        element = find(context.observation, step.target or {})
        if element is not None:
            self.cursor += 1
            self._waited, self._after_fallback = 0, False
            if action.name == "click" and element.checked is not None and \
                    element.checked == (step.target or {}).get("wants_checked"):
                return await self.decide(context)       # the toggle is already as asked
            if element.is_password and action.name == "fill":
                await self.ask_user(f"Type your password into {label(step.target)} in the page, "
                                    "then press Continue.")
                return Decision(Action("wait", {"seconds": 0}), mode="user")
            return Decision(Action(action.name, {**action.args, "id": element.id}),
                            mode="replayed")
        if self._after_fallback:            # the fallback did this step itself: go on
            self._after_fallback = False
            self.cursor += 1
            return await self.decide(context)
        if self._waited < PATIENCE:
            self._waited += 1
            return Decision(Action("wait", {"seconds": WAIT_S}), mode="replayed")
        where = (f"step {self.cursor + 1} of {len(self.plan)} ({plan_line(step)}): no "
                 f"{label(step.target)} on {context.observation.url}")
        if self.fallback is None:
            return Decision(Action("give_up", {"reason": where}), mode="replayed")
        self._after_fallback, self._waited = True, 0
        acted = [h for h in context.history if not (h.action and h.action.name == "wait")]
        decision = await self.fallback.decide(
            dataclasses.replace(context, history=acted, plan=self._plan(where)))
        return dataclasses.replace(decision, mode="fallback")

    def _plan(self, where: str) -> str:
        lines = [f"{i}. {plan_line(s)}" for i, s in enumerate(self.plan, 1)]
        return ("You are repeating a recorded task. The recorded steps:\n" + "\n".join(lines)
                + f"\nThe page has changed at {where}. Take the one action that does that step "
                  "on this page.")


class DemonstrationReplay:
    """Replays, for each task, the first of `demonstrations` whose template the task fits,
    with the task's values (values.py); no model, no fallback. A task no demonstration fits
    gives up saying so."""

    name, adapter = "replay-with-values", None

    def __init__(self, demonstrations: list[tuple[Episode, list[Step]]]):
        self.demonstrations = demonstrations
        self.replay: ReplayPolicy | None = None

    async def decide(self, context: StepContext) -> Decision:
        if not context.history:                 # a new episode: find its demonstration
            self.replay = self._for(context.task)
        if self.replay is None:
            return Decision(Action("give_up", {"reason": "no demonstration fits this task"}),
                            mode="replayed")
        return await self.replay.decide(context)

    def _for(self, task: str) -> ReplayPolicy | None:
        found = fitting(self.demonstrations, task)
        return ReplayPolicy(found[1], fallback=None, ask_user=unattended) if found else None


async def recorded_demonstrations(store: Store) -> list[tuple[Episode, list[Step]]]:
    """The store's good demonstrations with their steps, newest first: what a task is fitted
    against (`fitting`)."""
    return [(demo, await store.steps(demo.id)) for demo in await store.demonstrations()]


def fitting(demonstrations: list[tuple[Episode, list[Step]]],
            task: str) -> tuple[Episode, list[Step]] | None:
    """The first of `demonstrations` whose template `task` fits, with its steps rebound to
    `task`'s values; None when none fits."""
    for demo, steps in demonstrations:
        try:
            return demo, rebind(steps, demo.task, task)
        except Unmatched:
            continue
    return None


async def unattended(notice: str) -> None:
    """An `AskUser` for replays nobody watches: what would wait for the user fails instead."""
    raise BrowserError(f"nobody is there to answer: {notice}")
