"""The judge's language model: one GGUF through llama-cpp-python, read three ways — the
log-probability of a given text, the distribution of the next token, and grammar-constrained
generation.

Contract:
- Every prompt of one episode starts with the same system text and rendering, so the KV cache
  keeps that prefix between the scorers (and the system text between episodes): `_feed` only
  evaluates what differs from the tokens already in the context.
- No `logits_all`: the logits of the last evaluated token are read after each evaluation, so
  memory does not grow with the vocabulary (Gemma's is 262k) times the context.
- One call at a time (a lock); the scorers run in worker threads, never on an event loop.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from pathlib import Path

import llama_cpp
import numpy as np
from llama_cpp import Llama, LlamaGrammar

from daemon.agent.llama_policy import cached_prefix, prompt_formatter
from daemon.core.models import (
    ModelInfo,
    check_adapter,
    check_model,
    gemma3_model,
    shipped_model,
)

MAX_NEW_TOKENS = 160    # > the longest JSON the generation grammar allows
CANDIDATES = {"smollm2": shipped_model, "gemma3": gemma3_model}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(model: str | Path | None) -> Path:
    """A judge model by candidate name (smollm2, gemma3) or GGUF path; empty: smollm2."""
    if not model:
        return shipped_model()
    if str(model) in CANDIDATES:
        return CANDIDATES[str(model)]()
    return Path(model).expanduser()


class JudgeModel:
    """`adapter`: a GGUF LoRA adapter for the model (trainer/judge_adapter.py), or None."""

    def __init__(self, model: str | Path | None = None, *, adapter: str | Path | None = None,
                 n_ctx: int = 2560, threads: int = 2):
        self.info: ModelInfo = check_model(resolve_model(model))
        self.adapter = check_adapter(adapter).path if adapter else None
        self.name = self.info.path.stem + (f"+{self.adapter.parent.name}" if self.adapter
                                           else "")
        self.llm = Llama(model_path=str(self.info.path), n_ctx=n_ctx, n_threads=threads,
                         n_threads_batch=threads, verbose=False, use_mmap=False,
                         lora_path=str(self.adapter) if self.adapter else None)  # as the
        # policy's: in memory, so a file changed under a running daemon cannot kill it
        self.format = prompt_formatter(self.llm, answer="Answer")
        self._n_vocab = self.llm.n_vocab()
        self._grammars: dict[str, LlamaGrammar] = {}
        self.lock = threading.Lock()

    @functools.cached_property
    def version(self) -> str:
        """The model file's name and the start of its sha256 (and the adapter's): what a
        reward row records."""
        files = [self.info.path] + ([self.adapter] if self.adapter else [])
        return "+".join(f"{path.name}:{_sha256(path)[:16]}" for path in files)

    def tokens(self, text: str, *, special: bool = True) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=special)

    def _feed(self, tokens: list[int]) -> np.ndarray:
        """Make the context hold exactly `tokens`, re-using the prefix already evaluated, and
        return the log-probabilities of the token that would come next."""
        if len(tokens) > self.llm.n_ctx():
            raise ValueError(f"judge prompt of {len(tokens)} tokens exceeds the "
                             f"{self.llm.n_ctx()}-token context; shorten the rendering")
        llm = self.llm
        llm.n_tokens = cached_prefix(llm, tokens)
        llm.eval(tokens[llm.n_tokens:])
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1),
                                       shape=(self._n_vocab,)).astype(np.float64)
        top = logits.max()
        return logits - (top + np.log(np.exp(logits - top).sum()))

    def continuation_logprobs(self, context: str, continuation: str) -> np.ndarray:
        """log p(each token of `continuation` | `context` and the tokens before it)."""
        head = self.tokens(context)
        tail = self.tokens(continuation, special=False)
        out = np.empty(len(tail))
        for i, token in enumerate(tail):
            out[i] = self._feed(head + tail[:i])[token]
        return out

    def next_token_logprobs(self, context: str) -> np.ndarray:
        return self._feed(self.tokens(context))

    def first_token_ids(self, words: list[str]) -> list[int]:
        """The distinct first tokens of `words` (e.g. "yes", " Yes")."""
        return sorted({self.tokens(w, special=False)[0] for w in words})

    def generate_json(self, messages: list[dict[str, str]], schema: dict, *, temperature: float,
                      seed: int) -> str:
        """One answer to `messages` constrained to `schema`'s JSON."""
        context = self.format(messages)
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        llm = self.llm
        llm.set_seed(seed)
        out: list[int] = []
        for token in llm.generate(self.tokens(context), temp=temperature,
                                  grammar=self._grammars[key]):
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token) or \
                    len(out) >= MAX_NEW_TOKENS:   # noqa: SLF001
                break
            out.append(token)
        return llm.detokenize(out).decode("utf-8", errors="replace")
