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
  waits), the policy decides that one step, given the task and the recorded plan; after it, the
  same recorded step is tried again if its target has appeared (the policy got past an inserted
  step), else the replay moves on (the policy did the step itself);
- a step the page did not take as recorded (`select [27] has no option "Paris"`) is handed to
  the fallback policy the same way.

How a replay decides it worked: it never goes past a step that failed. Without a fallback, the
first step it cannot do as recorded (its target gone, or the page refusing the action) ends the
episode ``failed`` with where and why (`EpisodeFailed`); with one, a step the fallback took that
failed ends it so too. After each click or key press, and before it says ``done``, it reads what
the page answered: a form error the page did not show before (a field marked invalid by the page
or by the browser's own check, an error message: `Observation.refusals_since`) ends it
``failed`` with the page's words. ``done`` only when nothing says otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import Awaitable, Callable

from daemon.core.actions import Action
from daemon.core.observation import Observation
from daemon.core.store import Episode, Step, Store

from .descriptors import find, label
from .episode import BrowserError, EpisodeFailed
from .policy import Decision, Policy, StepContext
from .values import Unmatched, rebind

AskUser = Callable[[str], Awaitable[None]]

PATIENCE = 4            # waits of WAIT_S for a recorded target before the replay looks elsewhere
WAIT_S = 0.5
_ANSWERED = ("click", "press")  # actions after which the page's answer is read (a submit)


def plan_line(step: Step) -> str:
    """`click button "Send"`, `fill textbox "Name" with "Ada"`: a recorded step for people."""
    action = dict(step.action or {})
    name = action.pop("action", "?")
    parts = [name] + ([label(step.target)] if action.pop("id", None) is not None else [])
    parts += [f"{k} {v!r}" for k, v in action.items()]
    return " ".join(parts)


@dataclasses.dataclass
class _Issued:
    """The last action the replay issued, whose outcome the next decision reads first."""
    where: str                      # `step 3 of 5 (select_option combobox "City" option 'Lima')`
    action: Action | None           # None: the fallback policy produced no valid action
    page: Observation               # the page it acted on
    by_fallback: bool


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
        self._issued: _Issued | None = None
        self._first: Observation | None = None      # the page the replay began on
        self._settled = False               # the page had its moment to answer the last step

    async def decide(self, context: StepContext) -> Decision:
        self._first = self._first or context.observation
        issued, self._issued = self._issued, None
        if issued is not None:
            last = context.history[-1] if context.history else None
            if last is not None and not last.ok:
                if issued.by_fallback:
                    raise EpisodeFailed(f"{issued.where} failed, and so did the model's step "
                                        f"for it: {last.error}")
                if self.fallback is None:
                    raise EpisodeFailed(f"{issued.where} failed: {last.error}")
                return await self._fallback(context, issued.where,
                                            f"{issued.where}: {last.error}")
            if issued.action is not None and issued.action.name in _ANSWERED:
                _check_answer(context.observation, issued.page, issued.where)
        step = self.plan[self.cursor] if self.cursor < len(self.plan) else None
        action = Action.parse(step.action) if step else Action("done")
        if action.spec.ends_episode:        # the end: what did the page answer?
            if not self._settled:           # a page may answer a submit a moment later
                self._settled = True
                return Decision(Action("wait", {"seconds": WAIT_S}), mode="replayed")
            _check_answer(context.observation, self._first, "the last step")
            self.cursor = len(self.plan)
            return Decision(action, mode="replayed")
        assert step is not None
        where = f"step {self.cursor + 1} of {len(self.plan)} ({plan_line(step)})"
        if action.element_id is None:
            self.cursor += 1
            return self._issue(Decision(action, mode="replayed"), where, context)
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
            return self._issue(Decision(Action(action.name, {**action.args, "id": element.id}),
                                        mode="replayed"), where, context)
        if self._after_fallback:            # the fallback did this step itself: go on
            self._after_fallback = False
            self.cursor += 1
            return await self.decide(context)
        if self._waited < PATIENCE:
            self._waited += 1
            return Decision(Action("wait", {"seconds": WAIT_S}), mode="replayed")
        missing = f"{where}: no {label(step.target)} on {context.observation.url}"
        if self.fallback is None:
            raise EpisodeFailed(missing)
        self._after_fallback = True
        return await self._fallback(context, where, missing)

    def _issue(self, decision: Decision, where: str, context: StepContext) -> Decision:
        self._issued = _Issued(where, decision.action, context.observation,
                               by_fallback=decision.mode == "fallback")
        self._settled = False
        return decision

    async def _fallback(self, context: StepContext, where: str, why: str) -> Decision:
        """The fallback policy's one step for recorded step `where`, which cannot be done as
        recorded (`why`)."""
        assert self.fallback is not None
        self._waited = 0
        acted = [h for h in context.history if not (h.action and h.action.name == "wait")]
        decision = await self.fallback.decide(
            dataclasses.replace(context, history=acted, plan=self._plan(why)))
        decision = dataclasses.replace(decision, mode="fallback")
        if decision.action is not None and decision.action.spec.ends_episode:
            return decision
        return self._issue(decision, where, context)

    def _plan(self, where: str) -> str:
        lines = [f"{i}. {plan_line(s)}" for i, s in enumerate(self.plan, 1)]
        return ("You are repeating a recorded task. The recorded steps:\n" + "\n".join(lines)
                + f"\nThe page has changed at {where}. Take the one action that does that "
                  "step on this page.")


def _check_answer(page: Observation, before: Observation | None, after: str) -> None:
    """Ends the replay failed where `page` shows a refusal `before` did not."""
    refused = page.refusals_since(before)
    if refused:
        raise EpisodeFailed(f"the page refused the form after {after}: " + "; ".join(refused))


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
