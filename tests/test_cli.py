"""The `nightloop` command as a user meets it: help, clear one-line errors, offline commands."""

from __future__ import annotations

import json
import stat

import click
import pytest
from conftest import free_port, nightloop, run_async

from daemon.cli.main import cli
from daemon.core.store import Episode, Reward, Step, Store
from judge.evaluate import load_jsonl

pytestmark = pytest.mark.process


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [p for p, _ in all_commands(cli)], ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    command = dict(all_commands(cli))[path]
    assert command.help, f"nightloop {' '.join(path)} has no help text"
    if not isinstance(command, click.Group):
        assert "Example: nightloop " + " ".join(path) in command.help


def seed(db):
    async def go():
        async with await Store.open(db) as store:
            for task in ("first chore", "second chore"):
                e = await store.start_episode(Episode(task, "cli", start_url="http://x/"))
                await store.add_step(Step(e.id, 0, {"action": "done"}, True, url="http://x/"))
                await store.finish_episode(e.id, "done")
            await store.add_reward(Reward(1, "user", -1.0))
    run_async(go())


def test_episodes_list_show_export_and_delete(home):
    db = home / "s.db"
    seed(db)
    listed = nightloop("episodes", "list", "--db", str(db)).stdout.splitlines()
    assert "second chore" in listed[0] and "first chore" in listed[1]   # newest first
    assert [e["id"] for e in json.loads(
        nightloop("episodes", "list", "--db", str(db), "--json").stdout)] == [2, 1]

    shown = nightloop("episodes", "show", "1", "--db", str(db)).stdout
    assert "episode 1: first chore" in shown and "reward user: -1" in shown

    out = home / "export.jsonl"
    nightloop("episodes", "export", "--jsonl", str(out), "--db", str(db))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["id"], len(e["steps"]), len(e["rewards"])) for e in lines] == [(1, 1, 1), (2, 1, 0)]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600           # the user's alone, as the store

    deleted = nightloop("episodes", "delete", "1", "--yes", "--db", str(db)).stdout
    assert "deleted 1 episodes" in deleted
    refused = nightloop("episodes", "delete", "2", "--db", str(db), input="n\n", check=False)
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    nightloop("episodes", "delete", "--before", "2999-01-01", "--yes", "--db", str(db))
    assert nightloop("episodes", "list", "--db", str(db)).stdout.strip() == "no episodes yet"


def test_an_export_reads_back_as_the_judges_labelled_set(home):
    """`judge eval --jsonl` reads what `episodes export` writes, a step the policy failed to
    decide (no action, left out of the JSON) included."""
    db = home / "s.db"

    async def go():
        async with await Store.open(db) as store:
            e = await store.start_episode(Episode("click ok", "eval", start_url="http://x/"))
            await store.add_step(Step(e.id, 0, None, False, url="http://x/", error="no JSON"))
            await store.add_step(Step(e.id, 1, {"action": "click", "id": 1}, True))
            await store.finish_episode(e.id, "done")
            await store.add_reward(Reward(e.id, "ground_truth", 1.0))
    run_async(go())
    out = home / "export.jsonl"
    nightloop("episodes", "export", "--jsonl", str(out), "--db", str(db))
    [item] = load_jsonl(out)
    assert [s.action for s in item.steps] == [None, {"action": "click", "id": 1}]
    assert item.success and item.steps[0].error == "no JSON"


@pytest.mark.parametrize("args, message", [
    (["episodes", "show", "99"], "Error: there is no episode 99"),
    (["episodes", "show", "abc"], "'abc' is not a valid integer"),
    (["episodes", "delete", "--yes"], "give episode ids or --before DATE"),
    (["episodes", "delete", "--before", "yesterday"], "'yesterday' does not match the formats"),
    (["run", "hello", "--port", "PORT"], "'PORT' is not a valid integer"),
    (["daemon", "--max-steps", "0"], "--max-steps: max_steps must be from 1 to 200, got 0"),
    (["daemon", "--policy", "oracle"], "'oracle' is not one of 'llm', 'scripted'"),
])
def test_bad_input_is_one_clear_line_without_a_traceback(home, args, message):
    seed(home / "s.db")
    if args[0] == "episodes":
        args = [*args, "--db", str(home / "s.db")]
    result = nightloop(*args, check=False)
    assert result.returncode == 2 or result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_corrupt_store_is_named_in_the_error(home):
    bad = home / "bad.db"
    bad.write_bytes(b"\x00garbage" * 1000)
    result = nightloop("episodes", "list", "--db", str(bad), check=False)
    assert result.returncode == 1
    assert f"Error: {bad} is not a usable nightloop database" in result.stderr


