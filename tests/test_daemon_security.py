"""Bad input against the running daemon: refused, answered or closed, never crashed."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import run_async
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from daemon.bridge.pairing import extension_origin, load_or_create_token
from daemon.core.protocol import MAX_FRAME_BYTES, PROTOCOL_VERSION
from daemon.core.settings import config_dir


def hello(token: str, client: str = "cli", protocol: int = PROTOCOL_VERSION) -> str:
    return json.dumps({"type": "hello", "protocol": protocol, "token": token, "client": client})


async def paired(port: int, client: str = "cli", **kwargs):
    ws = await connect(f"ws://127.0.0.1:{port}/", max_size=None, **kwargs)
    await ws.send(hello(load_or_create_token(config_dir()), client))
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome" and welcome["protocol"] == PROTOCOL_VERSION
    return ws


async def closed_with(ws) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return info.value.rcvd.code, info.value.rcvd.reason


async def still_serves(port: int) -> None:
    ws = await paired(port)
    await ws.send(json.dumps({"type": "status", "request_id": "s"}))
    reply = json.loads(await ws.recv())
    assert reply["type"] == "status" and reply["request_id"] == "s"
    assert reply["address"] == f"127.0.0.1:{port}"
    await ws.close()


def test_wrong_origin_is_refused_at_the_handshake(daemon_proc):
    async def go():
        with pytest.raises(InvalidStatus) as info:
            await connect(f"ws://127.0.0.1:{daemon_proc.port}/", origin="http://evil.example")
        assert info.value.response.status_code == 403
        # Even with the right token, a web page's origin cannot pose as the CLI or extension.
        with pytest.raises(InvalidStatus):
            await connect(f"ws://127.0.0.1:{daemon_proc.port}/",
                          origin="chrome-extension://abcdefghijklmnopabcdefghijklmnop")
        await still_serves(daemon_proc.port)
    run_async(go())


def test_wrong_token_and_wrong_client_kind_are_refused(daemon_proc):
    async def go():
        ws = await connect(f"ws://127.0.0.1:{daemon_proc.port}/")
        await ws.send(hello("not-the-token"))
        code, reason = await closed_with(ws)
        assert code == 1008 and "token rejected" in reason

        # The right token, but claiming to be the extension without the extension's origin.
        ws = await connect(f"ws://127.0.0.1:{daemon_proc.port}/")
        await ws.send(hello(load_or_create_token(config_dir()), client="extension"))
        code, reason = await closed_with(ws)
        assert code == 1008 and "may not connect from origin None" in reason

        # A newer protocol version, and a first frame that is not hello.
        ws = await connect(f"ws://127.0.0.1:{daemon_proc.port}/")
        await ws.send(hello(load_or_create_token(config_dir()), protocol=99))
        code, reason = await closed_with(ws)
        assert code == 1008 and "protocol version 99" in reason
        ws = await connect(f"ws://127.0.0.1:{daemon_proc.port}/")
        await ws.send(json.dumps({"type": "status"}))
        assert (await closed_with(ws))[0] == 1008
        await still_serves(daemon_proc.port)
    run_async(go())


def test_the_extension_origin_with_the_token_is_accepted(daemon_proc):
    async def go():
        ws = await paired(daemon_proc.port, "extension", origin=extension_origin())
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        await ws.close()
    run_async(go())


def test_oversized_frame_closes_with_a_reason(daemon_proc):
    async def go():
        ws = await paired(daemon_proc.port)
        await ws.send(json.dumps({"type": "task", "task": "x" * (MAX_FRAME_BYTES + 10)}))
        code, reason = await closed_with(ws)
        assert code == 1009 and f"exceeds limit of {MAX_FRAME_BYTES} bytes" in reason
        await still_serves(daemon_proc.port)
    run_async(go())


def test_before_pairing_frames_are_small_and_few_connections_may_wait(daemon_proc):
    from daemon.bridge.endpoint import HELLO_FRAME_BYTES, MAX_UNPAIRED

    async def go():
        url = f"ws://127.0.0.1:{daemon_proc.port}/"
        ws = await connect(url)
        await ws.send(json.dumps({"type": "hello", "token": "x" * HELLO_FRAME_BYTES}))
        assert (await closed_with(ws))[0] == 1009          # no 4 MiB before pairing
        big = await paired(daemon_proc.port)                # after it, a large frame is fine
        await big.send(json.dumps({"type": "ping", "pad": "x" * (2 * HELLO_FRAME_BYTES)}))
        assert json.loads(await big.recv()) == {"type": "pong"}
        waiting = [await connect(url) for _ in range(MAX_UNPAIRED)]
        with pytest.raises(InvalidStatus) as info:
            await connect(url)
        assert info.value.response.status_code == 503
        await waiting[0].send(hello(load_or_create_token(config_dir())))    # one pairs...
        assert json.loads(await waiting[0].recv())["type"] == "welcome"
        late = await connect(url)                           # ... and makes room for another
        for ws in [*waiting, late, big]:
            await ws.close()
        await still_serves(daemon_proc.port)
    run_async(go())


def test_two_origin_headers_are_refused_not_an_internal_error(daemon_proc):
    async def go():
        with pytest.raises(InvalidStatus) as info:
            await connect(f"ws://127.0.0.1:{daemon_proc.port}/", additional_headers=[
                ("Origin", extension_origin()), ("Origin", "http://evil.example")])
        assert info.value.response.status_code == 403
        await still_serves(daemon_proc.port)
    run_async(go())


@pytest.mark.parametrize("frame, expected", [
    ('{"type": ["ping"]}', "unknown message type ['ping']"),
    ("[" * 50_000 + "]" * 50_000, "unreadable JSON"),
    ('{"type": "feedback", "episode_id": %s, "value": 1}' % ("9" * 5000), "unreadable JSON"),
    ('{"type": "feedback", "episode_id": %s, "value": 1}' % ("9" * 30), "out of range"),
    ('{"type": "task", "task": "half a pair \\ud800"}', "no browser is connected"),  # read
    ("{not json", "malformed JSON"),
    ('["a list"]', "must be a JSON object"),
    ('{"type": "launch_missiles"}', "unknown message type 'launch_missiles'"),
    ('{"type": "feedback", "value": 1, "request_id": "r7"}', "missing the field 'episode_id'"),
    ('{"type": "feedback", "episode_id": "one", "value": 1}', "feedback.episode_id must be int"),
    ('{"type": "feedback", "episode_id": 1, "value": 5}', "must be one of 1 | -1"),
    ('{"type": "task", "task": "  "}', "task.task is empty"),
    ('{"type": "task", "task": "go", "url": "javascript:alert(1)"}', "must be an http(s)"),
    ('{"type": "observation", "request_id": "x"}', "a cli client may not send 'observation'"),
    ('{"type": "act", "request_id": "a", "action": {"action": "fly"}}', "unknown action 'fly'"),
    ('{"type": "feedback", "episode_id": 12345, "value": 1}', "there is no episode 12345"),
    ('{"type": "stop"}', "no such episode is running"),
    ('{"type": "task", "task": "click \\"Go\\""}', "no browser is connected"),
])
def test_bad_messages_get_an_error_and_the_connection_is_kept(daemon_proc, frame, expected):
    async def go():
        ws = await paired(daemon_proc.port)
        await ws.send(frame)
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert reply["type"] == "error", reply
        assert expected in reply["message"]
        if '"request_id": "r7"' in frame:
            assert reply["request_id"] == "r7"
        # Same connection, next message: still served.
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        await ws.close()
    run_async(go())


def test_pairing_files_and_profiles_end_up_private_even_when_they_existed(tmp_path):
    import os

    from daemon.bridge.pairing import write_pairing_file
    from daemon.core.files import private_dir
    old = tmp_path / "pairing.json"
    old.write_text("{}")
    old.chmod(0o644)
    path = write_pairing_file(tmp_path, 1234, "secret")
    assert json.loads(path.read_text()) == {"port": 1234, "token": "secret"}
    assert os.stat(path).st_mode & 0o777 == 0o600
    profile = tmp_path / "profile"
    profile.mkdir(mode=0o755)
    private_dir(profile)                    # what a browser launch does with its profile
    assert os.stat(profile).st_mode & 0o777 == 0o700


def fuzzed_frames(count: int, seed: int = 0):
    """Malformed frames of every kind: broken JSON, wrong types, every message type with its
    fields scrambled, deep nesting, huge numbers, lone surrogates, stray bytes."""
    import random

    from daemon.core import protocol as p
    rng = random.Random(seed)
    values = [None, True, -1, 2 ** 70, 1.5, "x", "", "\ud800", [], {}, [[[]]], "9" * 50,
              {"type": "ping"}, float("nan")]
    kinds = list(p.MESSAGES)
    for _ in range(count):
        shape = rng.randrange(6)
        if shape == 0:                                  # a message with scrambled fields
            frame = {"type": rng.choice(kinds),
                     **{rng.choice(["request_id", "episode_id", "task", "action", "value",
                                    "token", "verdict", "url", "observation", "tab_id"]):
                        rng.choice(values) for _ in range(rng.randrange(4))}}
            text = json.dumps(frame, allow_nan=True)
        elif shape == 1:                                # a valid message, cut short
            text = json.dumps({"type": "task", "task": "go " * rng.randrange(9)})
            text = text[:rng.randrange(len(text))]
        elif shape == 2:                                # nesting
            depth = rng.choice([10, 1000, 30_000])
            text = '{"type": "ping", "x": ' + "[" * depth + "]" * depth + "}"
        elif shape == 3:                                # a wrong type for `type`
            text = json.dumps({"type": rng.choice(values[:-1])})
        elif shape == 4:                                # random characters
            text = "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(40)))
        else:                                           # escapes and numbers
            text = rng.choice(['{"type": "task", "task": "\\udc00\\ud800"}',
                               '{"type": "stop", "episode_id": 1e400}',
                               '{"type": "feedback", "episode_id": -0, "value": 1.0}',
                               '{"type": "ping"}{"type": "ping"}', '{"type": "ping",}'])
        yield text


@pytest.mark.timeout(300)
def test_ten_thousand_malformed_frames_leave_the_daemon_answering_and_the_store_whole(
        daemon_proc):
    import sqlite3
    with sqlite3.connect(daemon_proc.db) as conn:       # something stored before the storm
        conn.execute("INSERT INTO episodes (task, source, status, started_at) "
                     "VALUES ('keep me', 'cli', 'done', '2026-01-01')")

    async def go():
        ws = await paired(daemon_proc.port)
        errors = 0
        for i, frame in enumerate(fuzzed_frames(10_000)):
            await ws.send(frame)
            if i % 500 == 0:                            # still answering, in order
                await ws.send(json.dumps({"type": "status", "request_id": f"s{i}"}))
                while (reply := json.loads(await asyncio.wait_for(ws.recv(), 10))).get(
                        "request_id") != f"s{i}":
                    errors += reply["type"] == "error"
        await ws.close()
        await still_serves(daemon_proc.port)
        return errors
    assert run_async(go()) > 1000               # each bad frame got its error reply
    with sqlite3.connect(daemon_proc.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT task FROM episodes").fetchall() == [("keep me",)]
