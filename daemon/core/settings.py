"""Settings: one dataclass behind the TOML file, the environment and the command line.

Each setting is a field of `Settings` with its help text and bounds. Its value comes from, in
rising precedence: the default, ``config.toml`` in the config dir, the environment variable
``NIGHTLOOP_<NAME>`` (upper case), and a command-line flag ``--<name>`` (dashes for
underscores). `load_settings` returns the effective values and where each came from, and raises
`ConfigError` naming the source when a value is bad.

Files: config (``config.toml``, the pairing token, the model registry) live in the XDG config
dir, data (the store, the browser profile) in the XDG data dir; both follow XDG_CONFIG_HOME /
XDG_DATA_HOME.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from .errors import NightloopError

APP = "nightloop"


def config_dir() -> Path:
    return platformdirs.user_config_path(APP)


def data_dir() -> Path:
    return platformdirs.user_data_path(APP)


def config_file() -> Path:
    return config_dir() / "config.toml"


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            choices: tuple[str, ...] = ()) -> Any:
    """A dataclass field with its help text and bounds, checked by `check_value` (the type is
    the default's: str, int, float, bool or a tuple of strings)."""
    return field(default=default,
                 metadata={"help": help, "low": low, "high": high, "choices": choices})


@dataclass(frozen=True)
class Settings:
    # -- the policy ---------------------------------------------------------------------------
    policy: str = setting("llm", "who decides each step: llm (the local model) or scripted "
                          "(instructions written in the task; see the policy guide)",
                          choices=("llm", "scripted"))
    backend: str = setting("llama", "where the policy's model runs: llama (in the daemon, "
                           "llama.cpp on `model`) or openai (an OpenAI-compatible server at "
                           "`server_url`: llama.cpp's server, Ollama, vLLM)",
                           choices=("llama", "openai"))
    model: str = setting("", "GGUF model file for the policy; empty: the shipped "
                         "SmolLM2-135M-Instruct")
    adapter: str = setting("", "LoRA adapter (GGUF file) applied to the model; empty: the "
                           "store's serving adapter (on a new store, the shipped starting "
                           "adapter); none: the bare model")
    n_ctx: int = setting(4096, "model context size in tokens", low=512, high=131072)
    threads: int = setting(min(os.cpu_count() or 2, 8), "CPU threads for inference",
                           low=1, high=256)
    temperature: float = setting(0.25, "sampling temperature (0: always the likeliest token)",
                                 low=0, high=2)
    seed: int = setting(-1, "sampling seed for reproducible runs; -1: random", low=-1,
                        high=2**31 - 1)
    top_k: int = setting(40, "sample among the k likeliest tokens only; 0: no limit (llama.cpp's "
                         "default is 40)", low=0, high=1_000_000)
    top_p: float = setting(0.95, "nucleus sampling: the likeliest tokens up to this probability "
                           "mass; 1: no limit (llama.cpp's default is 0.95)", low=0, high=1)
    min_p: float = setting(0.05, "drop tokens less likely than this fraction of the likeliest; "
                           "0: none (llama.cpp's default is 0.05)", low=0, high=1)
    fill_text: str = setting("free", "what a fill may type: free (any text) or task (only a "
                             "span of the task's text: its quoted strings, e-mail addresses and "
                             "runs of up to 6 words; free where the task has none)",
                             choices=("free", "task"))
    explore: float = setting(0.0, "share of steps whose kind of action (click, fill, select, "
                             "...) is drawn at random among those that name an element of the "
                             "page, the model writing the rest (practice explores; 0: never)",
                             low=0, high=1)
    server_url: str = setting("http://127.0.0.1:8080/v1", "backend openai: the server's API "
                              "base URL (its key, if it needs one, from the environment: "
                              "NIGHTLOOP_API_KEY or OPENAI_API_KEY; never stored)")
    server_model: str = setting("", "backend openai: the model name to ask for; empty: the "
                                "first the server lists")
    server_format: str = setting("auto", "backend openai: how the action schema constrains "
                                 "the answer: auto (the first of the three below the server "
                                 "takes, found on the first request), json_schema "
                                 "(response_format, as OpenAI, vLLM, llama.cpp's llama-server "
                                 "and Ollama take it), json_object (llama-cpp-python's server) "
                                 "or grammar (GBNF in `grammar`: the llama.cpp servers)",
                                 choices=("auto", "json_schema", "json_object", "grammar"))
    server_timeout: float = setting(60.0, "backend openai: seconds a request may take before "
                                    "the step fails", low=1, high=3600)
    obs_tokens: int = setting(1200, "token budget for the page observation in a prompt",
                              low=100, high=100_000)
    history: int = setting(5, "previous actions (with results) shown to the model",
                           low=0, high=50)
    # -- the judge (the defaults are the measured choice: docs/results/judge.md) ------------
    judge: str = setting("on", "score each finished episode in the background: on or off",
                         choices=("on", "off"))
    judge_backend: str = setting("llama", "where the judge's model runs: llama (in the "
                                 "daemon) or openai (the server of `server_url`, with "
                                 "`judge_server_model`)", choices=("llama", "openai"))
    judge_server_model: str = setting("", "judge_backend openai: the model name; empty: "
                                      "`server_model`")
    judge_model: str = setting("", "judge model: smollm2, gemma3 (the shipped candidates) or "
                               "a GGUF path; empty: smollm2")
    judge_form: str = setting("likelihood", "FLIP's form: likelihood (the instruction's "
                              "likelihood and lexical overlap combined into a calibrated "
                              "probability) or generate",
                              choices=("likelihood", "generate"))
    judge_samples: int = setting(1, "generate form: inferred instructions averaged per "
                                 "episode", low=1, high=16)
    judge_temperature: float = setting(0.7, "generate form: sampling temperature when "
                                       "judge_samples > 1", low=0, high=2)
    # -- nightly learning (issue 7) -------------------------------------------------------
    train_at: str = setting("", "local time HH:MM to start the nightly learning cycle; "
                            "empty: never (run `nightloop train --now` yourself)")
    train_idle: int = setting(30, "minutes without an episode before the nightly cycle may "
                              "start", low=0, high=24 * 60)
    train_budget: float = setting(120.0, "minutes a nightly cycle may take (two hours give "
                                  "SFT two passes over a few hundred examples on 2 cores)",
                                  low=1, high=24 * 60)
    notify_after_night: bool = setting(False, "after a night that changed the serving adapter, "
                                       "a desktop notification from the browser says what it "
                                       "learned (the toolbar icon's badge says so either way)")
    # -- episodes and the daemon --------------------------------------------------------------
    max_steps: int = setting(15, "steps before an episode ends as step_limit", low=1, high=200)
    step_timeout: float = setting(30.0, "seconds the browser has to answer one observe or act",
                                  low=1, high=600)
    reconnect_grace: float = setting(45.0, "seconds an episode waits for the browser's extension "
                                     "to come back when it disconnects (Chrome restarts a "
                                     "stopped service worker within 30 s); then the episode "
                                     "fails saying so", low=0, high=3600)
    approvals: str = setting("ask", "sensitive actions (a site the task does not name, a secret "
                             "field, paying, deleting): ask the popup or terminal, or deny them "
                             "unasked", choices=("ask", "deny"))
    approval_timeout: float = setting(60.0, "seconds to wait for an answer before a sensitive "
                                      "action is denied", low=1, high=3600)
    approval_words: tuple = setting(
        ("pay", "buy", "order", "purchase", "checkout", "delete", "transfer", "send money",
         "place order", "confirm payment", "log out", "logout", "sign out", "log off"),
        "a click on a control whose name says one of these is sensitive (signing out signs "
        "you out of your own browser's account; comma-separated in the environment)")
    screenshots: str = setting("on", "keep a screenshot of the tab before each step of your "
                               "episodes, secret fields painted over, as files beside the store "
                               "(`nightloop episodes report` shows them); eval and practice take "
                               "them only with --screenshots", choices=("on", "off"))
    screenshots_keep_days: int = setting(0, "screenshots older than this many days are deleted "
                                         "(whole episodes' folders; the episodes stay); 0: "
                                         "kept", low=0, high=36500)
    screenshots_max_mb: int = setting(0, "the oldest episodes' screenshots are deleted while "
                                      "all of them take more than this many MB; 0: no limit",
                                      low=0, high=10_000_000)
    store_note_mb: int = setting(2000, "`nightloop status` says so once the store and its "
                                 "screenshots take more than this many MB", low=0,
                                 high=10_000_000)
    port: int = setting(8977, "daemon port on 127.0.0.1", low=1, high=65535)
    sites_port: int = setting(8978, "port of the bundled practice sites (`nightloop daemon "
                              "--sites`) on 127.0.0.1: a fixed one keeps the start pages of "
                              "demonstrations recorded there valid; 0: any free port",
                              low=0, high=65535)
    db: str = setting("", "SQLite store; empty: nightloop.db in the XDG data dir")

    @property
    def db_path(self) -> Path:
        return Path(self.db).expanduser() if self.db else data_dir() / "nightloop.db"

    @property
    def adapter_file(self) -> str:
        """The adapter GGUF `adapter` names; "" when it names none (empty: the store's to say,
        see trainer.starting; ``none``: the bare model)."""
        return "" if self.adapter in ("", "none") else self.adapter


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
DEFAULTS = Settings()


class ConfigError(NightloopError):
    """A setting has a bad value, or the config file cannot be read."""


@dataclass(frozen=True)
class Resolved:
    settings: Settings
    sources: dict[str, str]             # setting name → "default", "config.toml", "env ...", ...


def env_name(name: str) -> str:
    return f"NIGHTLOOP_{name.upper()}"


def load_settings(overrides: dict[str, Any] | None = None, *,
                  path: Path | None = None) -> Resolved:
    """Effective settings: defaults < config file < environment < `overrides` (CLI flags).

    `overrides` maps setting names to values; None values are ignored.
    """
    values = {name: getattr(DEFAULTS, name) for name in FIELDS}
    sources = dict.fromkeys(FIELDS, "default")
    path = path or config_file()
    for name, raw in _read_file(path).items():
        values[name] = check_value(Settings, name, raw, f"{path}")
        sources[name] = str(path)
    for name in FIELDS:
        raw = os.environ.get(env_name(name))
        if raw is not None:
            values[name] = check_value(Settings, name, raw, env_name(name), from_text=True)
            sources[name] = f"env {env_name(name)}"
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = check_value(Settings, name, raw, f"--{name.replace('_', '-')}")
        sources[name] = "command line"
    return Resolved(Settings(**values), sources)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{path}: unknown setting {', '.join(map(repr, unknown))}; "
                          f"known settings: {', '.join(FIELDS)}")
    return data


