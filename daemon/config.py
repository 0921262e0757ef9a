"""Where nightloop keeps its files, and the defaults every command shares.

Config (the pairing token) lives in the XDG config dir, data (the SQLite store) in the XDG data
dir; both follow XDG_CONFIG_HOME / XDG_DATA_HOME. NIGHTLOOP_DB and NIGHTLOOP_PORT override the
store path and the port; the CLI's --db and --port override both.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "nightloop"
DEFAULT_PORT = 8977                 # 127.0.0.1 only
DEFAULT_MAX_STEPS = 15
DEFAULT_STEP_TIMEOUT = 30.0         # seconds for one observe or act round trip


def config_dir() -> Path:
    return platformdirs.user_config_path(APP)


def data_dir() -> Path:
    return platformdirs.user_data_path(APP)


def default_db() -> Path:
    return Path(os.environ.get("NIGHTLOOP_DB") or data_dir() / "nightloop.db")


def default_port() -> int:
    raw = os.environ.get("NIGHTLOOP_PORT")
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"NIGHTLOOP_PORT must be a port number (1-65535), got {raw!r}")
    return int(raw)
