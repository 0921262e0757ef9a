"""Grammar-constrained sampling that knows its own probabilities.

llama.cpp applies a grammar inside its sampler chain and never says what was allowed, so the
policy applies the grammar itself, as the chain's first stage (a logits processor), and keeps
what a learner needs from each drawn token: its log-probability under the distribution it was
really drawn from (the grammar's allowed tokens, renormalised, at the sampling temperature) and
which tokens the grammar allowed there. The rest of the chain (temperature, the random draw,
or greedy) is llama-cpp-python's own, so the choice is exactly what it would have been with
``generate(grammar=...)`` (tested).

Contract: `Sampled.choices[i]` (policy.py) is the sorted ids the grammar allowed at token i when
they are at most CHOICES_KEPT (the decisions: which action, which element, how to lay out the
JSON), else ``{"not": ids}``, the sorted ids it forbade, when those are at most FORBIDDEN_KEPT
(free text: all but quotes, escapes and control tokens, ~370 of SmolLM2's 49,152), else how
many it allowed.
"""

from __future__ import annotations

import ctypes

import llama_cpp
import numpy as np
from llama_cpp import Llama

from .policy import Sampled

CHOICES_KEPT = 256          # allowed ids kept per token; beyond, the forbidden ones
FORBIDDEN_KEPT = 2048       # forbidden ids kept per token; beyond, only the allowed count
_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
assert _TOKEN_DATA.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


class GrammarSampler:
    """A GBNF grammar as a logits processor for one generation; `accept` each drawn token.
    A `shadow` masks nothing: it records what the same tokens would have had under its
    grammar, for as long as its grammar allows each of them (`alive`)."""

    def __init__(self, llm: Llama, gbnf: str, temperature: float, shadow: bool = False):
        self.shadow, self.alive = shadow, True
        self._vocab = llm._model.vocab
        self._grammar = llama_cpp.llama_sampler_init_grammar(self._vocab, gbnf.encode(),
                                                             b"root")
        if not self._grammar:
            raise ValueError("llama.cpp could not parse the action grammar")
        self._data = np.zeros(llm.n_vocab(), dtype=_TOKEN_DATA)
        self._data["id"] = np.arange(llm.n_vocab())
        self._logprobs: np.ndarray | None = None       # of the allowed ids, at the last step
        self._allowed: np.ndarray | None = None
        self._forbidden: np.ndarray | None = None
        self.sampled = Sampled(temperature if temperature > 0 else 1.0)

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The logits with every token the grammar forbids here at -inf (a shadow's: as
        they came)."""
        if not self.alive:
            return scores
        data = self._data
        data["logit"] = scores
        candidates = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)),
            size=len(data), selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(candidates))
        masked = data["logit"].copy()
        finite = np.isfinite(masked)
        self._allowed, self._forbidden = np.flatnonzero(finite), np.flatnonzero(~finite)
        logits = masked[self._allowed].astype(np.float64) / self.sampled.temperature
        self._logprobs = logits - np.logaddexp.reduce(logits)
        return scores if self.shadow else masked

    def accept(self, token: int) -> None:
        """Advance the grammar past `token` and record it (a shadow whose grammar forbids it
        stops there: no longer `alive`)."""
        if not self.alive:
            return
        where = np.searchsorted(self._allowed, token)
        if where == len(self._allowed) or self._allowed[where] != token:
            if self.shadow:
                self.alive = False
                return
            raise ValueError(f"token {token} was drawn outside the grammar")
        llama_cpp.llama_sampler_accept(self._grammar, token)
        s = self.sampled
        s.tokens.append(int(token))
        s.logprobs.append(round(float(self._logprobs[where]), 5))
        n, forbidden = len(self._allowed), self._forbidden
        s.choices.append(self._allowed.tolist() if n <= CHOICES_KEPT else
                         {"not": forbidden.tolist()} if len(forbidden) <= FORBIDDEN_KEPT else n)

    def close(self) -> None:
        if self._grammar:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None

    def __enter__(self) -> GrammarSampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
