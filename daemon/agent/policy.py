"""The policy interface, and the scripted policy that follows written instructions.

A policy reads a `StepContext` (task, current observation, the actions so far with their results)
and returns a `Decision`: one action, plus what it read and wrote when it is a model. The episode
loop never asks how the decision was made.

`ScriptedPolicy` needs no model. It reads the task as a list of instructions separated by ``;``,
new lines or ``then``, and carries out the one whose turn it is, finding elements by their label
in the observation::

    fill "Name" with "Ada"; select "Blue" in "Colour"; check "Subscribe"; click "Send"

Instructions: ``click|check|uncheck "LABEL"``, ``fill "LABEL" with "TEXT"``,
``type "TEXT" into "LABEL"``, ``select "OPTION" in|from "LABEL"``, ``press KEY [on "LABEL"]``,
``hover "LABEL"``, ``scroll up|down``, ``scroll to "LABEL"``, ``goto URL``, ``go back``,
``wait SECONDS``, ``answer TEXT``, ``done``. After the last instruction it answers ``done``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import urlsplit

from daemon.core.actions import Action, Blocked, json_schema, urls_in
from daemon.core.observation import Element, Observation
from daemon.core.spans import spans
from daemon.core.store import Step

from .descriptors import normalized

ROUND = 4       # the longest round of steps back to the same page the loop breaker sees
NAMED_CHARS = (3, 40)   # how long an element's name is for the task to name it (`unused`)


def _identity(page: Observation, element_id: int | None) -> tuple[str, int] | None:
    """An element's role and its rank among the page's elements of that role: what stays when
    a control is re-rendered with another label (and another id)."""
    element = page.element(element_id) if element_id is not None else None
    if element is None:
        return None
    same = [e.id for e in page.elements if e.role == element.role]
    return element.role, same.index(element.id)


@dataclass
class PastStep:
    action: Action | None
    ok: bool
    error: str | None = None
    page: Observation | None = field(default=None, repr=False, compare=False)
    """The page it acted on (None: not known): what the loop breaker compares."""

    @cached_property
    def seen(self) -> str | None:
        """`Observation.state_key` of the page it acted on."""
        return self.page.state_key() if self.page else None

    @cached_property
    def seen_apart(self) -> str | None:
        """That key without the acted-on element's own name."""
        return self.page.state_key(apart=self._element_id) if self.page else None

    @cached_property
    def label(self) -> str | None:
        """The acted-on element's label there (`Observation.labels`)."""
        if self.page is None or self._element_id is None:
            return None
        return self.page.labels().get(self._element_id)

    @cached_property
    def identity(self) -> tuple[str, int] | None:
        """The acted-on element's role and rank among the page's elements of that role."""
        return _identity(self.page, self._element_id) if self.page else None

    @property
    def used(self) -> bool:
        """Did the step use its element as a task would: type into a field, choose in a
        select, click anything else (a click into a field, or pointing at it, is not use)?"""
        if self.page is None or self._element_id is None:
            return False
        element = self.page.element(self._element_id)
        if element is None:
            return False
        if element.editable:
            return self.action.name == "fill"
        if element.options is not None:
            return self.action.name == "select_option"
        return self.action.name == "click"

    @property
    def _element_id(self) -> int | None:
        return self.action.element_id if self.action is not None else None

    @classmethod
    def stored(cls, step: Step) -> PastStep:
        """A stored step as the policy's history holds it (its action read as stored, not
        validated again)."""
        page = Observation.from_json(step.observation) if step.observation else None
        return cls(Action.stored(step.action) if step.action else None, step.ok, step.error, page)

    @property
    def doing(self) -> str | None:
        """What the step did, as a repeat is recognised: the action with its element named by
        label where known (a page that reloads may give the element another id), else by id."""
        if self.action is None:
            return None
        target = {"id": self.action.element_id} if self.label is None else {"label": self.label}
        return json.dumps([self.action.name, self.action.args | {"id": None} | target],
                          sort_keys=True)

    def repeats(self, other: PastStep) -> bool:
        """The same action on the same element: known by its label, or where the label changed
        (a toggle that renames itself) by its id or, re-rendered, by its role and rank."""
        if self.action is None or other.action is None:
            return False
        if self.doing == other.doing:
            return True
        mine, theirs = self.action, other.action
        same_args = {**mine.args, "id": None} == {**theirs.args, "id": None}
        return mine.name == theirs.name and same_args and (
            mine.element_id == theirs.element_id or
            (self.identity is not None and self.identity == other.identity))


