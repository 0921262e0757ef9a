"""End to end with the real model: `nightloop run` in real headless Chromium, model-driven."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import DaemonProcess, follow, free_port, launch_browser, nightloop

from daemon.core.observation import Observation

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("backend", ["llama", "openai"])
def test_the_model_drives_an_episode_and_every_step_is_recorded(backend, playwright, home,
                                                                pages_url, tmp_path, request):
    """In the daemon (llama.cpp) and over an OpenAI-compatible server on the same model
    (llama-cpp-python's, the action schema as GBNF): the same episode, recorded the same way."""
    daemon_proc = DaemonProcess(free_port(), home / "s.db", home / "d.log")
    served = ("--backend", "openai", "--server-url", request.getfixturevalue("model_server"),
              "--server-format", "grammar") if backend == "openai" else ()
    daemon_proc.start("--max-steps", "4", "--seed", "1", *served, policy="llm")
    try:
        with launch_browser(playwright, daemon_proc, tmp_path):
            episode = follow("run", *daemon_proc.args(), "--url", f"{pages_url}/form.html",
                             "Type Ada into the Name field")
    finally:
        daemon_proc.stop()
    assert episode["status"] in ("done", "gave_up", "step_limit")     # success not required
    assert episode["policy"] == ("llm:SmolLM2-135M-Instruct.Q4_1" if backend == "llama" else
                                 f"server:{request.getfixturevalue('model_server')}")

    conn = sqlite3.connect(daemon_proc.db)
    conn.row_factory = sqlite3.Row
    steps = conn.execute('SELECT * FROM steps WHERE episode_id=? ORDER BY "index"',
                         (episode["id"],)).fetchall()
    assert 1 <= len(steps) <= 4
    system = "<|im_start|>system\n" if backend == "llama" else "### System\n"
    for step in steps:
        assert step["prompt"].startswith(system + "You are nightloop")
        assert "Task: Type Ada into the Name field" in step["prompt"]
        written = json.loads(step["raw_output"])
        label = written.pop("target", None)
        assert json.loads(step["action"]) == written
        if "id" in written:                         # the element named by its label, then its id
            page = Observation.from_json(json.loads(step["observation"]))
            assert label == page.labels()[written["id"]]
        assert step["invalid"] == 0
        assert step["prompt_tokens"] > 0 and step["completion_tokens"] > 0
        assert step["decode_ms"] > 0 and step["prompt_ms"] > 0
        assert step["prefill_ms"] > 0 if backend == "llama" else step["prefill_ms"] == 0
        assert step["observe_ms"] > 0 and step["policy_ms"] > 0 and step["seed"] == 1
    shown = nightloop("episodes", "show", str(episode["id"]), "--db", str(daemon_proc.db)).stdout
    assert "tokens" in shown and "prefill" in shown
