"""Running the daemon in the foreground: store, server, optional browser, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from daemon.agent.episode import Limits
from daemon.agent.policy import Policy, ScriptedPolicy
from daemon.bridge import launch as browser
from daemon.bridge.pairing import extension_origin, load_or_create_token
from daemon.core import maintenance
from daemon.core.errors import NightloopError
from daemon.core.settings import Settings, config_dir
from daemon.core.store import Store
from daemon.core.vault import Vault
from daemon.tasks.sites import serve_sites
from trainer.starting import with_serving_adapter

from . import schedule
from .judging import JudgeQueue
from .server import Daemon

log = logging.getLogger(__name__)
RETENTION_SECONDS = 24 * 3600           # how often the daemon applies screenshot retention


@dataclass
class BrowserOptions:
    profile: Path
    headless: bool


def make_policy(settings: Settings) -> Policy:
    if settings.policy == "scripted":
        return ScriptedPolicy()
    if settings.policy == "llm" and settings.backend == "openai":
        from daemon.agent.server_policy import ServerPolicy
        return ServerPolicy(settings)
    if settings.policy == "llm":
        from daemon.agent.llama_policy import (
            LlamaPolicy,  # loads llama.cpp only when it is needed
        )
        return LlamaPolicy(settings)
    raise ValueError(f"unknown policy {settings.policy!r}")


async def run_daemon(settings: Settings, with_browser: BrowserOptions | None = None,
                     sites: bool = False) -> None:
    """Serve until SIGINT/SIGTERM. Episodes cut short are recorded as interrupted. With
    `sites`, the bundled practice sites are served too (the browser opens on them)."""
    schedule.parse_at(settings.train_at)        # a bad time fails now, not at night
    db, port = settings.db_path, settings.port
    store = await Store.open(db)

    async def promoted_policy() -> Policy:
        """The configured policy with the store's serving adapter, unless the settings name
        one (or ``none``)."""
        chosen = await with_serving_adapter(store, settings) if settings.policy == "llm" \
            else settings
        return await asyncio.to_thread(make_policy, chosen)

    try:
        policy = await promoted_policy()
    except BaseException:
        await store.close()
        raise
    token = load_or_create_token(config_dir())
    daemon = Daemon(store, policy, token=token, extension_origin=extension_origin(),
                    port=port, limits=Limits.of(settings),
                    reload_policy=promoted_policy if settings.policy == "llm" else None,
                    approvals=settings.approvals, approval_timeout=settings.approval_timeout,
                    approval_words=settings.approval_words,
                    screenshots=settings.screenshots == "on",
                    next_night=lambda: schedule.upcoming(settings),
                    notify_after_night=settings.notify_after_night, vault=Vault())
    judging: JudgeQueue | None = None
    if settings.judge == "on":
        from judge.judge import judge_from_settings
        judging = JudgeQueue(store, lambda: judge_from_settings(settings), daemon.idle)
        daemon.finished.append(judging.submit)
    retention: asyncio.Task | None = None
    if settings.screenshots_keep_days or settings.screenshots_max_mb:
        retention = asyncio.create_task(keep_screenshots(settings))
    nightly: asyncio.Task | None = None
    if settings.train_at:
        nightly = asyncio.create_task(schedule.nightly(
            settings, lambda: time.monotonic() if daemon.running else daemon.idle_since))
    chromium: subprocess.Popen | None = None
    served = contextlib.ExitStack()
    try:
        try:
            await daemon.start()
        except OSError as exc:
            raise NightloopError(
                f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); is a daemon already "
                "running (`nightloop status`)? Or choose another port with --port") from None
        print(f"nightloop daemon listening on {daemon.address} (store: {db}, "
              f"policy: {policy.name}, adapter: {policy.adapter or 'none'}, "
              f"judge: {settings.judge})", flush=True)
        if judging:
            await judging.start()
        start = "about:blank"
        if sites:
            try:
                start = served.enter_context(serve_sites(settings.sites_port)) + "/index.html"
            except OSError as exc:
                raise NightloopError(
                    f"cannot serve the practice sites on 127.0.0.1:{settings.sites_port} "
                    f"({exc.strerror}); choose another port with --sites-port") from None
            print(f"practice sites on {start}: try the agent there, nothing leaves your "
                  "machine", flush=True)
        if with_browser:
            chromium = browser.launch(with_browser.profile, port=daemon.port, token=token,
                                      headless=with_browser.headless, url=start)
            mode = "headless (no display found)" if with_browser.headless else "with a window"
            print(f"started Chromium {mode}, profile {with_browser.profile}", flush=True)
        await _until_signalled()
    finally:
        print("nightloop daemon stopping", flush=True)
        if chromium:
            chromium.terminate()
        if judging:
            await judging.close()
        if nightly:
            nightly.cancel()
        if retention:
            retention.cancel()
        await daemon.close()
        await store.close()
        served.close()
        if chromium:
            try:
                chromium.wait(timeout=10)
            except subprocess.TimeoutExpired:
                chromium.kill()


async def keep_screenshots(settings: Settings) -> None:
    """Apply the screenshot retention settings now and once a day."""
    while True:
        folders, freed = await asyncio.to_thread(
            maintenance.prune_screenshots, settings.db_path,
            keep_days=settings.screenshots_keep_days, max_mb=settings.screenshots_max_mb)
        if folders:
            log.info("screenshots of %d episodes deleted (%.1f MB), as retention asks",
                     folders, freed / maintenance.MB)
        await asyncio.sleep(RETENTION_SECONDS)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