@dataclass
class StepContext:
    task: str
    observation: Observation
    history: list[PastStep] = field(default_factory=list)
    plan: str | None = None             # a replay's recorded plan, when the policy stands in

    @property
    def last_error(self) -> str | None:
        return self.history[-1].error if self.history else None

    def changed(self, i: int) -> bool | None:
        """Did history step `i` change what the page shows? (None: not known.)"""
        after = self.history[i + 1].seen if i + 1 < len(self.history) else \
            self.observation.state_key()
        before = self.history[i].seen
        return None if before is None or after is None else before != after

    def changes(self, i: int) -> list[str] | None:
        """What history step `i` changed on the page, in words (`Observation.changes_since`):
        empty when it changed nothing visible, None when not known."""
        after = self.history[i + 1].page if i + 1 < len(self.history) else self.observation
        before = self.history[i].page
        if before is None or after is None:
            return None
        if not self.changed(i):
            return []
        return after.changes_since(before) or ["the page changed"]

    @property
    def unused(self) -> list[Element]:
        """The elements the task names (an element's whole name, `NAMED_CHARS` long, found as
        whole words in the task) that no step so far used (`PastStep.used`, by label), in the
        order the task names them: what the task still asks to use. A heading or an image is
        never among them."""
        task = normalized(self.task)
        used = {normalized(s.label) for s in self.history if s.used}
        labels = self.observation.labels()
        named = []
        for e in self.observation.elements:
            name = normalized(e.name)
            if e.context or e.disabled or not NAMED_CHARS[0] <= len(name) <= NAMED_CHARS[1] \
                    or normalized(labels[e.id]) in used:
                continue
            found = re.search(rf"\b{re.escape(name)}\b", task)
            if found:
                named.append((found.start(), e))
        return [e for _, e in sorted(named, key=lambda n: n[0])]

    @property
    def destinations(self) -> tuple[str, ...]:
        """Where `goto` may lead without asking: the URLs the task names and the front page of
        the site the agent is on, less the page it is on (going there again changes nothing);
        never a URL only the page wrote (a page cannot send the agent elsewhere)."""
        parts = urlsplit(self.observation.url)
        front = (f"{parts.scheme}://{parts.netloc}/",) if parts.scheme in ("http", "https") \
            else ()
        return tuple(u for u in dict.fromkeys(urls_in(self.task) + front)
                     if u != self.observation.url)

    def schema(self, fill_text: str = "free", also: Blocked = frozenset()) -> dict:
        """This step's action schema (`actions.json_schema`): this page's elements, less the
        blocked actions (and `also`, which the prompt does not mention), `goto` to the
        destinations, and with `fill_text` "task" a fill's text held to the task's spans
        (spans.py)."""
        return json_schema(self.observation, self.blocked | also, self.destinations,
                           spans(self.task) if fill_text == "task" else None)

    @property
    def blocked(self) -> Blocked:
        """The actions not offered now (the grammar leaves them out): see `blocked_why`."""
        return frozenset(self.blocked_why)

    @property
    def blocked_why(self) -> dict[tuple[str, int | None], str]:
        """The loop breaker: each action not offered now, with why (the prompt says it).

        - an action done twice in a row on this very page state, changing nothing but, at
          most, its own element's name (a toggle that renames itself), is not offered a third
          time;
        - an action that began a round of 2 to `ROUND` steps through other page states back to
          this very one (links round a site, a toggle between two labels) is not offered again.

        The element is found again by its label (a link that reloads a reshuffled page is
        caught too), else by its id, else by its role and rank (re-rendered, renamed)."""
        why: dict[tuple[str, int | None], str] = {}
        if self._no_change_twice():
            key = self._here(self.history[-1])
            if key is not None:
                why[key] = "done twice, the page did not change"
        now = self.observation.state_key()
        for length in range(2, ROUND + 1):
            if len(self.history) < length:
                break
            start, *between = self.history[-length:]
            if start.seen != now or any(s.seen in (None, now) for s in between):
                continue
            if start.action is None or set(start.action.args) - {"id"}:
                continue
            key = self._here(start)
            if key is not None:
                why.setdefault(key, f"done {length} steps ago on this same page: it led back here")
        return why

    def _no_change_twice(self) -> bool:
        if len(self.history) < 2:
            return False
        before, last = self.history[-2], self.history[-1]
        if last.action is None or not last.repeats(before):
            return False
        here = self._here(last)
        now = self.observation.state_key(apart=here[1] if here else None)
        return before.seen_apart is not None and before.seen_apart == last.seen_apart == now

    def _here(self, step: PastStep) -> tuple[str, int | None] | None:
        """`step`'s action as it would be taken on this page: its element found by label,
        else by id (None when the element is not here)."""
        assert step.action is not None
        element_id = step.action.element_id
        if element_id is None:
            return step.action.name, None
        if step.label is not None:
            found = next((i for i, label in self.observation.labels().items()
                          if label == step.label), None)
            if found is not None:
                return step.action.name, found
        if self.observation.element(element_id) is not None:
            return step.action.name, element_id
        role, rank = step.identity or ("", -1)
        same = [e.id for e in self.observation.elements if e.role == role]
        return (step.action.name, same[rank]) if 0 <= rank < len(same) else None


