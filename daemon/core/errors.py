"""The errors nightloop raises on purpose: one tree under `NightloopError`.

The CLI turns a `NightloopError` into one line (`Error: ...`, exit status 1) and lets
everything else — a bug — show its traceback; the daemon answers a client's bad request with an
`error` message and keeps the connection. Each error's text is written for the person who meets
it: what is wrong, and what to do.

    NightloopError
     ├── InvalidMessage     a message or action does not match the protocol (answered, kept open)
     ├── Refused            the peer failed pairing, origin or version checks (connection closed)
     ├── UsageError         a request the user can correct: an unknown task, template, site or
     │    │                 format, a task a demonstration does not fit (also a ValueError)
     │    ├── Unmatched     daemon.agent.values: a new task's values have no place in the old one
     │    └── SecretInTask  a task holds what looks like a secret in clear (code
     │                      "secret_in_task": a client may offer to run it anyway)
     ├── NotFound           there is no such episode or adapter (also a LookupError)
     ├── MissingFile        a model, package, browser or results folder that is not there (also a
     │                      FileNotFoundError); the message says how to install or point to it
     ├── NoKeyring          daemon.core.vault: no system keyring to keep secrets in
     ├── ConfigError        daemon.core.settings: a bad setting, naming its source
     ├── StoreError         daemon.core.store: a store that cannot be opened or is newer than us
     ├── GGUFError          daemon.core.gguf_meta: a file that is not a usable GGUF model
     ├── ServerError        daemon.agent.openai_api: a model server that is down, slow or odd
     ├── EpisodeFailed      daemon.agent.episode: an episode cannot go on
     │    └── BrowserError  the browser did not answer as the protocol says
     ├── DaemonUnavailable  daemon.service.client: no daemon listens where the CLI looked
     └── DaemonError        daemon.service.client: the daemon answered a request with an error
"""

from __future__ import annotations


class NightloopError(Exception):
    """Base of every error nightloop raises on purpose (the tree above). `code`: what a
    client may act on, sent with the daemon's `error` (None: only the words)."""
    code: str | None = None


class InvalidMessage(NightloopError):
    """A message, or a field of it, does not match the protocol."""


class Refused(NightloopError):
    """The peer failed pairing, origin or version checks; the connection must close."""


class UsageError(NightloopError, ValueError):
    """A request the user can correct; the message names what to give instead."""


class SecretInTask(UsageError):
    """A task holds what looks like a secret in clear."""
    code = "secret_in_task"


class NotFound(NightloopError, LookupError):
    """There is no such episode, adapter or rule."""


class MissingFile(NightloopError, FileNotFoundError):
    """A file, package or program nightloop needs is not there; the message says how to get it."""
