"""The judge's language model on an OpenAI-compatible server (settings: judge_backend = "openai").

It reads the model the ways FLIP needs, where the server allows:
- `generate_json`: chat completions constrained to the schema (the server's dialect, as the
  policy sends it) — every server nightloop knows does this.
- `continuation_logprobs`: the log-probability of given text, from a legacy completion that
  echoes the prompt with its log-probabilities (vLLM does; llama-cpp-python's server 0.3.36
  does too, shifted by one token; llama-server does not echo the prompt). Before trusting
  it, `cannot_score` asks for a canary whose last token is certain ("1, 2, … 7, 8"): a server
  that cannot score, or scores the canary's last token as unlikely (misaligned), is named with
  the reason, and the judge falls back to FLIP's generate form.
- No next-token distribution (the direct yes/no scorer of `judge eval`): servers return only a
  few top log-probabilities.
Prompts are laid out plainly (`prompt.plain`): a raw completion gets no chat template.
"""

from __future__ import annotations

import threading

import numpy as np

from daemon.agent import prompt
from daemon.agent.openai_api import OpenAIServer, ServerError
from daemon.core.settings import Settings

MAX_NEW_TOKENS = 160
CANARY = "1, 2, 3, 4, 5, 6, 7, 8"
CANARY_FLOOR = -3.0         # nats: a working scorer gives the certain last token far more


class ServerJudgeModel:
    def __init__(self, settings: Settings, server: OpenAIServer | None = None):
        self.settings = settings
        self.server = server or OpenAIServer(
            settings.server_url, settings.judge_server_model or settings.server_model,
            settings.server_timeout, settings.server_format)
        self.name = f"server:{self.server.model}"
        self.lock = threading.Lock()

    @property
    def version(self) -> str:
        """What a reward row records: the model as the server names it, and where it ran."""
        return f"{self.server.model}@{self.server.base_url}"

    def format(self, messages: list[dict[str, str]]) -> str:
        return prompt.plain(messages) + "\n\n### Answer\n"

    def cannot_score(self) -> str | None:
        """Why this server cannot give the log-probability of given text; None when it can."""
        try:
            last = self.continuation_logprobs(CANARY[:-2], CANARY[-2:])     # " 8"
        except ServerError as exc:
            return f"it does not echo log-probabilities ({exc})"
        if len(last) == 0 or last[-1] < CANARY_FLOOR:
            return (f"its echoed log-probabilities are misaligned (the certain last token of "
                    f"{CANARY!r} scored {f'{last[-1]:.1f}' if len(last) else 'nothing'}; "
                    f"llama-cpp-python's server shifts them by one token)")
        return None

    def continuation_logprobs(self, context: str, continuation: str) -> np.ndarray:
        """log p of each token of `continuation` after `context`, as the server echoes them."""
        tokens, offsets, logprobs = self.server.echoed_logprobs(context + continuation)
        picked = [lp for offset, lp in zip(offsets, logprobs) if offset >= len(context)]
        if not picked or any(lp is None for lp in picked):
            raise ServerError("the server echoed no log-probability for the continuation")
        return np.array(picked, dtype=np.float64)

    def generate_json(self, messages: list[dict[str, str]], schema: dict, *,
                      temperature: float, seed: int) -> str:
        return self.server.constrained(messages, schema, max_tokens=MAX_NEW_TOKENS,
                                       temperature=temperature, seed=seed).text
