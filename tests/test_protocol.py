"""The I/O-free protocol: pairing, validation and encoding, driven directly."""

from __future__ import annotations

import json

import pytest

from daemon.core import protocol as p
from daemon.core.errors import InvalidMessage, Refused

TOKEN = "s3cret-token"
EXT = "chrome-extension://amomhdhdickamghompkbjaljdcpkpfof"


def session(origin: str | None = None) -> p.Session:
    return p.Session(TOKEN, EXT, origin)


def hello(**overrides) -> str:
    return json.dumps({"type": "hello", "protocol": p.PROTOCOL_VERSION, "token": TOKEN,
                       "client": "cli", **overrides})


def test_a_cli_pairs_with_the_token_and_no_origin():
    s = session()
    assert isinstance(s.receive(hello()), p.Hello)
    assert s.state is p.State.OPEN and s.client == "cli"


def test_the_extension_pairs_only_from_its_own_origin():
    s = session(EXT)
    s.receive(hello(client="extension"))
    assert s.client == "extension"
    with pytest.raises(Refused, match="may not connect from origin"):
        session("http://localhost:3000").receive(hello(client="extension"))
    with pytest.raises(Refused, match="may not connect from origin"):
        session(EXT).receive(hello(client="cli"))      # a page cannot pose as the CLI either


@pytest.mark.parametrize("frame, reason", [
    (hello(token="wrong"), "pairing token rejected"),
    (hello(protocol=2), "protocol version 2 is not supported"),
    (hello(client="robot"), "must be one of 'extension' | 'cli'"),
    ('{"type": "status"}', "expected hello, got 'status'"),
    ("not json", "expected hello: malformed JSON"),
])
def test_pairing_failures_refuse_the_connection(frame, reason):
    with pytest.raises(Refused, match=reason):
        session().receive(frame)


def open_session(client="cli") -> p.Session:
    s = session(EXT if client == "extension" else None)
    s.receive(hello(client=client))
    return s


@pytest.mark.parametrize("frame, reason", [
    ("{", "malformed JSON"),
    (b'{"type": "ping"}', "binary frames"),
    ('"ping"', "must be a JSON object"),
    ('{"type": "nope"}', "unknown message type 'nope'"),
    ('{"type": "task"}', "task is missing the field 'task'"),
    ('{"type": "task", "task": 5}', "task.task must be str, got int"),
    ('{"type": "task", "task": "x", "source": "spaceship"}', "task.source must be one of"),
    ('{"type": "feedback", "episode_id": true, "value": 1}', "must be an integer"),
    ('{"type": "task", "task": ""}', "task.task is empty"),
    ('{"type": "task", "task": "%s"}' % ("x" * (p.MAX_TASK_CHARS + 1)), "longer than"),
    ('{"type": "observation", "request_id": "1"}', "a cli client may not send 'observation'"),
    ('{"type": "record_step", "episode_id": 1, "action": {}}', "may not send 'record_step'"),
    ('{"type": "replay", "episode_id": 1, "fallback": "maybe"}', "replay.fallback must be one of"),
    ('{"type": "practice"}', "either a site or an episode_id"),
    ('{"type": "practice", "site": "a.test", "episode_id": 1}', "either a site or an episode_id"),
    ('{"type": "adapter", "change": "promote"}', "promote names the adapter_id to promote"),
    ('{"type": "adapter", "change": "undo"}', "adapter.change must be one of"),
    ('{"type": "act", "request_id": "1", "action": {}, "allow_submit": "no"}', "must be bool"),
])
def test_bad_frames_after_pairing_are_errors_not_refusals(frame, reason):
    s = open_session()
    with pytest.raises(InvalidMessage, match=reason) as info:
        s.receive(frame)
    assert not isinstance(info.value, Refused)
    assert s.state is p.State.OPEN