@dataclass
class Usage:
    """What a model-backed decision cost; stored with its step."""

    prompt_tokens: int
    cached_tokens: int                  # prompt tokens reused from the previous step's cache
    completion_tokens: int
    prompt_ms: float                    # building and tokenizing the prompt
    prefill_ms: float                   # evaluating the uncached prompt, to the first token
    decode_ms: float                    # the remaining tokens
    seed: int | None = None             # the sampling seed, to replay the step


@dataclass
class Sampled:
    """What a sampling policy drew for one decision, token by token (stored with its step):
    each token's log-probability under the distribution it was drawn from, and the choices it
    had (`choices[i]`: the ids allowed there, sorted; when they are many, ``{"not": ids}``,
    those forbidden, or only how many were allowed; one allowed id means the token was
    forced)."""
    temperature: float                  # of the log-probs (1.0 when the draw was greedy)
    tokens: list[int] = field(default_factory=list)     # the end-of-generation token included
    logprobs: list[float] = field(default_factory=list)
    choices: list[list[int] | dict[str, list[int]] | int] = field(default_factory=list)
    # log(behaviour / policy) of the whole action, where exploration mixed into the draw (the
    # policy alone: 0); GRPO's importance weight divides by it
    mixture: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Sampled:
        return cls(**data)


@dataclass
class Decision:
    action: Action | None               # None: the policy produced no valid action
    error: str | None = None            # why there is no action
    prompt: str | None = None
    raw_output: str | None = None
    usage: Usage | None = None
    mode: str | None = None             # store.Step.mode: how the action was chosen
    sampled: Sampled | None = None      # what a sampling policy drew, token by token


class Policy(Protocol):
    name: str                           # recorded with each episode, e.g. "llm:SmolLM2-135M"
    adapter: str | None                 # the LoRA adapter in use, if any

    async def decide(self, context: StepContext) -> Decision: ...