def check_value(cls: type, name: str, raw: Any, source: str, *,
                from_text: bool = False) -> Any:
    """One value of field `name` of dataclass `cls` (fields made by `setting`) checked, and
    for text from the environment parsed; ConfigError naming `source` when it is bad."""
    spec = {f.name: f for f in dataclasses.fields(cls)}[name]
    meta, kind = spec.metadata, type(spec.default)
    try:
        if from_text and kind is tuple:
            raw = tuple(item.strip() for item in raw.split(",") if item.strip())
        elif from_text and kind is not str:
            raw = kind(raw.strip())
        if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
            raw = float(raw)
        if kind is tuple and isinstance(raw, list):
            raw = tuple(raw)
        if not isinstance(raw, kind) or (isinstance(raw, bool) and kind is not bool) \
                or (kind is tuple and not all(isinstance(item, str) for item in raw)):
            raise ValueError
    except ValueError:
        article = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
                   tuple: "a list of strings"}[kind]
        raise ConfigError(f"{source}: {name} must be {article}, got {raw!r}") from None
    if meta["choices"] and raw not in meta["choices"]:
        raise ConfigError(f"{source}: {name} must be one of {', '.join(meta['choices'])}, "
                          f"got {raw!r}")
    low, high = meta["low"], meta["high"]
    if low is not None and not low <= raw <= high:
        raise ConfigError(f"{source}: {name} must be from {low:g} to {high:g}, got {raw!r}")
    return raw
