"""The extension ↔ daemon wire protocol, version 1: message types and per-connection state.

No I/O happens here: `Session.receive(text)` turns one incoming WebSocket text frame into a
validated message (or raises), `encode(message)` turns a message into a frame. The asyncio server
only pumps frames through it. `extension/protocol.js` mirrors these types as JSDoc typedefs.

Every frame is a JSON object with a ``type``. A connection starts with the client's ``hello``
(protocol version, pairing token, client kind); the daemon answers ``welcome`` or closes. Then:

=================  =========================  =============================================
type               direction                  meaning
=================  =========================  =============================================
hello / welcome    client → / ← daemon        pairing handshake
task               client → daemon            run a task; answered by ``episode``
stop               client → daemon            stop the running episode
feedback           client → daemon            thumbs up (+1) or down (-1) on an episode
status             both                       ask for / report the daemon's state
observe            daemon → ext, cli → daemon ask for the page observation of a tab
act                daemon → ext, cli → daemon perform one action in a tab
observation        ext → daemon → cli         reply to ``observe``
action_result      ext → daemon → cli         reply to ``act``
probe              daemon → ext               run a named probe (extension/probes.js) in a tab
probe_result       ext → daemon               reply to ``probe``
episode            daemon → clients           an episode started, changed status or ended
record_start       ext → daemon               the user starts recording a demonstration
record_step        ext → daemon               one recorded user action, with its observation
record_stop        ext → daemon               the user ends the recording: it worked or not
replay             client → daemon            re-run a finished episode's actions, no model
resume             client → daemon            the user did what a paused replay asked
reload             cli → daemon               switch to the promoted adapter; answered by status
adapter            cli → daemon, ← reply      promote an adapter or roll back, and switch
practice           client → daemon, ← reply  mark a site or an episode's task practice-safe
night              client → daemon, ← reply  what the last learning night did (the popup's panel)
secrets            client → daemon, ← reply  the names of the saved secrets (never the values)
step               daemon → clients           one step of the running episode was recorded
ping / pong        both                       keep-alive
error              daemon → client            the last message was not understood
=================  =========================  =============================================

Requests that expect a reply carry a ``request_id`` (a string chosen by the sender) that the
reply echoes; an ``error`` caused by a request echoes it too.

A field typed ``dict`` is a record another module owns, validated there, not here: an action
by `actions.Action.parse`, an observation by `observation.Observation.from_json`, an episode or
step as the store's row (`store.Episode` / `store.Step` as JSON), a probe's arguments and
result by the harness that named the probe, an action's `detail` (what the page reported:
the URL after it, whether it navigated, the target's descriptor) by the episode loop that
records it, the night report by `trainer.night.NightReport.to_json`, and a status's
`counts` (episodes per status) by `Store.counts`.
"""

from __future__ import annotations

import enum
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from .errors import InvalidMessage, Refused
from .wire import from_json, to_json

PROTOCOL_VERSION = 1

# Limits (the server enforces MAX_FRAME_BYTES at the WebSocket layer).
MAX_FRAME_BYTES = 4 * 1024 * 1024   # an observation is capped far below this
MAX_TASK_CHARS = 4000

ClientKind = Literal["extension", "cli"]
Source = Literal["toolbar", "cli", "eval", "practice", "demonstration", "replay"]


@dataclass
class Message:
    type: ClassVar[str]


@dataclass
class Hello(Message):
    type: ClassVar[str] = "hello"
    protocol: int
    token: str
    client: ClientKind
    agent: str | None = None            # e.g. "nightloop-extension/0.1.0"


@dataclass
class Welcome(Message):
    type: ClassVar[str] = "welcome"
    protocol: int
    daemon: str
    episode: dict | None = None         # the running episode, if any (as in EpisodeUpdate)


@dataclass
class Task(Message):
    type: ClassVar[str] = "task"
    task: str
    source: Source = "toolbar"
    url: str | None = None              # open this URL first (in a new tab when tab_id is None)
    tab_id: int | None = None           # the tab to work in; None: let the extension choose
    request_id: str | None = None
    approve: bool = False               # approve every sensitive action of this run (--yes)
    replay: Literal["auto", "never"] = "never"      # auto: replay a demonstration whose task
                                                    # this one fits, with its new values
    allow_secret: bool = False          # run it though it holds a secret in clear (masked)


@dataclass
class Stop(Message):
    type: ClassVar[str] = "stop"
    episode_id: int | None = None       # None: whatever episode is running
    request_id: str | None = None


