"""The policy on an OpenAI-compatible model server (settings: backend = "openai").

Contract:
- The same prompt as the local policy (`prompt.messages`: system part, page, task, history),
  sent as chat messages; the page is fitted to `obs_tokens` by an estimate of four characters a
  token (the server's tokenizer is not at hand), and its text stripped of the common chat
  markers (`prompt.untrusted`).
- The answer is constrained to this page's action schema (`actions.json_schema`: element ids
  as enums) in the server's dialect (`server_format`; `auto` finds the first the server takes,
  see openai_api). An answer that still is not a valid action is asked for once more, with the
  reason; a second bad answer is an invalid step. A server that is down, slow or answers
  garbage is a failed decision (the episode goes on to the next step with the error), never a
  hang: every request has `server_timeout`. A server that refuses the request's shape ends the
  episode at that step (`EpisodeFailed`) with one sentence saying the fix.
- Each decision records what the local one does: the prompt (messages in a plain layout), the
  raw output, and the server's usage — tokens in and out, cached prompt tokens where it says,
  its prefill and decode times where it reports them (llama-server's `timings`; otherwise the
  request's whole time counts as decode). No sampled tokens: a server does not say what it drew.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

from daemon.core.actions import Action, violation
from daemon.core.errors import InvalidMessage
from daemon.core.settings import Settings

from . import prompt
from .episode import EpisodeFailed
from .openai_api import Answer, OpenAIServer, ServerError, ShapeRefused
from .policy import Decision, StepContext, Usage

MAX_NEW_TOKENS = 400
CHARS_PER_TOKEN = 4
# Chat markers of common templates (ChatML, Llama 3, Gemma): a page must not open a turn.
MARKERS = ("<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
           "<|end_header_id|>", "<|eot_id|>", "<start_of_turn>", "<end_of_turn>",
           "<|endoftext|>")


class ServerPolicy:
    adapter = None

    def __init__(self, settings: Settings, server: OpenAIServer | None = None):
        self.settings = settings
        self.server = server or OpenAIServer(settings.server_url, settings.server_model,
                                             settings.server_timeout, settings.server_format)
        # no request yet: a server that is down fails the first step, not the daemon's start
        self.name = f"server:{settings.server_model or settings.server_url}"

    async def decide(self, context: StepContext) -> Decision:
        return await asyncio.to_thread(self.decide_now, context)

    def decide_now(self, context: StepContext) -> Decision:
        t0 = time.perf_counter()
        messages = self.messages(context)
        schema = context.schema(self.settings.fill_text)
        seed = self.settings.seed if self.settings.seed >= 0 else random.randrange(2**31)
        prompt_ms = (time.perf_counter() - t0) * 1000
        text = prompt.plain(messages)
        answers: list[Answer] = []
        problem = "no answer"
        for _ in range(2):
            try:
                answer = self.server.constrained(messages, schema, max_tokens=MAX_NEW_TOKENS,
                                                 temperature=self.settings.temperature,
                                                 seed=seed)
            except ShapeRefused as exc:     # every later step would be refused alike
                raise EpisodeFailed(str(exc)) from None
            except ServerError as exc:
                return Decision(None, str(exc), prompt=text,
                                raw_output=answers[-1].text if answers else None,
                                usage=_usage(answers, prompt_ms, seed))
            answers.append(answer)
            action, problem = _parse(answer.text, schema)
            if action:
                return Decision(action, prompt=text, raw_output=answer.text,
                                usage=_usage(answers, prompt_ms, seed))
            messages = [*messages, {"role": "assistant", "content": answer.text},
                        {"role": "user", "content": f"That is not a valid action: {problem}. "
                                                    "Reply with one valid action as JSON."}]
        return Decision(None, f"the server's output is not a valid action, twice: {problem}",
                        prompt=text, raw_output=answers[-1].text,
                        usage=_usage(answers, prompt_ms, seed))

    def messages(self, context: StepContext) -> list[dict[str, str]]:
        task = f"{context.task}\n{context.plan}" if context.plan else context.task
        observation = prompt.untrusted(prompt.fit_observation(
            context.observation, self.settings.obs_tokens,
            lambda s: len(s) // CHARS_PER_TOKEN + 1), MARKERS)
        return prompt.messages(task, observation, context, self.settings.history)

    def render(self, context: StepContext) -> str:
        return prompt.plain(self.messages(context))


def _parse(text: str, schema: dict) -> tuple[Action | None, str]:
    """The answer as an action this page allows, or None and why not."""
    try:
        action = Action.parse(json.loads(text))
    except ValueError as exc:
        return None, f"it is not JSON ({exc})"
    except InvalidMessage as exc:
        return None, str(exc)
    why = violation(action, schema)
    return (None, why) if why else (action, "")


def _usage(answers: list[Answer], prompt_ms: float, seed: int) -> Usage:
    """What the answers cost, summed, as the server reported it."""
    def total(key: str) -> int:
        return sum(int(a.usage.get(key) or 0) for a in answers)
    cached = sum(int((a.usage.get("prompt_tokens_details") or {}).get("cached_tokens")
                     or a.timings.get("cache_n") or 0) for a in answers)
    prefill = sum(float(a.timings.get("prompt_ms") or 0) for a in answers)
    decode = sum(float(a.timings["predicted_ms"]) if "predicted_ms" in a.timings
                 else a.seconds * 1000 for a in answers)
    return Usage(total("prompt_tokens"), cached, total("completion_tokens"),
                 round(prompt_ms, 2), round(prefill, 2), round(decode, 2), seed)

