"""A small client for OpenAI-compatible model servers: llama.cpp's llama-server,
llama-cpp-python's server, Ollama, vLLM.

Contract:
- Every request has a deadline (`timeout`) and fails as a `ServerError` whose message a user can
  act on: the server is down, too slow, refused the request (its own words quoted), or answered
  with something that is not the API's shape. Nothing here hangs or retries on its own.
- The API key comes from the environment (``NIGHTLOOP_API_KEY``, else ``OPENAI_API_KEY``); it is
  sent only in the Authorization header and never stored, logged or put in an error.
- Blocking (urllib, no extra dependency): call it from a worker thread.
- `constraint` turns an action's JSON schema into the request fields a server dialect takes;
  `OpenAIServer.constrained` asks in the configured dialect or, with ``auto``, finds the first
  the server takes (once, then keeps it). A server that refuses the shape of the request (HTTP
  400, 422 or 500 for each dialect tried) raises `ShapeRefused`, whose message says the fix:
  no later request would fare better, so the caller stops rather than fail every step alike.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from daemon.core.errors import NightloopError

from .grammar import to_gbnf

DIALECTS = ("json_schema", "json_object", "grammar")     # the order `auto` tries them in
SHAPE_REFUSALS = (400, 422, 500)        # the HTTP statuses servers refuse a request's shape with


class ServerError(NightloopError):
    """The model server could not be used for this request (`status`: the HTTP status it
    refused it with, else None: down, slow or garbled)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ShapeRefused(ServerError):
    """The server refuses the shape of a constrained request in every dialect tried."""


def api_key() -> str | None:
    return os.environ.get("NIGHTLOOP_API_KEY") or os.environ.get("OPENAI_API_KEY") or None


def constraint(dialect: str, schema: dict) -> dict:
    """The request fields that hold a chat answer to `schema`: ``json_schema`` (OpenAI's
    response_format: vLLM, llama-server, Ollama), ``json_object`` (llama-cpp-python's server)
    or ``grammar`` (the schema as GBNF: the llama.cpp servers)."""
    if dialect == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": "action", "schema": schema, "strict": True}}}
    if dialect == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if dialect == "grammar":
        return {"grammar": to_gbnf(json.dumps(schema))}
    raise ValueError(f"unknown server format {dialect!r}")


@dataclass
class Answer:
    """One chat completion: its text, the server's usage as it reported it, the seconds it
    took and the server's own timings where it reports them (llama-server)."""
    text: str
    usage: dict = field(default_factory=dict)
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)


class OpenAIServer:
    def __init__(self, base_url: str, model: str = "", timeout: float = 60.0,
                 dialect: str = "auto"):
        if not base_url.startswith(("http://", "https://")):
            raise ServerError(f"the server URL must be an http(s) URL like "
                              f"http://127.0.0.1:8080/v1, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._model = model
        self.timeout = timeout
        self.dialect = None if dialect == "auto" else dialect     # None: not found yet

    @property
    def model(self) -> str:
        """The model to ask for: the configured one, else the first the server lists."""
        if not self._model:
            listed = self.request("GET", "/models").get("data")
            if not isinstance(listed, list) or not listed or "id" not in listed[0]:
                raise ServerError(f"{self.base_url}/models lists no model; set server_model")
            self._model = str(listed[0]["id"])
        return self._model

    def chat(self, messages: list[dict], *, max_tokens: int, temperature: float,
             seed: int | None = None, extra: dict | None = None) -> Answer:
        t0 = time.perf_counter()
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                "temperature": temperature, **({"seed": seed} if seed is not None else {}),
                **(extra or {})}
        reply = self.request("POST", "/chat/completions", body)
        try:
            text = reply["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not text")
        except (KeyError, IndexError, TypeError) as exc:
            raise ServerError(f"{self.base_url}/chat/completions answered without a message "
                              f"({exc}): {json.dumps(reply)[:200]}") from None
        return Answer(text, reply.get("usage") or {}, time.perf_counter() - t0,
                      reply.get("timings") or {})

    def constrained(self, messages: list[dict], schema: dict, **chat) -> Answer:
        """A chat answer held to the JSON `schema` in the server's dialect: the configured one,
        or (auto) the first of DIALECTS the server takes, kept from then on. ShapeRefused when
        it refuses the dialect (each of them, for auto); other ServerErrors pass through."""
        refused: list[tuple[str, ServerError]] = []
        for dialect in (self.dialect,) if self.dialect else DIALECTS:
            try:
                answer = self.chat(messages, extra=constraint(dialect, schema), **chat)
            except ServerError as exc:
                if exc.status not in SHAPE_REFUSALS:
                    raise
                refused.append((dialect, exc))
                continue
            self.dialect = dialect
            return answer
        last = refused[-1][1]
        if self.dialect:
            raise ShapeRefused(f"{last}. The server does not take server_format = "
                               f"{self.dialect!r}: set server_format = \"auto\" to find a "
                               "format it takes (llama-cpp-python's server: json_object)")
        raise ShapeRefused(f"the model server refused a constrained answer in every format "
                           f"nightloop sends ({', '.join(d for d, _ in refused)}); the last "
                           f"said: {last}. Is {self.base_url} an OpenAI-compatible chat server "
                           "(llama-server, llama-cpp-python's server, vLLM, Ollama)?")

    def echoed_logprobs(self, text: str) -> tuple[list[str], list[int], list[float | None]]:
        """The tokens of `text`, their character offsets and each one's log-probability given
        the text before it, as the server echoes them (legacy completions with echo)."""
        reply = self.request("POST", "/completions", {
            "model": self.model, "prompt": text, "echo": True, "logprobs": 1, "max_tokens": 1,
            "temperature": 0})
        try:
            probs = reply["choices"][0]["logprobs"]
            tokens, offsets = probs["tokens"], probs["text_offset"]
            logprobs = probs["token_logprobs"]
        except (KeyError, IndexError, TypeError):
            raise ServerError(f"{self.base_url}/completions echoed no log-probabilities: "
                              f"{json.dumps(reply)[:200]}") from None
        return tokens, offsets, logprobs

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        url = self.base_url + path
        headers = {"Content-Type": "application/json"}
        if key := api_key():
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            said = exc.read()[:300].decode("utf-8", errors="replace")
            raise ServerError(f"{url} refused the request: HTTP {exc.code} {said}",
                              exc.code) from None
        except TimeoutError:                    # socket.timeout is TimeoutError
            raise ServerError(f"{url} did not answer within {self.timeout:g} s") from None
        except OSError as exc:                  # URLError, refused, reset: all OSError
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise ServerError(f"{url} did not answer within {self.timeout:g} s") from None
            raise ServerError(f"cannot reach the model server at {url}: {reason}") from None
        try:
            reply = json.loads(raw)
        except ValueError:
            raise ServerError(f"{url} answered with something that is not JSON: "
                              f"{raw[:120]!r}") from None
        if not isinstance(reply, dict):
            raise ServerError(f"{url} answered with JSON that is not an object")
        if "error" in reply and "choices" not in reply:
            raise ServerError(f"{url} answered with an error: {json.dumps(reply['error'])[:300]}")
        return reply