@dataclass
class Feedback(Message):
    type: ClassVar[str] = "feedback"
    episode_id: int
    value: Literal[1, -1]
    request_id: str | None = None


@dataclass
class Status(Message):
    """As a request only ``request_id`` is sent; the daemon fills in the rest."""
    type: ClassVar[str] = "status"
    request_id: str | None = None
    address: str | None = None
    db: str | None = None
    browser_connected: bool | None = None
    episode: dict | None = None
    counts: dict | None = None
    policy: str | None = None
    adapter: str | None = None


@dataclass
class Observe(Message):
    type: ClassVar[str] = "observe"
    request_id: str
    tab_id: int | None = None


@dataclass
class Act(Message):
    type: ClassVar[str] = "act"
    request_id: str
    action: dict                        # validated with actions.Action.parse
    tab_id: int | None = None
    allow_submit: bool = True           # False: the page must not submit a form (practice)


@dataclass
class Observation(Message):
    type: ClassVar[str] = "observation"
    request_id: str
    tab_id: int | None = None
    observation: dict | None = None     # see daemon/core/observation.py
    error: str | None = None


@dataclass
class ActionResult(Message):
    type: ClassVar[str] = "action_result"
    request_id: str
    ok: bool
    tab_id: int | None = None
    error: str | None = None            # precise reason when ok is false
    detail: dict | None = None          # e.g. {"url": ...} after goto


@dataclass
class Probe(Message):
    """A harness asks the extension to run one of its fixed, named probes in a tab (e.g.
    "miniwob.start"), or with no tab the browser-wide "network.guard": the daemon never sends
    code, only a name and JSON arguments."""
    type: ClassVar[str] = "probe"
    request_id: str
    probe: str
    tab_id: int | None = None
    args: dict | None = None


@dataclass
class ProbeResult(Message):
    type: ClassVar[str] = "probe_result"
    request_id: str
    ok: bool
    tab_id: int | None = None
    result: dict | None = None
    error: str | None = None


@dataclass
class EpisodeUpdate(Message):
    type: ClassVar[str] = "episode"
    episode: dict                       # store.Episode as JSON
    request_id: str | None = None       # set on the reply to the `task` that created it
    notice: str | None = None           # what a paused episode waits for the user to do


@dataclass
class RecordStart(Message):
    """Answered by ``episode`` (source demonstration, running) for the tab to record."""
    type: ClassVar[str] = "record_start"
    task: str
    url: str | None = None              # the page the demonstration starts on
    tab_id: int | None = None
    request_id: str | None = None


@dataclass
class RecordStep(Message):
    type: ClassVar[str] = "record_step"
    episode_id: int
    action: dict                        # validated with actions.Action.parse
    observation: dict | None = None     # the page just before the action (None: browser UI)
    target: dict | None = None          # the content script's part of the descriptor
    screenshot: dict | None = None      # the tab just before the action (a tab.screenshot result)


@dataclass
class RecordStop(Message):
    type: ClassVar[str] = "record_stop"
    episode_id: int
    success: bool                       # the user's word: becomes a user reward of ±1
    request_id: str | None = None
    observation: dict | None = None     # the page when the user stopped: with success, the
                                        # demonstration ends on it with a `done` step


@dataclass
class Replay(Message):
    """Re-run episode ``episode_id`` by its recorded actions; answered by ``episode``. With
    ``task``, for that task instead: the recorded values take the new task's (agent/values.py);
    a task that does not fit is refused (fallback none) or left to the model."""
    type: ClassVar[str] = "replay"
    episode_id: int
    fallback: Literal["model", "none"] = "model"
    url: str | None = None              # start here instead of the recorded start URL
    tab_id: int | None = None
    request_id: str | None = None
    task: str | None = None             # a new task text: replay it with the new values


@dataclass
class Fits(Message):
    """Does ``task`` fit one of the user's good demonstrations, with other values? Asked with
    ``task``; answered with the same message, ``episode_id`` and ``demonstration`` (its task)
    set when one does (the newest)."""
    type: ClassVar[str] = "fits"
    task: str
    request_id: str | None = None
    episode_id: int | None = None
    demonstration: str | None = None


