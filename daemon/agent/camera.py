"""Screenshots of an episode's steps, taken while the policy decides.

Contract: `Camera.start(tab_id, page)` asks the browser for the tab as it is now (the probe
``tab.screenshot``; the extension paints over the page's filled secret fields, the ones
`Element.is_secret` names and every password or card field it finds itself) and returns at once;
the episode loop runs the policy meanwhile and awaits the picture (`Camera.developed`) before it
acts, so the picture shows the page the policy saw, and costs the step only what the policy did
not already cover. `Camera.keep` writes the image beside the store and returns the step's
``screenshot`` record. A picture that cannot be had never fails a step: its record says why.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time

from daemon.core.errors import NightloopError
from daemon.core.observation import Observation
from daemon.core.store import Store

MAX_WIDTH = 1024        # pixels; a 1280-pixel-wide page is scaled down to this
QUALITY = 0.6           # JPEG quality: about 10-60 kB a step


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


class Camera:
    """Takes the pictures of one browser for one store. `browser` has the extension's
    `probe(tab_id, name, **args)`."""

    def __init__(self, browser, store: Store):
        self.browser, self.store = browser, store

    def start(self, tab_id: int | None, page: Observation) -> asyncio.Task[dict]:
        """Begin taking the tab; the task's result is the extension's answer (with ``image``)
        or ``{"skipped": why}``."""
        cover = [e.id for e in page.elements if e.is_secret and e.value]
        return asyncio.create_task(self._take(tab_id, cover))

    async def _take(self, tab_id: int | None, cover: list[int]) -> dict:
        if tab_id is None:
            return {"skipped": "the browser named no tab"}
        try:
            return await self.browser.probe(tab_id, "tab.screenshot", cover=cover,
                                            max_width=MAX_WIDTH, quality=QUALITY)
        except NightloopError as exc:
            return {"skipped": f"the browser did not take it: {exc}"}

    async def developed(self, taking: asyncio.Task[dict]) -> dict:
        """The picture `start` began, with how long the step waited for it (``waited_ms``)."""
        t0 = time.perf_counter()
        shot = await taking
        return {**shot, "waited_ms": _ms(t0)}

    def keep(self, episode_id: int, index: int, shot: dict, element_id: int | None) -> dict:
        """Write the picture as step `index`'s image; the step's record: its file, size, the
        acted-on element's box (image pixels; None when it was not in view), how many fields
        were painted over and what it cost."""
        if "image" not in shot:
            return {"skipped": shot.get("skipped") or "the browser sent no image"}
        t0 = time.perf_counter()
        try:
            jpeg = base64.b64decode(shot["image"], validate=True)
        except (binascii.Error, TypeError):
            return {"skipped": "the browser sent a malformed image"}
        try:
            name = self.store.screenshots.write(episode_id, index, jpeg)
        except OSError as exc:          # a full disk: the step goes on without its picture
            return {"skipped": f"it could not be written: {exc.strerror}"}
        boxes = shot.get("boxes") or {}
        return {"file": name, "width": shot.get("width"), "height": shot.get("height"),
                "bytes": len(jpeg), "box": boxes.get(str(element_id)),
                "covered": shot.get("covered", 0), "capture_ms": shot.get("capture_ms"),
                "encode_ms": shot.get("encode_ms"), "waited_ms": shot.get("waited_ms"),
                "write_ms": _ms(t0)}
