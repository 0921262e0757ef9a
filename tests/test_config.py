"""Settings precedence, bad values, and bad model files, as a user meets them on the CLI."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import nightloop

from daemon.core.models import shipped_model

pytestmark = pytest.mark.process


def show(*args: str, env: dict | None = None, monkeypatch=None) -> dict:
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    return json.loads(nightloop("config", "show", "--json", *args).stdout)["settings"]


def write_config(home, text: str):
    path = home / "config" / "nightloop" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_then_file_then_environment_then_flags(home, monkeypatch):
    path = write_config(home, "temperature = 0.7\nmax_steps = 9\nseed = 3\nthreads = 1\n")
    settings = show("--seed", "42", env={"NIGHTLOOP_MAX_STEPS": "12",
                                          "NIGHTLOOP_SEED": "8"}, monkeypatch=monkeypatch)
    assert settings["temperature"] == {"value": 0.7, "source": str(path),
                                       "help": settings["temperature"]["help"]}
    assert (settings["max_steps"]["value"], settings["max_steps"]["source"]) == (
        12, "env NIGHTLOOP_MAX_STEPS")
    assert (settings["seed"]["value"], settings["seed"]["source"]) == (42, "command line")
    assert (settings["n_ctx"]["value"], settings["n_ctx"]["source"]) == (4096, "default")
    assert settings["threads"]["value"] == 1
    text = nightloop("config", "show").stdout
    assert re.search(rf"^temperature += 0.7 +# {re.escape(str(path))}$", text, re.M), text


@pytest.mark.parametrize("config, env, flags, message", [
    ("temperature = 'hot'\n", {}, [], "config.toml: temperature must be a number, got 'hot'"),
    ("temperature = 9\n", {}, [], "config.toml: temperature must be from 0 to 2, got 9.0"),
    ("temprature = 0.5\n", {}, [], "unknown setting 'temprature'; known settings: policy"),
    ("temperature = \n", {}, [], "config.toml is not valid TOML"),
    ("", {"NIGHTLOOP_PORT": "eighty"}, [], "NIGHTLOOP_PORT: port must be an integer, "
                                           "got 'eighty'"),
    ("", {"NIGHTLOOP_POLICY": "oracle"}, [], "NIGHTLOOP_POLICY: policy must be one of llm, "
                                             "scripted"),
    ("", {}, ["--history", "-1"], "--history: history must be from 0 to 50, got -1"),
])
def test_a_bad_value_names_its_source(home, monkeypatch, config, env, flags, message):
    write_config(home, config)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = nightloop("config", "show", *flags, check=False)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    # The daemon refuses to start with the same message.
    result = nightloop("daemon", "--port", "1", *flags, check=False, timeout=30)
    assert result.returncode == 1 and message in result.stderr


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.gguf", "does not exist; set `model` in"),
    (lambda d: (d / "notes.gguf").write_text("hello") and d / "notes.gguf",
     "is not a GGUF file (it starts with b'hell'"),
    (lambda d: (d / "cut.gguf").write_bytes(b"GGUF\x03\x00\x00\x00\x01") and d / "cut.gguf",
     "is truncated: its header ends early"),
])
def test_a_bad_model_file_is_one_clear_line(home, make, message):
    path = make(home)
    for args in (["daemon", "--port", "1", "--model", str(path)], ["models", "add", str(path)]):
        result = nightloop(*args, check=False, timeout=30)
        assert result.returncode == 1, result
        assert message in result.stderr and str(path) in result.stderr
        assert "Traceback" not in result.stderr


def test_models_add_validates_and_lists_the_file(home):
    copy = home / "my-model.gguf"
    shutil.copy(shipped_model(), copy)
    out = nightloop("models", "add", str(copy)).stdout
    assert "added Smollm2 135M" in out and "llama, Q4_1, 98 MB, chat template" in out
    nightloop("models", "add", str(copy))                       # adding twice keeps one entry
    rows = json.loads(nightloop("models", "list", "--json").stdout)
    assert [r["source"] for r in rows] == ["shipped", "added"]
    added = rows[1]
    assert added["path"] == str(copy) and added["architecture"] == "llama"
    assert added["quantization"] == "Q4_1" and added["chat_template"] is True
    assert added["size_bytes"] == copy.stat().st_size and added["context_length"] == 8192

    # A configured model that went missing is listed as unusable, with the reason.
    write_config(home, f'model = "{home / "gone.gguf"}"\n')
    text = nightloop("models", "list").stdout
    assert "config: model" in text and "unusable: model file" in text


def test_a_model_given_as_the_adapter_is_refused(home):
    result = nightloop("daemon", "--port", "1", "--adapter", str(shipped_model()), check=False,
                       timeout=30)
    assert result.returncode == 1
    assert "is a model, not a LoRA adapter" in result.stderr
