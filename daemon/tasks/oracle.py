"""A scripted teacher for a handful of MiniWoB++ tasks: it reads the utterance and the page and
does what a careful person would. It proves the harness, the rewards and the store right without
any model, and later provides demonstrations to warm the model up on train seeds.
"""

from __future__ import annotations

import re

from daemon.agent.policy import Decision, StepContext
from daemon.core.actions import Action
from daemon.core.observation import Element, Observation

from .miniwob import task_of


def _named(obs: Observation, name: str, roles: tuple[str, ...] = ()) -> Element:
    for element in obs.elements:
        if element.name.strip() == name and (not roles or element.role in roles):
            return element
    raise LookupError(f"no {'/'.join(roles) or 'element'} named {name!r} on the page")


def _quoted(utterance: str) -> str:
    match = re.search(r'"(.*?)"', utterance)
    if not match:
        raise LookupError(f"no quoted text in {utterance!r}")
    return match.group(1)


def _click_button(ctx: StepContext) -> list[Action]:
    return [Action("click", {"id": _named(ctx.observation, _quoted(ctx.task), ("button",)).id})]


def _click_link(ctx: StepContext) -> list[Action]:
    return [Action("click", {"id": _named(ctx.observation, _quoted(ctx.task),
                                          ("link", "clickable")).id})]


def _enter_text(ctx: StepContext) -> list[Action]:
    box = next(e for e in ctx.observation.elements if e.editable)
    return [Action("fill", {"id": box.id, "text": _quoted(ctx.task)}),
            Action("click", {"id": _named(ctx.observation, "Submit", ("button",)).id})]


def _focus_text(ctx: StepContext) -> list[Action]:
    return [Action("click", {"id": next(e for e in ctx.observation.elements if e.editable).id})]


def _click_checkboxes(ctx: StepContext) -> list[Action]:
    match = re.match(r"Select (.*) and click Submit\.?$", ctx.task)
    if not match:
        raise LookupError(f"cannot read {ctx.task!r}")
    wanted = set() if match.group(1) == "nothing" else \
        {w.strip() for w in match.group(1).split(",")}
    boxes = [e for e in ctx.observation.elements if e.role == "checkbox"]
    clicks = [Action("click", {"id": b.id}) for b in boxes
              if (b.name.strip() in wanted) != bool(b.checked)]
    return clicks + [Action("click", {"id": _named(ctx.observation, "Submit", ("button",)).id})]


def _click_dialog(ctx: StepContext) -> list[Action]:
    close = next(e for e in ctx.observation.elements
                 if e.role == "button" and e.name.strip().lower() in ("close", "x", "×"))
    return [Action("click", {"id": close.id})]


SOLVERS = {
    "click-button": _click_button,
    "click-link": _click_link,
    "enter-text": _enter_text,
    "focus-text": _focus_text,
    "click-checkboxes": _click_checkboxes,
    "click-dialog": _click_dialog,
}


class OraclePolicy:
    """Each step: plan from the utterance and the current page, drop what the episode already
    did, and take the next action; when nothing is left, done."""

    name = "oracle"
    adapter = None

    async def decide(self, context: StepContext) -> Decision:
        task = task_of(context.observation.url)
        solver = SOLVERS.get(task or "")
        if solver is None:
            return Decision(Action("give_up", {"reason": f"the oracle cannot solve {task!r}"}))
        done = [step.action for step in context.history if step.ok]
        try:
            plan = solver(context)
        except (LookupError, StopIteration) as exc:
            if done:    # the page moved on after what we did (a dialog closed, say): finished
                return Decision(Action("done"))
            reason = str(exc) or "the page is not as expected"
            return Decision(Action("give_up", {"reason": reason}))
        remaining = [action for action in plan if action not in done]
        return Decision(remaining[0] if remaining else Action("done"),
                        raw_output=f"{len(remaining)} actions left of {len(plan)}")
