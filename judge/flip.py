"""FLIP by likelihood: how probable does the judge model find the real instruction, given only
what the agent did? (../shared/reference.md §6, §6a.)

The score of an episode is the mean log-probability per token of the instruction, read after the
rendered episode in the judge model's own prompt format. It needs no generation: one forward pass
over the rendering and the instruction. Higher means the episode looks more like what was asked.
Scores of different task templates sit on different scales; calibrating them is the caller's
job (see issue 5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from llama_cpp import Llama

from daemon.llama_policy import prompt_formatter
from daemon.models import check_model, shipped_model

SYSTEM = ("You read what a web agent did in a browser and work out the one instruction it was "
          "given.")
ANSWER_PREFIX = "The instruction was: "


class LikelihoodJudge:
    def __init__(self, model: Path | str | None = None, *, n_ctx: int = 1024, threads: int = 2):
        info = check_model(model or shipped_model())
        self.name = f"flip_likelihood:{info.path.stem}"
        # logits for every position: the instruction's tokens are scored in one pass
        self.llm = Llama(model_path=str(info.path), n_ctx=n_ctx, n_threads=threads,
                         n_threads_batch=threads, logits_all=True, verbose=False)
        self._format = prompt_formatter(self.llm)     # the policy's, so formats never drift

    def _context(self, rendered: str) -> str:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": rendered}]
        return self._format(messages) + ANSWER_PREFIX

    def token_logprobs(self, context: str, continuation: str) -> np.ndarray:
        """log p(each token of `continuation` | `context` and the tokens before it)."""
        head = self.llm.tokenize(context.encode(), add_bos=False, special=True)
        tail = self.llm.tokenize(continuation.encode(), add_bos=False, special=False)
        room = self.llm.n_ctx() - len(tail)
        head = head[-room:]                 # keep the end of an over-long rendering
        self.llm.reset()
        self.llm.eval(head + tail)
        logits = self.llm.scores[len(head) - 1: len(head) + len(tail) - 1].astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        return logits[np.arange(len(tail)), tail] - log_norm

    def score(self, rendered: str, instruction: str) -> float:
        """Mean log-probability per token of `instruction` after the rendered episode."""
        return float(self.token_logprobs(self._context(rendered), instruction).mean())
