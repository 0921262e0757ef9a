"""Pictures of the morning after, for the docs: the popup's "Last night" panel and the night's
HTML report, as headless Chromium shows them for a store's last night.

The store is copied first (showing the panel marks the night seen), a daemon serves the copy
with the scripted policy, and Chromium with the extension, paired in a throw-away config dir,
opens the popup. Writes OUT/popup-night.png and OUT/night-report.png.

Usage: python scripts/morning_pictures.py --db STORE [--out docs/images]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NIGHTLOOP = str(Path(sys.executable).parent / "nightloop")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="the store whose last night to show")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="nightloop-morning-"))
    os.environ.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
    from playwright.sync_api import sync_playwright

    from daemon.bridge.launch import find_chromium, launch_with_playwright
    from daemon.bridge.pairing import extension_id, load_or_create_token
    from daemon.core.settings import config_dir
    db = home / "store.db"
    shutil.copy(args.db, db)
    port = free_port()
    log = open(home / "daemon.log", "w")
    daemon = subprocess.Popen([NIGHTLOOP, "daemon", "--db", str(db), "--port", str(port),
                               "--policy", "scripted", "--judge", "off"],
                              stdout=log, stderr=subprocess.STDOUT)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in (home / "daemon.log").read_text():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the daemon did not start:\n{(home / 'daemon.log').read_text()}")
            time.sleep(0.1)
        with sync_playwright() as pw:
            context = launch_with_playwright(pw.chromium, home / "profile", port=port,
                                             token=load_or_create_token(config_dir()))
            popup = context.new_page()
            popup.set_viewport_size({"width": 380, "height": 520})
            popup.goto(f"chrome-extension://{extension_id()}/popup.html")
            popup.wait_for_selector("#night:not([hidden])", timeout=30_000)
            popup.screenshot(path=str(args.out / "popup-night.png"))
            report = home / "night.html"
            subprocess.run([NIGHTLOOP, "night", "--db", str(db), "--report", str(report)],
                           check=True, capture_output=True)
            browser = pw.chromium.launch(executable_path=find_chromium(),
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1000, "height": 1100})
            page.goto(report.as_uri())
            page.screenshot(path=str(args.out / "night-report.png"))
            browser.close()
            context.close()
    finally:
        daemon.terminate()
        daemon.wait(15)
    print(f"wrote {args.out / 'popup-night.png'} and {args.out / 'night-report.png'}")


if __name__ == "__main__":
    main()