@dataclass
class ApprovalAsk(Message):
    """The daemon asks every client whether a sensitive action may run (agent/approvals.py);
    the first ``approval`` answering ``request_id`` decides; none within ``timeout`` seconds
    denies it."""
    type: ClassVar[str] = "approval_ask"
    request_id: str
    episode_id: int
    index: int                          # the step
    action: dict                        # as it would be recorded (secrets masked)
    page: str                           # the page's URL
    kind: Literal["navigation", "secret", "commit"]
    reason: str
    timeout: float
    element: str | None = None          # the target as the policy saw it


@dataclass
class Approval(Message):
    """A user's verdict on an ``approval_ask``."""
    type: ClassVar[str] = "approval"
    request_id: str
    verdict: Literal["approve", "approve_episode", "deny"]


@dataclass
class Reload(Message):
    """Serve the adapter the store says is promoted, from the next episode on."""
    type: ClassVar[str] = "reload"
    request_id: str | None = None


@dataclass
class AdapterChange(Message):
    """Promote adapter ``adapter_id``, or roll back to the serving adapter's parent: the daemon
    changes its store (the CLI writes there itself only when no daemon runs) and switches at
    once. Answered by ``adapter`` with ``serving`` (None: the base model) and ``retired``.
    A rollback that names ``adapter_id`` retires only that one: refused when another serves
    (the popup's Undo, so a stale panel never undoes a later night)."""
    type: ClassVar[str] = "adapter"
    change: Literal["promote", "rollback"]
    adapter_id: int | None = None       # promote: the adapter; rollback: the one to retire
    serving: int | None = None          # in the answer: the adapter serving now
    retired: int | None = None          # in the answer: the adapter rollback retired
    request_id: str | None = None


@dataclass
class Practice(Message):
    """Ask (allowed None) or set whether a site, or the task of episode ``episode_id`` on its
    start site, is safe to practise unattended; answered by ``practice`` with every field set."""
    type: ClassVar[str] = "practice"
    site: str | None = None             # host[:port]; or give episode_id
    episode_id: int | None = None
    allowed: bool | None = None
    task: str | None = None             # in the answer: the task the rule covers, if one
    request_id: str | None = None


@dataclass
class LastNight(Message):
    """Asked with ``request_id`` only; answered with ``report`` set to the last learning
    night's morning report (trainer/night.py `NightReport.to_json`; None: no night yet), when
    the next one may start, and whether the user asked to be notified after a night."""
    type: ClassVar[str] = "night"
    request_id: str | None = None
    report: dict | None = None
    next_run: str | None = None         # ISO local time, minutes; None: no nightly cycle
    notify: bool = False                # the notify_after_night setting


@dataclass
class SecretNames(Message):
    """Asked with ``request_id`` only; answered with the names of the saved secrets a task may
    name as ``{{NAME}}`` (never their values)."""
    type: ClassVar[str] = "secrets"
    request_id: str | None = None
    names: list[str] | None = None


@dataclass
class Resume(Message):
    type: ClassVar[str] = "resume"
    episode_id: int
    request_id: str | None = None


@dataclass
class StepUpdate(Message):
    type: ClassVar[str] = "step"
    episode_id: int
    step: dict                          # store.Step as JSON, without the observation


@dataclass
class Ping(Message):
    type: ClassVar[str] = "ping"


@dataclass
class Pong(Message):
    type: ClassVar[str] = "pong"


@dataclass
class Error(Message):
    type: ClassVar[str] = "error"
    message: str
    request_id: str | None = None
    code: str | None = None             # what a client may act on ("secret_in_task")


MESSAGES: dict[str, type[Message]] = {cls.type: cls for cls in [
    Hello, Welcome, Task, Stop, Feedback, Status, Observe, Act, Observation, ActionResult,
    Probe, ProbeResult, EpisodeUpdate, StepUpdate, Ping, Pong, Error, RecordStart, RecordStep,
    RecordStop, Replay, Resume, Reload, Practice, AdapterChange, ApprovalAsk, Approval, Fits,
    LastNight, SecretNames,
]}

# What each kind of client may send once paired.
ACCEPTS: dict[str, set[type[Message]]] = {
    "extension": {Task, Stop, Feedback, Status, Observation, ActionResult, ProbeResult, Ping,
                  RecordStart, RecordStep, RecordStop, Replay, Resume, Practice, Approval, Fits,
                  LastNight, AdapterChange, SecretNames},
    "cli": {Task, Stop, Feedback, Status, Observe, Act, Ping, Replay, Resume, Reload, Practice,
            AdapterChange, Approval, Fits, LastNight, SecretNames},
}