def test_commands_that_need_the_daemon_say_when_it_is_down(home):
    port = str(free_port())
    result = nightloop("run", "click \"Go\"", "--port", port, check=False)
    assert result.returncode == 1
    assert f"no nightloop daemon at 127.0.0.1:{port}" in result.stderr
    assert "start one with `nightloop daemon`" in result.stderr

    status = nightloop("status", "--port", port, "--json", check=False)
    assert status.returncode == 1
    state = json.loads(status.stdout)
    assert state["running"] is False and state["address"] == f"127.0.0.1:{port}"


def test_status_reports_a_running_daemon(daemon_proc):
    state = json.loads(nightloop("status", "--json", *daemon_proc.args()).stdout)
    assert state["running"] is True and state["address"] == f"127.0.0.1:{daemon_proc.port}"
    assert state["browser_connected"] is False and state["db"] == str(daemon_proc.db)
    text = nightloop("status", *daemon_proc.args()).stdout
    assert f"daemon: running on 127.0.0.1:{daemon_proc.port}" in text


def test_a_second_daemon_on_the_same_port_explains_itself(daemon_proc):
    result = nightloop("daemon", *daemon_proc.args(), "--db", str(daemon_proc.db), check=False,
                       timeout=20)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{daemon_proc.port}" in result.stderr


def test_pair_prints_the_token_and_keeps_it_private(home):
    out = nightloop("pair", "--port", "9123").stdout
    token_file = home / "config" / "nightloop" / "token"
    token = token_file.read_text().strip()
    assert token in out and "Load unpacked" in out and "port 9123" in out
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    # A second call reuses the same token; a loosened file is tightened again.
    token_file.chmod(0o644)
    assert token in nightloop("pair").stdout
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_with_a_daemon_serving_the_store_the_cli_changes_it_through_the_daemon(daemon_proc):
    """One writer: practice rules and adapter changes go through the running daemon (its log
    shows each), and straight to the store only when no daemon serves it."""
    from daemon.core.store import Adapter

    async def seed():
        async with await Store.open(daemon_proc.db, recover=False) as store:
            first = await store.add_adapter(Adapter("a.gguf", "x", "m.gguf"))
            await store.add_adapter(Adapter("b.gguf", "y", "m.gguf", parent=first.id))
    run_async(seed())
    db, port = ["--db", str(daemon_proc.db)], daemon_proc.args()

    allowed = nightloop("practice", "allow", "shop.test", *db, *port)
    assert "practice allowed: any task on shop.test" in allowed.stdout
    assert "practice allowed: any task on shop.test" in daemon_proc.log.read_text()
    again = nightloop("practice", "deny", "shop.test", "mail.test", *db, *port)
    assert again.stdout.splitlines() == ["practice denied: any task on shop.test",
                                         "practice was not allowed: any task on mail.test"]

    for args, said in ((["promote", "1"], "adapter 1 promoted"),
                       (["promote", "2"], "adapter 2 promoted"),
                       (["rollback"], "adapter 2 retired; adapter 1 serves again")):
        run = nightloop("adapters", *args, *db, *port)
        assert said in run.stdout and "through the running daemon" in run.stdout, run.stdout
    assert daemon_proc.log.read_text().count("adapter promote: now serving") == 2
    assert "adapter rollback: now serving adapter 1" in daemon_proc.log.read_text()
    bad = nightloop("adapters", "promote", "9", *db, *port, check=False)
    assert bad.returncode == 1 and "there is no adapter 9" in bad.stderr

    daemon_proc.stop()                              # no daemon: the CLI writes the store itself
    run = nightloop("adapters", "rollback", *db, *port)
    assert "adapter 1 retired; the base model serves again" in run.stdout
    assert "no daemon serves" in run.stdout
    shown = json.loads(nightloop("adapters", "list", "--json", *db).stdout)
    assert [a["status"] for a in shown] == ["retired", "retired"]
    none = nightloop("adapters", "rollback", *db, *port, check=False)
    assert none.returncode == 1 and "no adapter is promoted" in none.stderr


def test_train_now_runs_for_the_nightly_budget_unless_told_otherwise(home, monkeypatch):
    """`nightloop train --now` and the nightly cycle share one budget: the train_budget setting
    (two hours by default), which --budget overrides for one run."""
    from click.testing import CliRunner

    import daemon.cli.training as training
    seconds = []
    monkeypatch.setattr(training, "_cycle", lambda settings, config, plan, budget, *rest,
                        **named: seconds.append(budget))
    monkeypatch.delenv("NIGHTLOOP_TRAIN_BUDGET", raising=False)
    db = ["--db", str(home / "s.db")]
    for env, flags in ((None, []), ("7", []), ("7", ["--budget", "3"])):
        if env:
            monkeypatch.setenv("NIGHTLOOP_TRAIN_BUDGET", env)
        result = CliRunner().invoke(cli, ["train", "--now", *flags, *db])
        assert result.exit_code == 0, result.output
    assert seconds == [7200, 420, 180]
