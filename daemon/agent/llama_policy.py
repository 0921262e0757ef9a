"""The on-device policy: a GGUF model through llama-cpp-python, one grammar-constrained JSON
action per step.

Contract:
- The output grammar comes from `actions.json_schema(page, blocked, destinations)` (as GBNF:
  grammar.py): every completed output parses into a valid action naming an element of the
  page that the action can apply to, by its label and then its id, not an action repeated
  twice on a page it did not change, and no `goto` but to a URL the task names or the current
  site's front page. Strings are bounded in length, so the grammar always completes within
  MAX_NEW_TOKENS.
- Each decision carries what its sampler drew (`policy.Sampled`: the tokens, their
  log-probabilities under the grammar-masked distribution at the sampling temperature, and
  the choices the grammar left): the old policy's own numbers for GRPO.
- Exploration (`Settings.explore`, for practice): on that share of steps, drawn from the
  step's seed, the kind of action is drawn uniformly among those that name an element of the
  page and the grammar offers only that kind; the decision's mode is ``"explored"``. Every
  step then is a draw from a mixture, and its sampler record says so: its tokens' log-probs
  under the whole grammar (a shadow grammar scores them in the same pass, at no model cost)
  and `Sampled.mixture`, log(mixture / policy) of the action, from its probability given its
  kind (another shadow per kind), so GRPO can weigh it back to the policy.
- Distinct openings (`distinct_openings`, for practice, whose attempts at one task and start
  page run back to back): an attempt's first action leaves out, in the grammar only (the
  prompt is as ever), the first actions the group's earlier attempts drew, while an action on
  an element is left: drawn without replacement. The sampler renormalises over what the
  grammar allows, so the recorded log-probs are exact, as a conditional.
- The prompt is rendered with the chat template stored in the GGUF (a plain layout for base
  models without one), and llama.cpp's prefix cache carries over between steps. The page's
  part is untrusted: the model's control tokens are taken out of its text, and it is tokenized
  without special tokens (only the template's own markers are).
- Inference runs in a worker thread (one at a time), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import threading
import time
from pathlib import Path
from typing import Callable

import llama_cpp
from llama_cpp import Llama, LogitsProcessorList
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from daemon.core.actions import Action, only
from daemon.core.errors import InvalidMessage
from daemon.core.models import ModelInfo, check_adapter, check_model, shipped_model
from daemon.core.settings import Settings

from . import prompt
from .grammar import to_gbnf
from .policy import Decision, Sampled, StepContext, Usage
from .sampling import GrammarSampler

MAX_NEW_TOKENS = 400            # > the longest action the grammar allows (strings ≤ 300 chars)


class LlamaPolicy:
    def __init__(self, settings: Settings, distinct_openings: bool = False):
        """`settings.adapter`: the adapter GGUF to apply; empty or ``none``: none (which adapter
        a store serves is for the caller to resolve: trainer.starting)."""
        self.openings = Openings() if distinct_openings else None
        model = Path(settings.model).expanduser() if settings.model else shipped_model()
        self.info: ModelInfo = check_model(model)
        self.adapter = str(check_adapter(settings.adapter_file).path) \
            if settings.adapter_file else None
        self.name = f"llm:{self.info.path.stem}"
        self.settings = settings
        try:
            # Read into memory, not mapped: a model file truncated or replaced while the
            # daemon runs would otherwise kill it (SIGBUS) at the next step.
            self.llm = Llama(model_path=str(self.info.path), n_ctx=settings.n_ctx,
                             n_threads=settings.threads, n_threads_batch=settings.threads,
                             lora_path=self.adapter, verbose=False, use_mmap=False)
        except (ValueError, RuntimeError) as exc:
            raise InvalidMessage(f"llama.cpp could not load {self.info.path}: {exc}") from None
        self._format = prompt_formatter(self.llm)
        self._markers = control_markers(self.llm)
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    async def decide(self, context: StepContext) -> Decision:
        return await asyncio.to_thread(self.decide_now, context)

    def decide_now(self, context: StepContext) -> Decision:
        """One decision, synchronously (the thread-safe core of `decide`)."""
        with self._lock:
            t0 = time.perf_counter()
            text, tokens = self._prompt(context)
            seed = self.settings.seed if self.settings.seed >= 0 else random.randrange(2**31)
            schema = context.schema(self.settings.fill_text)
            if self.openings:
                schema = self.openings.schema(context, schema, self.settings.fill_text)
            share, kinds = self.settings.explore, element_kinds(schema)
            kind = explored(schema, share, random.Random(seed))
            shadows = ([schema] if kind else [only(schema, k) for k in kinds]) \
                if share > 0 and kinds else []
            prompt_ms = (time.perf_counter() - t0) * 1000
            output, usage, sampled, shadowed = self._generate(
                tokens, to_gbnf(json.dumps(only(schema, kind) if kind else schema)), seed,
                [to_gbnf(json.dumps(s)) for s in shadows])
            if shadows:
                sampled = mixed(sampled, shadowed, kind, share, len(kinds))
        usage.prompt_ms = round(prompt_ms, 2)
        drawn = {"mode": "explored" if kind else None, "sampled": sampled}
        try:
            action = Action.parse(json.loads(output))
        except (ValueError, InvalidMessage) as exc:
            return Decision(None, f"the model's output is not a valid action: {exc}",
                            prompt=text, raw_output=output, usage=usage, **drawn)
        if self.openings:
            self.openings.drew(context, action)
        return Decision(action, prompt=text, raw_output=output, usage=usage, **drawn)

    def render(self, context: StepContext) -> str:
        """The prompt this policy would read in `context` (teacher samples for training)."""
        return self._prompt(context)[0]

    def _prompt(self, context: StepContext) -> tuple[str, list[int]]:
        shown = self.settings.history
        task = f"{context.task}\n{context.plan}" if context.plan else context.task
        frame = self._format(prompt.messages(task, "", context, shown))
        room = self.settings.n_ctx - MAX_NEW_TOKENS - self.count_tokens(frame)
        budget = min(self.settings.obs_tokens, room)
        if budget < 50:
            raise InvalidMessage(f"the task and history leave no room for the page in a "
                                 f"{self.settings.n_ctx}-token context; raise n_ctx")
        observation = prompt.untrusted(
            prompt.fit_observation(context.observation, budget, self.count_tokens),
            self._markers)
        text = self._format(prompt.messages(task, observation, context, shown))
        before, after = text.split(observation, 1)      # the frame's markers are special
        tokenize = self.llm.tokenize
        return text, (tokenize(before.encode(), add_bos=False, special=True)
                      + tokenize(observation.encode(), add_bos=False, special=False)
                      + tokenize(after.encode(), add_bos=False, special=True))

    def _generate(self, tokens: list[int], gbnf: str, seed: int, shadows: list[str] = ()
                  ) -> tuple[str, Usage, Sampled, list[Sampled | None]]:
        """Draw under `gbnf`; what each of the `shadows` grammars would have had for the same
        tokens (None for one that forbade one of them)."""
        llm = self.llm
        cached = cached_prefix(llm, tokens)
        llm.set_seed(seed)
        out: list[int] = []
        t0 = time.perf_counter()
        t_first = None
        settings = self.settings
        with contextlib.ExitStack() as stack:
            grammar = stack.enter_context(GrammarSampler(llm, gbnf, settings.temperature))
            scorers = [stack.enter_context(GrammarSampler(llm, g, settings.temperature,
                                                          shadow=True)) for g in shadows]
            for token in llm.generate(tokens, temp=settings.temperature, top_k=settings.top_k,
                                      top_p=settings.top_p, min_p=settings.min_p,
                                      logits_processor=LogitsProcessorList([*scorers,
                                                                            grammar])):
                if t_first is None:
                    t_first = time.perf_counter()
                for scorer in scorers:
                    scorer.accept(token)
                grammar.accept(token)
                if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token) or \
                        len(out) >= MAX_NEW_TOKENS:   # noqa: SLF001
                    break
                out.append(token)
        t_end = time.perf_counter()
        t_first = t_first or t_end
        text = llm.detokenize(out).decode("utf-8", errors="replace")
        return text, Usage(prompt_tokens=len(tokens), cached_tokens=cached,
                           completion_tokens=len(out), prompt_ms=0.0,
                           prefill_ms=round((t_first - t0) * 1000, 2),
                           decode_ms=round((t_end - t_first) * 1000, 2),
                           seed=seed), grammar.sampled, \
            [s.sampled if s.alive else None for s in scorers]


class Openings:
    """The first actions a practice group's attempts drew so far (a group: one task on one
    start page, its attempts back to back); the next attempt's first step leaves them out
    while an action on an element is left."""

    def __init__(self) -> None:
        self.group: tuple[str, str] | None = None
        self.drawn: set[tuple[str, int | None]] = set()

    def schema(self, context: StepContext, schema: dict, fill_text: str) -> dict:
        """`schema` (the step's own) without the group's earlier openings, on a first step."""
        if context.history:
            return schema
        group = (context.task, context.observation.state_key())
        if group != self.group:
            self.group, self.drawn = group, set()
        fewer = context.schema(fill_text, frozenset(self.drawn)) if self.drawn else schema
        return fewer if element_kinds(fewer) else schema

    def drew(self, context: StepContext, action: Action) -> None:
        if not context.history:         # an action on no element: that action, whole
            self.drawn.add((action.name, action.element_id))


def mixed(drawn: Sampled, shadowed: list[Sampled | None], kind: str | None, share: float,
          kinds: int) -> Sampled | None:
    """The sampler record of a step drawn from the exploring mixture: with probability
    1 - `share` the policy, else a uniformly drawn one of `kinds` kinds of action and the
    policy within it. `kind` is the explored kind (None: the policy drew), `shadowed` the
    whole grammar's record of the same tokens (exploring) or each kind's (not exploring).
    The tokens' log-probs are the policy's; `mixture` = log(mixture / policy) of the action.
    None when no whole-grammar record of the tokens exists."""
    whole, given = (shadowed[0], drawn) if kind else \
        (drawn, next((s for s in shadowed if s), None))
    if whole is None:
        return None
    within = math.exp(sum(given.logprobs) - sum(whole.logprobs)) if given else 0.0
    whole.mixture = round(math.log((1 - share) + share / kinds * within), 5)
    return whole


def element_kinds(schema: dict) -> list[str]:
    """The kinds of action `schema` (`json_schema`'s) lets name an element of the page."""
    return sorted({v["properties"]["action"]["const"] for v in schema["oneOf"]
                   if "const" in v["properties"].get("target", {})})


def explored(schema: dict, share: float, rng: random.Random) -> str | None:
    """With probability `share`, a kind of action drawn uniformly among those `schema`
    (`json_schema`'s) lets name an element of the page; else (or when none does) None."""
    if share <= 0 or rng.random() >= share:
        return None
    kinds = element_kinds(schema)
    return rng.choice(kinds) if kinds else None


def control_markers(llm: Llama) -> tuple[str, ...]:
    """The text of every control or user-defined token of the model's vocabulary (chat-turn
    markers and the like: ``<|im_start|>``, ``<end_of_turn>``)."""
    vocab = llm._model.vocab                                                # noqa: SLF001
    special = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    return tuple(llm.detokenize([i], special=True).decode("utf-8", errors="replace")
                 for i in range(llama_cpp.llama_vocab_n_tokens(vocab))
                 if llama_cpp.llama_vocab_get_attr(vocab, i) & special)


def cached_prefix(llm: Llama, tokens: list[int]) -> int:
    """How many leading `tokens` llama.cpp's KV cache already holds and will reuse (at most
    len(tokens) - 1: the last token is always evaluated, for its logits)."""
    cached = 0
    for a, b in zip(llm.input_ids[:llm.n_tokens], tokens):
        if a != b:
            break
        cached += 1
    return min(cached, len(tokens) - 1)


def prompt_formatter(llm: Llama, answer: str = "Action") -> Callable[[list[dict[str, str]]], str]:
    """Messages → prompt text ending where the model answers: the model's own chat template
    when its GGUF has one, else a plain layout of sections ending in an `answer` heading (base
    models)."""
    meta = llm.metadata
    template = meta.get("tokenizer.chat_template")
    if not template:
        return lambda messages: prompt.plain(messages) + f"\n\n### {answer}\n"

    def token_text(key: str) -> str:
        token_id = meta.get(key)
        return llm.detokenize([int(token_id)], special=True).decode() \
            if token_id is not None else ""
    jinja = Jinja2ChatFormatter(template, eos_token=token_text("tokenizer.ggml.eos_token_id"),
                                bos_token=token_text("tokenizer.ggml.bos_token_id"))
    return lambda messages: jinja(messages=messages).prompt