_QUOTED = r"""["'“](.+?)["'”]"""
_PATTERNS: list[tuple[re.Pattern[str], str]] = [(re.compile(p, re.I), kind) for p, kind in [
    (rf"^(?:click|check|uncheck|tick|untick)\s+(?:on\s+)?{_QUOTED}$", "click"),
    (rf"^fill\s+(?:in\s+)?{_QUOTED}\s+with\s+{_QUOTED}$", "fill"),
    (rf"^(?:type|enter)\s+{_QUOTED}\s+(?:into|in)\s+{_QUOTED}$", "type"),
    (rf"^(?:select|choose)\s+{_QUOTED}\s+(?:in|from)\s+{_QUOTED}$", "select"),
    (rf"^press\s+(\w+)(?:\s+(?:on|in)\s+{_QUOTED})?$", "press"),
    (rf"^hover\s+(?:over\s+)?{_QUOTED}$", "hover"),
    (r"^scroll\s+(up|down)$", "scroll"),
    (rf"^scroll\s+to\s+{_QUOTED}$", "scroll_to"),
    (r"^(?:goto|go to|open)\s+(\S+)$", "goto"),
    (r"^go\s+back$", "go_back"),
    (r"^wait\s+(\d+(?:\.\d+)?)(?:\s*s(?:econds?)?)?$", "wait"),
    (r"^answer\s+(.+)$", "answer"),
    (r"^done$", "done"),
]]


def split_instructions(task: str) -> list[str]:
    parts = re.split(r";|\n|\bthen\b", task)
    return [p.strip().rstrip(".") for p in parts if p.strip().rstrip(".")]


class ScriptedPolicy:
    """Follows the instructions written in the task, one per step (see the module docstring)."""

    name = "scripted"
    adapter = None

    async def decide(self, context: StepContext) -> Decision:
        instructions = split_instructions(context.task)
        turn = len(context.history)
        if turn >= len(instructions):
            return Decision(Action("done"))
        instruction = instructions[turn]
        try:
            action = self._action_for(instruction, context.observation)
        except LookupError as exc:
            action = Action("give_up", {"reason": str(exc)})
        return Decision(action, raw_output=instruction)

    def _action_for(self, instruction: str, obs: Observation) -> Action:
        for pattern, kind in _PATTERNS:
            match = pattern.match(instruction)
            if match:
                return _build(kind, match.groups(), obs)
        raise LookupError(f"cannot read the instruction {instruction!r}")


def _build(kind: str, groups: tuple[str | None, ...], obs: Observation) -> Action:
    if kind == "click":
        return Action("click", {"id": find_element(obs, groups[0]).id})
    if kind == "hover":
        return Action("hover", {"id": find_element(obs, groups[0]).id})
    if kind == "fill":
        return Action("fill", {"id": find_element(obs, groups[0], editable=True).id,
                               "text": groups[1]})
    if kind == "type":
        return Action("fill", {"id": find_element(obs, groups[1], editable=True).id,
                               "text": groups[0]})
    if kind == "select":
        return Action("select_option", {"id": find_element(obs, groups[1], select=True).id,
                                        "option": groups[0]})
    if kind == "press":
        args: dict[str, Any] = {"key": groups[0]}
        if groups[1]:
            args["id"] = find_element(obs, groups[1]).id
        return Action("press", args)
    if kind == "scroll":
        return Action("scroll", {"direction": groups[0].lower()})
    if kind == "scroll_to":
        return Action("scroll", {"id": find_element(obs, groups[0]).id})
    if kind == "goto":
        return Action("goto", {"url": groups[0]})
    if kind == "go_back":
        return Action("go_back")
    if kind == "wait":
        return Action("wait", {"seconds": float(groups[0])})
    if kind == "answer":
        return Action("answer", {"text": groups[0]})
    if kind == "done":
        return Action("done")
    raise ValueError(f"unknown instruction kind {kind!r}")


def find_element(obs: Observation, label: str, *, editable: bool = False,
                 select: bool = False) -> Element:
    """The element whose name best matches `label`: exact, then prefix, then substring; never
    a context element (a heading, an image: not an action's target)."""
    want = normalized(label)
    candidates = [e for e in obs.elements if not e.context
                  and (not editable or e.editable) and (not select or e.options is not None)]
    for matches in (lambda n: n == want, lambda n: n.startswith(want), lambda n: want in n):
        found = [e for e in candidates if matches(normalized(e.name))]
        if found:
            return found[0]
    raise LookupError(f"no {'editable ' if editable else ''}element labelled {label!r} on the page")
