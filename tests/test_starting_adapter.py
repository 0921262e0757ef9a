"""The shipped starting adapter: a new store serves it, `adapter = "none"` serves the bare
model, and a store's own history of adapters is never overwritten. Real files, the real GGUF
writer, llama.cpp loading the result and a real daemon process."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from conftest import DaemonProcess, follow, free_port, launch_browser, nightloop, run_async

from daemon.core.models import check_adapter, shipped_model
from daemon.core.settings import Settings
from daemon.core.store import Adapter, Store
from trainer.export import Architecture, gguf_tensors
from trainer.starting import FOLDER, WEIGHTS, serving_adapter, with_serving_adapter


def test_a_new_store_serves_the_starting_adapter_written_once_from_the_shipped_weights(home):
    import gguf
    from safetensors.numpy import load_file

    async def go():
        async with await Store.open(home / "s.db") as store:
            first = await serving_adapter(store, Settings())
            again = await serving_adapter(store, Settings())
            return first, again, await store.adapters()
    first, again, rows = run_async(go())
    assert first.status == "promoted" and first.parent is None and first.promoted_at
    assert first.config["source"] == "shipped" and first.base_model == shipped_model().name
    assert again == first and rows == [first]                 # registered once
    assert check_adapter(first.path).architecture == "llama"
    # The GGUF holds the shipped weights, named and permuted as the trainer's export does.
    expected = gguf_tensors(load_file(str(FOLDER / WEIGHTS)), Architecture.of_gguf(shipped_model()))
    written = {t.name: np.array(t.data) for t in gguf.GGUFReader(first.path).tensors}
    assert written.keys() == expected.keys() and len(written) == 30 * 7 * 2
    assert all(np.array_equal(written[k], expected[k]) for k in expected)
    # Beside it, the peft weights the nightly cycle goes on training from.
    peft = (home / "data" / "nightloop" / "adapters").glob("shipped-*/peft/" + WEIGHTS)
    assert [p.read_bytes() == (FOLDER / WEIGHTS).read_bytes() for p in peft] == [True]


def test_none_a_named_file_or_another_model_register_nothing(home):
    other = home / "other.gguf"
    other.write_bytes(shipped_model().read_bytes())

    async def go():
        async with await Store.open(home / "s.db") as store:
            bare = await with_serving_adapter(store, Settings(adapter="none"))
            named = await with_serving_adapter(store, Settings(adapter="/x/a.gguf"))
            elsewhere = await with_serving_adapter(store, Settings(model=str(other)))
            return bare, named, elsewhere, await store.adapters()
    bare, named, elsewhere, rows = run_async(go())
    assert (bare.adapter, named.adapter, elsewhere.adapter) == ("", "/x/a.gguf", "")
    assert rows == []
    from daemon.agent.llama_policy import LlamaPolicy
    assert LlamaPolicy(Settings(adapter="none", n_ctx=512)).adapter is None   # as given


def test_a_store_keeps_its_own_history_and_one_of_two_racing_processes_registers(home):
    async def go():
        db = home / "s.db"
        async with await Store.open(db) as a, await Store.open(db) as b:
            rows = await asyncio.gather(*(s.add_first_adapter(Adapter("x.gguf", "0", "m"))
                                          for s in (a, b)))
            assert sorted(r is None for r in rows) == [False, True]
        async with await Store.open(home / "t.db") as store:
            shipped = await serving_adapter(store, Settings())
            retired, serving = await store.rollback_adapter()     # the user rolls it back
            assert retired.id == shipped.id and serving is None
            assert await serving_adapter(store, Settings()) is None   # the bare model stays
            assert len(await store.adapters()) == 1
    run_async(go())


@pytest.mark.model
@pytest.mark.timeout(120)
def test_a_daemon_on_a_new_store_serves_the_starting_adapter_and_none_the_bare_model(home):
    """`nightloop status` says which, running or not; a daemon with `--adapter none` leaves
    the store without adapters."""
    db = home / "store.db"
    idle = nightloop("status", "--db", str(db), "--port", str(free_port()), check=False).stdout
    assert "adapter: the shipped starting adapter (registered when the daemon first starts)" \
        in idle
    daemon = DaemonProcess(free_port(), db, home / "daemon.log").start(policy="llm")
    try:
        status = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
        adapters = json.loads(nightloop("adapters", "list", "--json", "--db", str(db)).stdout)
        assert [(a["id"], a["status"], a["config"]["source"]) for a in adapters] == [
            (1, "promoted", "shipped")]
        assert status["adapter"] == adapters[0]["path"]            # llama.cpp loaded it
        assert status["adapter_serving"] == "1, the shipped starting adapter"
    finally:
        daemon.stop()
    bare_db = home / "bare.db"
    daemon = DaemonProcess(free_port(), bare_db, home / "bare.log").start("--adapter", "none",
                                                                         policy="llm")
    try:
        status = json.loads(nightloop("status", "--json", *daemon.args()).stdout)
        assert status.get("adapter") is None and status["adapter_serving"].startswith("none")
        listed = nightloop("adapters", "list", "--db", str(bare_db)).stdout
        assert listed.startswith("no adapters yet")
    finally:
        daemon.stop()


@pytest.mark.browser
def test_day_one_a_new_store_types_the_name_presses_save_and_says_done(home, playwright,
                                                                       pages_url, tmp_path):
    """The day-one task on a plain profile form (a name box, a city list, a newsletter box, a
    Save button), as a new user runs it: a new store, the default model and the shipped
    starting adapter (greedy, so the test reads one answer), the real extension in Chromium."""
    daemon = DaemonProcess(free_port(), home / "store.db", home / "daemon.log").start(
        "--temperature", "0", "--max-steps", "6", policy="llm")
    try:
        with launch_browser(playwright, daemon, tmp_path) as browser:
            page = browser.context.new_page()
            page.goto(f"{pages_url}/profile.html")
            episode = follow("run", *daemon.args(),
                             "Type Ada Lovelace into the Full name box and press Save",
                             timeout=300)
            actions = [s["action"] for s in episode["streamed"]]
            assert page.locator("#result").text_content() == "Saved: Ada Lovelace, Paris", \
                actions
    finally:
        daemon.stop()
    assert [a["action"] for a in actions] == ["fill", "click", "done"], actions
    assert actions[0]["text"] == "Ada Lovelace" and episode["status"] == "done"
