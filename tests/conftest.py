"""Shared fixtures: isolated XDG dirs, a static page server, a real daemon process, and a real
headless Chromium with the real extension loaded and paired with that daemon."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.bridge.launch import launch_with_playwright
from daemon.bridge.pairing import extension_id, load_or_create_token
from daemon.cli.main import exit_status
from daemon.core.settings import config_dir
from daemon.tasks.static import serve_directory

REPO = Path(__file__).resolve().parent.parent
PAGES = Path(__file__).resolve().parent / "pages"
NIGHTLOOP = str(Path(sys.executable).parent / "nightloop")


TIERS = ("browser", "model", "process")     # what a test needs beyond the Python process
HEAVY = ("llama_cpp", "torch")               # a unit test loads neither


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tiers (tests/README.md): a test is `browser` when it takes a real Chromium, `model`
    when it runs llama.cpp or torch (`model_server` marks it here), `process` when it starts
    a process — the daemon (`daemon_proc` marks it here), the CLI, lint-imports — and else
    `unit` (marked here). A test that takes the browser fixtures without its mark is
    refused, so `-m 'not browser'` leaves out exactly the tests that need Chromium."""
    unmarked = [item.nodeid for item in items
                if {"browser", "playwright"} & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("browser") is None]
    if unmarked:
        raise pytest.UsageError("mark these tests @pytest.mark.browser: they use a real "
                                "browser:\n  " + "\n  ".join(unmarked))
    for item in items:
        tiers = [tier for tier in TIERS if item.get_closest_marker(tier)]
        if len(tiers) > 1:
            raise pytest.UsageError(f"{item.nodeid} is in one tier, not {tiers}: keep the "
                                    "first (a browser test may run the model too)")
        if not tiers:
            fixtures = set(getattr(item, "fixturenames", ()))
            tier = "model" if "model_server" in fixtures else \
                "process" if {"daemon_proc", "keyring_session"} & fixtures else "unit"
            item.add_marker(getattr(pytest.mark, tier))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """CI's clock (.ci/run): a test that would start after NIGHTLOOP_TEST_DEADLINE (seconds
    since the epoch) is skipped, saying so; one that starts before it runs to its end. So
    the slow suites use what CI's 90 minutes leave, and never fail on CI's clock."""
    deadline = os.environ.get("NIGHTLOOP_TEST_DEADLINE")
    if deadline and time.time() > float(deadline):
        pytest.skip("CI's time for the slow suites ran out before this test")


@pytest.fixture(scope="session", autouse=True)
def matplotlib_font_cache() -> None:
    """matplotlib runs fc-list once per machine to build its font cache, on first import:
    done before any test, so a unit test that draws a chart starts no process of its own."""
    import matplotlib.font_manager  # noqa: F401


