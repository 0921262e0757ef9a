"""The bundled practice sites: a shop, a support form, a train booking, a mail inbox and account
settings, served on 127.0.0.1, with task templates whose values change per seed (templates.py)
and a ground truth read from the page: what the user's actions left in the site's state for
the tab (the ``sites.state`` probe). The pages live in www/; each load shuffles the order of
what it lists and gives its elements fresh ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from daemon.agent.episode import BrowserError
from daemon.bridge.extension_browser import ExtensionBrowser

from ..benchmark import Opened, Outcome, open_started
from ..static import serve_directory
from .templates import TEMPLATES, SiteTask
from .worlds import world

WWW = Path(__file__).with_name("www")


class Drafts(Protocol):
    """A task template: its task for a seed."""
    def task(self, seed: int) -> SiteTask: ...


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
    """Task templates on served pages for the evaluation runner (the bundled sites; the skills
    pages, skills/): a task is a template's name; the agent ends its episode, and success is
    the site's recorded state at the end being what the task asked for."""

    def __init__(self, name: str = "sites", templates: Mapping[str, Drafts] = TEMPLATES,
                 serve: Callable[[], contextlib.AbstractContextManager[str]] = serve_sites):
        self.name, self.templates, self.serve = name, templates, serve

    async def open(self, browser: ExtensionBrowser, base_url: str, task: str,
                   seed: int) -> _Attempt:
        site_task = self.templates[task].task(seed)
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
