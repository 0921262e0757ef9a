"""The policy over an OpenAI-compatible server: against the real llama-cpp-python server on the
shipped model, and against small stand-ins that are down, slow, or answer garbage (none of
which may hang a step)."""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import free_port
from test_judge_parts import clean

from daemon.agent.episode import EpisodeFailed
from daemon.agent.openai_api import OpenAIServer, ServerError, constraint
from daemon.agent.policy import StepContext
from daemon.agent.server_policy import ServerPolicy
from daemon.core.actions import Action, json_schema, violation
from daemon.core.observation import Element, Observation
from daemon.core.settings import DEFAULTS
from judge.judge import judge_from_settings
from judge.server_model import ServerJudgeModel

PAGE = Observation("http://127.0.0.1/form", "Contact", [
    Element(1, "h1", "heading", "Contact us", context=True),
    Element(4, "input", "textbox", "Name", editable=True, value=""),
    Element(7, "button", "button", "Send")])
CONTEXT = StepContext("Type Ada into the Name field", PAGE)


def settings(url: str, **kw):
    return dataclasses.replace(DEFAULTS, **{"backend": "openai", "server_url": url,
                                            "server_timeout": 2.0, "seed": 3, **kw})


@contextmanager
def stand_in(answers: list) -> Iterator[tuple[str, list[dict]]]:
    """A server that answers each POST with the next of `answers` (a dict as a chat answer's
    content, bytes as the raw body, a number as seconds to wait first, (status, bytes) as an
    HTTP error); the requests it got."""
    got: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            answer = answers[min(len(got), len(answers)) - 1]
            if isinstance(answer, (int, float)):
                time.sleep(answer)
                answer = {"action": "done"}
            status, answer = answer if isinstance(answer, tuple) else (200, answer)
            body = answer if isinstance(answer, bytes) else json.dumps(answer).encode() \
                if "choices" in answer else json.dumps({
                "choices": [{"message": {"role": "assistant", "content": json.dumps(answer)}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 9}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                self.wfile.write(body)
            except BrokenPipeError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", got
    finally:
        server.shutdown()


def decide(url: str, **kw):
    return ServerPolicy(settings(url, server_model="m", **kw)).decide_now(CONTEXT)


def test_the_request_carries_the_prompt_and_the_pages_schema_in_the_servers_dialect():
    with stand_in([{"action": "fill", "id": 4, "text": "Ada"}]) as (url, got):
        decision = decide(url)
    assert decision.action == Action("fill", {"id": 4, "text": "Ada"})
    body = got[0]
    assert body["model"] == "m" and body["seed"] == 3
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "Task: Type Ada into the Name field" in body["messages"][1]["content"]
    schema = body["response_format"]["json_schema"]["schema"]
    fills = [v["properties"] for v in schema["oneOf"]
             if v["properties"]["action"]["const"] == "fill"]     # only the text box is fillable
    assert [(f["target"], f["id"]) for f in fills] == [({"const": "Name"}, {"const": 4})]
    assert decision.usage.prompt_tokens == 100 and decision.usage.completion_tokens == 9
    assert decision.prompt.startswith("### System\nYou are nightloop")
    assert constraint("json_object", {"oneOf": []}) == \
        {"response_format": {"type": "json_object", "schema": {"oneOf": []}}}


def test_an_answer_the_page_does_not_allow_is_asked_for_once_more_then_is_invalid():
    with stand_in([{"action": "fill", "id": 7, "text": "Ada"},
                   {"action": "click", "id": 7}]) as (url, got):
        decision = decide(url)
    assert decision.action == Action("click", {"id": 7}) and len(got) == 2
    assert "fill.id 7 is not one of 4" in got[1]["messages"][-1]["content"]
    assert decision.usage.completion_tokens == 18                     # both answers counted

    with stand_in([b'{"choices": [{"message": {"content": "click the button"}}]}']) as (url, got):
        decision = decide(url)
    assert decision.action is None and len(got) == 2
    assert decision.error.startswith("the server's output is not a valid action, twice: "
                                     "it is not JSON")
    assert decision.raw_output == "click the button"


@pytest.mark.parametrize("answer, error", [
    (b"<html>502 Bad Gateway</html>", "answered with something that is not JSON"),
    (b'{"object": "list"}', "answered without a message"),
    (b'{"error": {"message": "model not loaded"}}', 'answered with an error: {"message": '
                                                    '"model not loaded"}'),
])
def test_garbage_from_the_server_is_a_clear_error(answer, error):
    with stand_in([answer]) as (url, _):
        decision = decide(url)
    assert decision.action is None and error in decision.error


REFUSED = (500, b'{"error": {"message": "unsupported response_format"}}')


def test_auto_finds_the_format_the_server_takes_once_and_keeps_it():
    with stand_in([REFUSED, {"action": "click", "id": 7}, {"action": "done"}]) as (url, got):
        policy = ServerPolicy(settings(url, server_model="m"))
        first, second = policy.decide_now(CONTEXT), policy.decide_now(CONTEXT)
    assert first.action == Action("click", {"id": 7}) and second.action == Action("done")
    assert [b["response_format"]["type"] for b in got] == \
        ["json_schema", "json_object", "json_object"]          # found once, then kept


@pytest.mark.parametrize("server_format, said", [
    ("json_schema", 'The server does not take server_format = \'json_schema\': set '
                    'server_format = "auto" to find a format it takes'),
    ("auto", "refused a constrained answer in every format nightloop sends (json_schema, "
             "json_object, grammar)"),
])
def test_a_server_that_refuses_the_requests_shape_ends_the_episode_saying_the_fix(
        server_format, said):
    with stand_in([REFUSED]) as (url, got):
        with pytest.raises(EpisodeFailed, match=re.escape(said)) as failed:
            decide(url, server_format=server_format)
    assert "HTTP 500" in str(failed.value) and len(got) == (3 if server_format == "auto" else 1)

    with stand_in([(404, b"no such route")]) as (url, got):     # not the shape: this step only
        decision = decide(url)
    assert decision.action is None and "HTTP 404" in decision.error and len(got) == 1


def test_a_server_url_that_is_not_one_is_refused_at_once():
    with pytest.raises(ServerError, match="must be an http\\(s\\) URL like "
                                          "http://127.0.0.1:8080/v1, not 'localhost:8080'"):
        ServerPolicy(settings("localhost:8080"))


def test_a_server_that_is_down_or_too_slow_fails_the_step_in_time():
    t0 = time.monotonic()
    decision = decide(f"http://127.0.0.1:{free_port()}/v1")
    assert decision.action is None
    assert decision.error.startswith("cannot reach the model server at http://127.0.0.1:")
    with stand_in([5]) as (url, _):
        decision = decide(url)
    assert decision.error.endswith("/chat/completions did not answer within 2 s")
    assert time.monotonic() - t0 < 10


def test_the_schema_check_names_what_is_wrong():
    schema = json_schema(PAGE)
    assert violation(Action("click", {"id": 7}), schema) is None
    assert violation(Action("fill", {"id": 1, "text": "x"}), schema) == \
        "fill.id 1 is not one of 4"
    assert violation(Action("select_option", {"id": 4, "option": "x"}), schema) == \
        "select_option is not possible on this page now"


@pytest.mark.parametrize("dialect", ["auto", "json_object", "grammar"])
def test_the_real_server_answers_valid_actions_in_both_its_dialects(model_server, dialect):
    """`auto`, the default, as a new user meets it: `python -m llama_cpp.server` refuses
    json_schema with an HTTP 500, so it settles on json_object at the first step."""
    policy = ServerPolicy(settings(model_server, server_format=dialect, server_timeout=60.0))
    decision = policy.decide_now(CONTEXT)
    assert decision.action is not None, decision.error
    assert policy.server.dialect == ("json_object" if dialect == "auto" else dialect)
    assert violation(decision.action, json_schema(PAGE)) is None
    assert decision.usage.prompt_tokens > 300 and decision.usage.completion_tokens > 0
    assert OpenAIServer(model_server).model.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def echo(tokens: list[str], logprobs: list[float | None]) -> dict:
    """A legacy completion echoing `tokens` with their log-probabilities."""
    offsets = [sum(map(len, tokens[:i])) for i in range(len(tokens))]
    return {"choices": [{"text": "".join(tokens), "logprobs": {
        "tokens": tokens, "text_offset": offsets, "token_logprobs": logprobs}}]}


def test_the_judge_scores_given_text_on_a_server_that_echoes_it_right():
    canary = echo(["1", ",", " 2", ",", " 3", ",", " 4", ",", " 5", ",", " 6", ",", " 7", ",",
                   " 8"], [None] + [-0.1] * 14)
    scored = echo(["Context", ":", " Hello", " world"], [None, -1.0, -2.5, -0.5])
    with stand_in([canary, scored]) as (url, got):
        model = ServerJudgeModel(settings(url, server_model="m"))
        assert model.cannot_score() is None
        assert list(model.continuation_logprobs("Context:", " Hello world")) == [-2.5, -0.5]
    assert got[1] == {"model": "m", "prompt": "Context: Hello world", "echo": True,
                      "logprobs": 1, "max_tokens": 1, "temperature": 0}


def test_the_judge_over_the_real_server_says_why_it_cannot_score_and_uses_generate(
        model_server):
    judge = judge_from_settings(settings(model_server, judge_backend="openai",
                                         server_format="grammar", server_timeout=60.0))
    # llama-cpp-python's server echoes log-probabilities one token off: the canary catches it
    assert judge.options.form == "generate"
    assert judge.fallback.startswith(
        "likelihood form unavailable: its echoed log-probabilities are misaligned (the certain "
        "last token of '1, 2, 3, 4, 5, 6, 7, 8' scored -")
    episode, steps = clean()
    reward = judge.score(episode, steps)
    flip_parts = reward.details["flip"]
    assert flip_parts["form"] == "generate" and flip_parts["fallback"] == judge.fallback
    assert flip_parts["model"].startswith("server:") and flip_parts["inferred"][0].strip()
    assert -1 <= reward.value <= 1