@pytest.fixture(autouse=True)
def unit_tier_stays_in_process(request: pytest.FixtureRequest,
                               monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A `unit` test starts no process and loads no model: it fails saying which tier it
    belongs to (a `-m unit` run then stays under a minute)."""
    if request.node.get_closest_marker("unit") is None:
        yield
        return

    def refuse(*args, **kwargs):
        raise AssertionError("a unit test starts no process: mark it process, model or browser")
    monkeypatch.setattr(subprocess, "Popen", refuse)
    loaded = {name for name in HEAVY if name in sys.modules}
    yield
    late = [name for name in HEAVY if name in sys.modules and name not in loaded]
    assert not late, f"a unit test loads no model: this one imported {late}; mark it model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private XDG config/data dirs for this test (and the processes it starts)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("NIGHTLOOP_DB", raising=False)
    monkeypatch.delenv("NIGHTLOOP_PORT", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def pages_url() -> Iterator[str]:
    """Base URL of tests/pages served on 127.0.0.1."""
    with serve_directory(PAGES) as url:
        yield url


def nightloop(*args: str, check: bool = True, timeout: float = 120,
              input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `nightloop` console script with the test's environment."""
    result = subprocess.run([NIGHTLOOP, *args], capture_output=True, text=True,
                            timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"nightloop {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def follow(*args: str, timeout: float = 120) -> dict:
    """`nightloop run|replay ARGS --json`: the episode it printed last (its streamed steps
    under "streamed"), once its exit status is checked to say how the episode ended."""
    result = nightloop(*args, "--json", check=False, timeout=timeout)
    try:
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        episode = lines[-1]["episode"]
    except (ValueError, IndexError, KeyError):
        raise AssertionError(f"nightloop {' '.join(args)} --json printed no episode "
                             f"(exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    streamed = [line["step"] for line in lines[:-1]]
    assert result.returncode == exit_status(episode, streamed), \
        (result.returncode, episode["status"], result.stderr)
    return {**episode, "streamed": streamed}


@dataclass
class DaemonProcess:
    """`nightloop daemon` as a child process on its own port and store."""

    port: int
    db: Path
    log: Path
    proc: subprocess.Popen | None = None

    def start(self, *extra: str, policy: str = "scripted", judge: str = "off",
              preexec_fn=None) -> DaemonProcess:
        seen = self.log.stat().st_size if self.log.exists() else 0
        out = open(self.log, "a")
        self.proc = subprocess.Popen(
            [NIGHTLOOP, "daemon", "--port", str(self.port), "--db", str(self.db),
             "--policy", policy, "--judge", judge, "-v", *extra],
            stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        deadline = time.monotonic() + 20
        while "listening on" not in self.log.read_text()[seen:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"daemon did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, like a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def args(self) -> list[str]:
        return ["--port", str(self.port)]


@pytest.fixture
def daemon_proc(home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(free_port(), home / "store.db", home / "daemon.log").start()
    yield d
    d.stop()


@pytest.fixture
def keyring_session(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A real system keyring for this test and the processes it starts: a D-Bus session bus and
    GNOME Keyring's Secret Service on it, unlocked (the `keyring` package's SecretService
    backend then finds it); the bus's address."""
    import keyring
    from keyring.backends import SecretService, fail
    monkeypatch.setenv("HOME", str(tmp_path))                 # the keyring's files
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))      # ... and its control socket
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, text=True)
    address = bus.stdout.readline().strip()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    keys = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock",
                             "--components=secrets"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    keys.stdin.write("test-only")                            # the keyring's password
    keys.stdin.close()
    try:
        wait_until(_login_keyring_up, timeout=20, what="the Secret Service's login keyring")
        keyring.set_keyring(SecretService.Keyring())    # what keyring finds on such a session
        yield address
    finally:
        for process in (keys, bus):
            process.terminate()
            process.wait(10)
        keyring.set_keyring(fail.Keyring())             # ... and on none (keyring caches
                                                        # what it found: no detecting again)


def _login_keyring_up() -> bool:
    """Our keyring daemon owns the service's name *and* has made its login keyring from the
    password on stdin. Asked earlier, the bus would start a second daemon by D-Bus activation
    (one without the password), and keyring's first write would ask for a collection to be
    created, which needs a prompt that a headless session dismisses ("Prompt dismissed" in CI)."""
    import secretstorage
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import Proxy
    with contextlib.closing(secretstorage.dbus_init()) as connection:
        if not Proxy(message_bus, connection).NameHasOwner("org.freedesktop.secrets")[0]:
            return False                                 # not yet: and don't activate one
        try:
            return not secretstorage.Collection(connection).is_locked()
        except secretstorage.exceptions.ItemNotFoundException:
            return False                                 # the login keyring is being made


@dataclass
class Browser:
    context: object          # playwright BrowserContext
    extension_id: str

    def popup(self):
        page = self.context.new_page()
        page.goto(f"chrome-extension://{self.extension_id}/popup.html")
        return page


@pytest.fixture(scope="session")
def model_server() -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on the shipped model (its `server` extra):
    the base URL of its API."""
    from daemon.core.models import shipped_model
    port = free_port()
    log = open(Path(tempfile.mkdtemp()) / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model",
                             str(shipped_model()), "--port", str(port), "--n_ctx", "4096",
                             "--n_threads", "2"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        def up() -> bool:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"the model server did not start:\n{log.read()}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=1):
                    return True
            except OSError:
                return False
        wait_until(up, timeout=60, what="the model server")
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture(scope="session")
def playwright():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        yield pw


@contextlib.contextmanager
def launch_browser(playwright, daemon_proc: DaemonProcess, tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium with the extension loaded and paired with `daemon_proc`; waits until the
    daemon reports the browser connected."""
    context = launch_with_playwright(playwright.chromium, tmp_path / "profile",
                                     port=daemon_proc.port,
                                     token=load_or_create_token(config_dir()))
    try:
        wait_until(lambda: '"browser_connected": true' in
                   nightloop("status", "--json", *daemon_proc.args(), check=False).stdout,
                   timeout=20, what="the extension to connect to the daemon")
        yield Browser(context, extension_id())
    finally:
        from playwright.sync_api import Error as PlaywrightError
        with contextlib.suppress(PlaywrightError):     # a test may have crashed it on purpose
            context.close()


@pytest.fixture
def browser(playwright, daemon_proc: DaemonProcess, tmp_path: Path) -> Iterator[Browser]:
    with launch_browser(playwright, daemon_proc, tmp_path) as b:
        yield b


def store_files(db: Path) -> list[Path]:
    """Every file the store at `db` wrote: itself, its WAL and SHM, its screenshots."""
    return [p for p in [*db.parent.glob(db.name + "*"), *db.parent.glob(db.name + "*/**/*")]
            if p.is_file()]


def run_async(coro):
    """Run a coroutine to completion on a fresh loop in another thread: Playwright's sync API
    keeps an event loop of its own in the test thread, where asyncio.run is not allowed."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def wait_until(predicate, *, timeout: float = 10, what: str = "condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)

