"""The bundled practice sites: a shop, a support form, a train booking, a mail inbox and account
settings, served on 127.0.0.1, with task templates whose values change per seed (templates.py)
and a ground truth read from the page: what the user's actions left in the site's state for
the tab (the ``sites.state`` probe). The pages live in www/; each load shuffles the order of
what it lists and gives its elements fresh ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from daemon.agent.episode import BrowserError
from daemon.bridge.extension_browser import ExtensionBrowser

from ..benchmark import Opened, Outcome, open_started
from ..static import serve_directory
from .templates import TEMPLATES, SiteTask
from .worlds import world

WWW = Path(__file__).with_name("www")


@contextlib.contextmanager
def serve_sites(port: int = 0) -> Iterator[str]:
    """Serve every site, the worlds they load (/api/world?site=&seed=) and a seed's tasks
    (/api/tasks?seed=, for the front page) on `port` (0: a free one); yields the base URL,
    under which each site is a folder: /shop/index.html, /inbox/index.html, ..."""
    api = {"/api/world": lambda q: world(q["site"], int(q["seed"])),
           "/api/tasks": lambda q: [{"template": t.template, "task": t.task, "url": t.url("")}
                                    for t in (TEMPLATES[n].task(int(q["seed"]))
                                              for n in TEMPLATES)]}
    with serve_directory(WWW, api, port) as url:
        yield url


class Sites:
    """The bundled sites for the evaluation runner: a task is a template's name; the agent ends
    its episode, and success is the site's state at the end being what the task asked for."""

    name = "sites"

    def serve(self) -> contextlib.AbstractContextManager[str]:
        return serve_sites()

    async def open(self, browser: ExtensionBrowser, base_url: str, task: str,
                   seed: int) -> _Attempt:
        site_task = TEMPLATES[task].task(seed)
        url = site_task.url(base_url)
        tab_id, _ = await open_started(browser, url, None,
                                       ("sites.state", {"site": site_task.site}))
        return _Attempt(browser, tab_id, url, site_task.task, site_task)


@dataclass
class _Attempt(Opened):
    task: SiteTask
    ends_itself = False

    async def ended(self, tab_id: int | None) -> bool:
        return False

    async def outcome(self) -> Outcome:
        try:
            read = await self.browser.probe(self.tab_id, "sites.state", site=self.task.site)
        except BrowserError as exc:
            return Outcome(False, False, 0.0, f"no site page to read: {exc}")
        if read.get("state") is None:
            return Outcome(False, False, 0.0, "the tab is no longer on the site")
        success, reason = self.task.check(read["state"])
        return Outcome(success, True, float(success), reason,
                       {"template": self.task.template, "state": read["state"]})
