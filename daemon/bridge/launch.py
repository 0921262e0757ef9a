"""Starting a Chromium with the nightloop extension loaded and paired.

The extension folder is copied into the browser profile together with a pairing.json (port and
token), so the copy pairs by itself; its id is the same as the original's because manifest.json
pins it with a `key`. `chromium_args` is shared by `nightloop browser` and the test harness
(which drives the same browser through Playwright).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from daemon.core.errors import MissingFile
from daemon.core.files import private_dir

from .pairing import EXTENSION_DIR, PAIRING_FILE, write_pairing_file

CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser",
              "google-chrome", "google-chrome-stable")

# Quiet, private and offline-friendly: no sync, no background requests, no first-run UI.
BASE_FLAGS = (
    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-quic",
    "--disable-dev-shm-usage",
)


def find_chromium() -> str:
    """The browser executable: Debian's real binary first (not its wrapper), then PATH."""
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise MissingFile("no Chromium or Chrome found; install one (`make setup` installs "
                            "Debian's chromium) or put it on PATH")


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def prepare_extension(profile: Path, port: int, token: str) -> Path:
    """Copy the extension into the profile and pair the copy with this daemon."""
    target = profile / "nightloop-extension"
    shutil.copytree(EXTENSION_DIR, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(PAIRING_FILE))
    write_pairing_file(target, port, token)
    return target


def chromium_args(extension: Path, *, headless: bool) -> list[str]:
    """Flags for a browser that loads only our extension (no executable, no profile)."""
    args = [*BASE_FLAGS, f"--disable-extensions-except={extension}",
            f"--load-extension={extension}"]
    if headless:
        args += ["--headless", "--disable-gpu"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")     # Chromium refuses to run as root with its sandbox
    return args


def launch(profile: Path, *, port: int, token: str, headless: bool,
           url: str = "about:blank") -> subprocess.Popen:
    """Start the browser as a child process; its output goes to <profile>/chromium.log."""
    private_dir(profile)
    extension = prepare_extension(profile, port, token)
    log = open(profile / "chromium.log", "ab")
    return subprocess.Popen(
        [find_chromium(), f"--user-data-dir={profile}",
         *chromium_args(extension, headless=headless), url],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def launch_with_playwright(chromium_type, profile: Path, *, port: int, token: str,
                           headless: bool = True):
    """The same browser through Playwright (tests, benchmarks, evaluation runs).

    `chromium_type` is `playwright.chromium` from the sync or the async API; this returns what
    its `launch_persistent_context` returns (a context, or an awaitable of one).
    """
    extension = prepare_extension(private_dir(profile), port, token)
    return chromium_type.launch_persistent_context(
        str(profile), executable_path=find_chromium(), headless=headless,
        args=chromium_args(extension, headless=False))   # Playwright adds its own --headless
