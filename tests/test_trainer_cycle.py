"""A short real learning cycle: MiniWoB++ practice through the extension, the judge, real peft
steps, GGUF export, the gate, promotion, and a daemon that switches to the new adapter."""

from __future__ import annotations

import json

import pytest

from conftest import DaemonProcess, free_port, nightloop


@pytest.mark.timeout(900)
def test_a_tiny_cycle_trains_exports_gates_and_the_daemon_serves_it(home, tmp_path):
    db = home / "store.db"
    daemon = DaemonProcess(free_port(), db, home / "daemon.log").start(policy="llm")
    try:
        before = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
        assert before.get("adapter") is None
        config = tmp_path / "train.toml"
        config.write_text("practice_k = 2\nsft_epochs = 1\nbatch_size = 2\ngate_margin = 1.0\n"
                          "lora_r = 4\nlora_alpha = 8\n")
        run = nightloop("train", "--now", "--tasks", "click-button,focus-text", "--seeds", "1",
                        "--config", str(config), "--budget", "14", "--json",
                        "--db", str(db), *daemon.args(), timeout=840)
        result = json.loads(run.stdout)
        assert result["error"] is None, result
        assert result["practice_episodes"] == 4 and result["judged"] >= 4
        phases = {r["phase"]: r for r in result["training"]}
        assert phases["sft"]["steps"] > 0, result                    # the oracle taught
        losses = phases["sft"]["losses"] + phases["grpo"]["losses"]
        assert all(isinstance(x, float) for x in losses)
        assert result["gate"]["candidate"]["n"] == 2 and result["promoted"]   # margin 1.0

        adapters = json.loads(nightloop("adapters", "list", "--json", "--db", str(db)).stdout)
        assert [a["status"] for a in adapters] == ["promoted"]
        path = adapters[0]["path"]
        status = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
        assert status["adapter"] == path        # llama.cpp loaded it; no restart was needed

        nightloop("adapters", "rollback", "--db", str(db), *daemon.args())
        status = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
        assert status.get("adapter") is None
    finally:
        daemon.stop()
