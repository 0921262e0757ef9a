"""Secrets by name: the vault on a real system keyring (GNOME Keyring's Secret Service on a D-Bus
session), refused where there is none, the CLI that keeps them, and tasks that would hold one
in clear."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from conftest import follow, nightloop, run_async, store_files

from daemon.core.errors import NotFound, UsageError
from daemon.core.vault import NoKeyring, Vault, placeholders


def test_placeholders_are_names_in_double_braces():
    assert placeholders("Log in as {{USER}} with {{ADMIN_PW}}, then {{USER}} again") == \
        ["USER", "ADMIN_PW"]
    assert placeholders("{{1X}} {x} {{ }} {{A-B}}") == []
    assert placeholders(None) == []


def test_a_secret_lives_in_the_keyring_and_only_its_name_on_disk(keyring_session, tmp_path):
    import keyring
    vault = Vault(tmp_path / "config" / "secrets.json")
    vault.set("BANK_PW", "hunter2-long")
    vault.set("PIN", "4711")
    assert vault.names() == ["BANK_PW", "PIN"]
    assert vault.get("BANK_PW") == "hunter2-long"
    assert keyring.get_password("nightloop", "PIN") == "4711"     # the system's own keyring
    index = tmp_path / "config" / "secrets.json"
    assert oct(index.stat().st_mode & 0o777) == "0o600"
    assert "4711" not in index.read_text() and "hunter2" not in index.read_text()
    assert vault.fill_in("{{BANK_PW}} and {{PIN}}") == ("hunter2-long and 4711",
                                                        ["hunter2-long", "4711"])
    assert vault.missing("{{PIN}} {{OTHER}}") == ["OTHER"]
    vault.delete("PIN")
    assert vault.names() == ["BANK_PW"] and keyring.get_password("nightloop", "PIN") is None
    with pytest.raises(NotFound, match=r"\{\{PIN\}\} is not a saved secret"):
        vault.fill_in("{{PIN}}")
    with pytest.raises(NotFound, match="there is no secret PIN"):
        vault.delete("PIN")
    with pytest.raises(UsageError, match="cannot name a secret"):
        vault.set("my password", "x")
    with pytest.raises(UsageError, match="cannot be empty"):
        vault.set("EMPTY", "")


def test_without_a_system_keyring_secrets_are_refused_never_kept_in_a_file(tmp_path):
    import keyring
    from keyring.backends import fail
    # What keyring finds with no D-Bus session (the CLI test below starts a process without
    # one, where keyring finds it for real).
    keyring.set_keyring(fail.Keyring())
    vault = Vault(tmp_path / "secrets.json")
    with pytest.raises(NoKeyring, match="no system keyring is available .* never in a file"):
        vault.set("PIN", "4711")
    assert not (tmp_path / "secrets.json").exists() and vault.names() == []


@pytest.mark.process
def test_the_secrets_command_prompts_lists_names_and_deletes(keyring_session, home):
    saved = nightloop("secrets", "set", "SHOP_PW", input="s3cret pw\ns3cret pw\n")
    assert "saved SHOP_PW" in saved.stdout and "s3cret" not in saved.stdout + saved.stderr
    listed = nightloop("secrets", "list").stdout
    assert listed.split() == ["SHOP_PW"]
    mistyped = nightloop("secrets", "set", "OTHER", input="one\ntwo\n", check=False)
    assert mistyped.returncode != 0 and "OTHER" not in nightloop("secrets", "list").stdout
    nightloop("secrets", "delete", "SHOP_PW")
    assert "no secrets saved" in nightloop("secrets", "list").stdout
    gone = nightloop("secrets", "delete", "SHOP_PW", check=False)
    assert gone.returncode == 1 and "there is no secret SHOP_PW" in gone.stderr
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    import subprocess

    from conftest import NIGHTLOOP
    refused = subprocess.run([NIGHTLOOP, "secrets", "set", "X"], input="a\na\n", text=True,
                             capture_output=True, env=env)
    assert refused.returncode == 1 and "no system keyring is available" in refused.stderr


@pytest.mark.browser
def test_a_named_secret_signs_in_and_never_lands_in_the_store(keyring_session, browser,
                                                              daemon_proc, pages_url):
    """Real keyring, daemon, extension and Chromium: the page gets the value and says so; the
    store, the log and the progress hold only the name."""
    from test_approvals_daemon import run_answering
    from test_screenshots import agent_tab

    from daemon.core import protocol as p
    value = "correct horse 42"
    Vault().set("FORM_PW", value)
    url = f"{pages_url}/login.html"
    task = 'fill "Username" with "ada"; fill "Password" with "{{FORM_PW}}"; click "Sign in"; done'
    episode = follow("run", "--yes", *daemon_proc.args(), "--url", url, task, timeout=60)
    assert episode["status"] == "done" and episode["task"] == task
    assert agent_tab(browser, "login.html").text_content("#result") == "Signed in as ada"
    with sqlite3.connect(daemon_proc.db) as conn:
        rows = conn.execute('SELECT action, result FROM steps ORDER BY "index"').fetchall()
    fill, sign_in = json.loads(rows[1][1] or "{}"), json.loads(rows[2][1] or "{}")
    assert json.loads(rows[1][0])["text"] == "{{FORM_PW}}"
    assert "approval" not in fill                       # the user named it for this task
    assert sign_in["approval"]["kind"] == "commit"      # submitting a password still asks
    for path in [*store_files(daemon_proc.db), daemon_proc.log]:
        assert value.encode() not in path.read_bytes(), path

    # Typed anywhere but a secret field, a named secret asks first; denied, nothing is typed.
    note = p.Task('fill "Note" with "{{FORM_PW}}"; done', source="cli", url=url)
    ended, asks = run_async(run_answering(daemon_proc.port, note, ["deny"]))
    assert [a.kind for a in asks] == ["secret"]
    assert asks[0].reason.startswith("types the secret {{FORM_PW}} into") and \
        asks[0].reason.endswith("which is not a secret field")
    assert agent_tab(browser, "login.html").input_value("#note") == ""

    # A name nobody saved is refused before anything runs.
    unknown = nightloop("run", *daemon_proc.args(), "--url", url,
                        'fill "Password" with "{{NOPE}}"', check=False)
    assert unknown.returncode == 1 and "{{NOPE}}: no such saved secret here" in unknown.stderr

    # The popup offers the saved names and puts {{NAME}} where the cursor is.
    popup = browser.popup()
    popup.fill("#task", "Sign in as ada with ")
    popup.wait_for_selector("#secret-names:not([hidden])")
    popup.select_option("#secret-names", "FORM_PW")
    assert popup.input_value("#task") == "Sign in as ada with {{FORM_PW}}"