def encode(message: Message) -> str:
    return json.dumps({"type": message.type, **to_json(message)}, separators=(",", ":"))


def decode(text: str | bytes) -> Message:
    """Parse one frame into its message type; raise InvalidMessage naming the problem."""
    if isinstance(text, bytes):
        raise InvalidMessage("binary frames are not part of the protocol; send JSON text")
    try:
        data = json.loads(text)
        if "\\u" in text:                 # an escape may spell half a surrogate pair
            data = _whole_characters(data)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"malformed JSON: {exc.msg} at position {exc.pos}") from None
    except (ValueError, RecursionError) as exc:     # a number past Python's digit limit,
        raise InvalidMessage(f"unreadable JSON: {str(exc)[:100]}") from None  # deep nesting
    if not isinstance(data, dict):
        raise InvalidMessage("a message must be a JSON object with a 'type'")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in MESSAGES:
        raise InvalidMessage(f"unknown message type {repr(kind)[:60]}")
    return from_json(MESSAGES[kind], data, where=kind)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole_characters(value):
    """`value` with every lone surrogate (valid JSON, not text: UTF-8 and SQLite refuse it)
    replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_whole_characters(v) for v in value]
    if isinstance(value, dict):
        return {_whole_characters(k): _whole_characters(v) for k, v in value.items()}
    return value


def request_id_of(text: str | bytes) -> str | None:
    """Best-effort request_id of a frame that failed to parse, so the error can echo it."""
    try:
        rid = json.loads(text).get("request_id")
    except (ValueError, AttributeError, TypeError, RecursionError):
        return None
    return rid if isinstance(rid, str) else None


class State(enum.Enum):
    AWAITING_HELLO = "awaiting hello"
    OPEN = "open"


@dataclass
class Session:
    """Protocol state of one connection, from its first frame to its close.

    `origin` is the HTTP Origin of the WebSocket handshake (None for non-browser clients).
    Extensions must come from `extension_origin`; CLI clients from no origin at all (browsers
    always send one, so a page cannot pose as the CLI). Both must present the pairing token.
    """

    token: str
    extension_origin: str
    origin: str | None
    state: State = State.AWAITING_HELLO
    client: ClientKind | None = field(default=None)

    def receive(self, text: str | bytes) -> Message:
        """Validate one incoming frame.

        Raises Refused when the connection must close (before or during pairing), and
        InvalidMessage when the frame is bad but the connection may go on.
        """
        if self.state is State.AWAITING_HELLO:
            try:
                message = decode(text)
            except InvalidMessage as exc:
                raise Refused(f"expected hello: {exc}") from None
            if not isinstance(message, Hello):
                raise Refused(f"expected hello, got {message.type!r}")
            self._pair(message)
            return message
        message = decode(text)
        if type(message) not in ACCEPTS[self.client]:
            raise InvalidMessage(f"a {self.client} client may not send {message.type!r}")
        if isinstance(message, (Task, RecordStart)):
            _check_task(message)
        if isinstance(message, Practice) and (message.site is None) == (message.episode_id is None):
            raise InvalidMessage("practice names either a site or an episode_id, not both")
        if isinstance(message, AdapterChange) and message.change == "promote" and \
                message.adapter_id is None:
            raise InvalidMessage("adapter: promote names the adapter_id to promote")
        return message

    def _pair(self, hello: Hello) -> None:
        if hello.protocol != PROTOCOL_VERSION:
            raise Refused(f"protocol version {hello.protocol} is not supported; "
                          f"this daemon speaks version {PROTOCOL_VERSION}")
        if not hmac.compare_digest(hello.token.encode(), self.token.encode()):
            raise Refused("pairing token rejected; run `nightloop pair` to pair again")
        expected = self.extension_origin if hello.client == "extension" else None
        if self.origin != expected:
            raise Refused(f"a {hello.client} client may not connect from origin {self.origin!r}")
        self.client = hello.client
        self.state = State.OPEN


def _check_task(task: Task | RecordStart) -> None:
    if not task.task.strip():
        raise InvalidMessage(f"{task.type}.task is empty; say what the agent should do")
    if len(task.task) > MAX_TASK_CHARS:
        raise InvalidMessage(f"{task.type}.task is longer than {MAX_TASK_CHARS} characters")
    if task.url is not None and not task.url.startswith(("http://", "https://", "file://")):
        raise InvalidMessage(f"{task.type}.url must be an http(s) or file URL, got {task.url!r}")