def test_any_json_is_read_or_refused_with_a_reason():
    assert p.decode('{"type": "task", "task": "a\\ud800b"}').task == "a\ufffdb"  # half a pair
    assert p.decode('{"type": "task", "task": "\\ud83d\\ude00"}').task == "\U0001f600"
    for frame, reason in [('{"type": 7}', "unknown message type 7"),
                          ("{" * 100_000, "malformed JSON|unreadable JSON"),
                          ('{"type": "ping", "n": %s}' % ("1" * 5000), "unreadable JSON"),
                          ('{"type": "feedback", "episode_id": 1, "value": NaN}', "one of"),
                          ('{"type": "feedback", "episode_id": -%s, "value": 1}' % ("9" * 20),
                           "out of range")]:
        with pytest.raises(InvalidMessage, match=reason):
            p.decode(frame)
    assert p.request_id_of("[" * 100_000) is None


def test_the_extension_may_not_relay_requests():
    with pytest.raises(InvalidMessage, match="may not send 'observe'"):
        open_session("extension").receive('{"type": "observe", "request_id": "1"}')


def test_every_message_type_round_trips():
    samples = [
        p.Hello(1, "t", "cli", agent="x"), p.Welcome(1, "nightloop/0", {"id": 1}),
        p.Task("do it", "cli", "http://a/", 3, "r"), p.Stop(2, "r"), p.Feedback(1, -1, "r"),
        p.Status("r", "127.0.0.1:1", "/db", True, None, {"done": 1}), p.Observe("r", 4),
        p.Act("r", {"action": "click", "id": 1}, 4, False), p.Observation("r", 4, {"url": "u"}),
        p.ActionResult("r", False, 4, "gone", {"url": "u"}), p.EpisodeUpdate({"id": 1}, "r"),
        p.Probe("r", "miniwob.state", 4, {"seed": 1}), p.ProbeResult("r", True, 4, {"done": 1}),
        p.Probe("r", "network.guard", args={"sites": ["shop.test"]}),
        p.StepUpdate(1, {"index": 0}), p.Ping(), p.Pong(), p.Error("bad", "r"),
        p.RecordStart("book a trip", "http://a/", 4, "r"),
        p.RecordStep(1, {"action": "click", "id": 2}, {"url": "u"}, {"path": "form > button"}),
        p.RecordStop(1, True, "r"), p.Replay(1, "none", "http://a/", 4, "r"), p.Resume(1, "r"),
        p.Reload("r"), p.Practice("shop.test", None, True, None, "r"), p.Practice(episode_id=3),
        p.AdapterChange("promote", 3, request_id="r"), p.AdapterChange("rollback", None, 2, 4),
        p.EpisodeUpdate({"id": 1}, notice="type your password"),
        p.Task("pay", approve=True), p.Task("buy a mug", replay="auto"),
        p.Replay(3, task="reply to Bob"), p.Fits("reply to Bob"),
        p.Fits("x", "r", 3, "reply to Ada"),
        p.ApprovalAsk("a1", 1, 2, {"action": "click", "id": 3}, "http://a/", "commit",
                      'clicks [3] button "Pay"', 60.0, '[3] button "Pay"'),
        p.Approval("a1", "approve_episode"),
        p.LastNight("r"), p.LastNight("r", {"outcome": "learned", "changes": []},
                                      "2026-12-08T03:00", True),
        p.SecretNames("r"), p.SecretNames("r", ["SHOP_PW"]),
        p.Task("log in with {{PW}}", allow_secret=True), p.Error("no", "r", "secret_in_task"),
    ]
    assert {type(m) for m in samples} == set(p.MESSAGES.values())
    for message in samples:
        assert p.decode(p.encode(message)) == message


def test_unknown_fields_are_ignored_for_forward_compatibility():
    assert p.decode('{"type": "ping", "sent_at": 5}') == p.Ping()


def test_request_id_of_a_broken_frame_is_echoed_when_readable():
    assert p.request_id_of('{"type": "x", "request_id": "r9"}') == "r9"
    assert p.request_id_of("{broken") is None
