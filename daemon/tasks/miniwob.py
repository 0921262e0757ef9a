"""MiniWoB++ as a task source: its pages (from the `miniwob` package), suites, and seed splits.

The package ships every task's HTML under ``miniwob/html``; it is installed with --no-deps
(its Python environment code needs gymnasium and selenium, which we do not use) and served as
static files. An episode is seeded and started in the page's main world through the extension's
``miniwob.start`` probe; ``miniwob.state`` reads the ground truth (`WOB_RAW_REWARD_GLOBAL`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from daemon.agent.episode import BrowserError
from daemon.bridge.extension_browser import ExtensionBrowser
from daemon.core.errors import MissingFile, UsageError

from .benchmark import Opened, Outcome, open_started
from .static import serve_directory

# Five easy tasks: a quick check that everything works.
SMOKE = ("click-button", "click-link", "enter-text", "focus-text", "click-checkboxes")

# About thirty tasks spanning click, type, select, multi-step forms and navigation.
CORE = (
    "click-button", "click-button-sequence", "click-link", "click-checkboxes",
    "click-checkboxes-soft", "click-option", "click-dialog", "click-dialog-2", "click-tab",
    "click-tab-2", "click-test", "click-test-2", "click-widget", "click-collapsible",
    "click-menu", "choose-list", "enter-text", "enter-text-2", "enter-text-dynamic",
    "enter-password", "enter-date", "enter-time", "focus-text", "focus-text-2", "login-user",
    "form-sequence", "form-sequence-2", "navigate-tree", "search-engine", "social-media",
    "email-inbox", "use-autocomplete",
)

# Tasks that need what a DOM-level agent cannot give (drawing, dragging, pixel positions,
# canvas) or that never become ready headless; `all` leaves them out.
UNSUPPORTED = frozenset({
    "bisect-angle", "chase-circle", "circle-center", "click-pie", "click-pie-nodelay",
    "click-shape", "count-shape", "count-sides", "drag-box", "drag-circle", "drag-cube",
    "drag-items", "drag-items-grid", "drag-shapes", "drag-shapes-2", "drag-single-shape",
    "drag-sort-numbers", "draw-circle", "draw-line", "find-midpoint", "grid-coordinate",
    "highlight-text", "highlight-text-2", "hover-shape", "identify-shape", "moving-items",
    "right-angle", "use-colorwheel", "use-colorwheel-2", "visual-addition", "copy-paste",
    "copy-paste-2", "resize-textarea", "text-editor",
})

MAX_TIME_MS = 10 * 60 * 1000    # the page's own time limit; a CPU model needs far more than 10 s


def html_dir() -> Path:
    """The folder to serve: it holds miniwob/, core/, common/ and flight/."""
    try:
        path = Path(distribution("miniwob").locate_file("miniwob/html"))
    except PackageNotFoundError:
        raise MissingFile("the `miniwob` package is not installed; run `make setup`") \
            from None
    if not (path / "miniwob").is_dir():
        raise MissingFile(f"{path} has no miniwob/ folder; reinstall the miniwob package")
    return path


def all_tasks() -> list[str]:
    return sorted(p.stem for p in (html_dir() / "miniwob").glob("*.html")
                  if p.stem not in UNSUPPORTED)


def suite(name: str) -> list[str]:
    if name == "smoke":
        return list(SMOKE)
    if name == "core":
        return list(CORE)
    if name == "all":
        return all_tasks()
    raise UsageError(f"unknown suite {name!r}; choose smoke, core or all")


def check_tasks(names: list[str]) -> list[str]:
    """`names` if they are all MiniWoB++ tasks (and there is one at least), else ValueError."""
    if not names:
        raise UsageError("no MiniWoB++ task named")
    known = {p.stem for p in (html_dir() / "miniwob").glob("*.html")}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown MiniWoB++ task {', '.join(map(repr, unknown))}; "
                         "see `nightloop eval miniwob --help` for the suites")
    return names


def parse_tasks(text: str) -> list[str]:
    """The task names in a comma-separated list (`--tasks a,b`), checked as `check_tasks` does."""
    return check_tasks([t.strip() for t in text.split(",") if t.strip()])


def task_url(base_url: str, task: str) -> str:
    return f"{base_url}/miniwob/{task}.html"


def task_of(url: str) -> str | None:
    """The task name of a MiniWoB++ page URL (None for other pages)."""
    if "/miniwob/" not in url:
        return None
    return url.split("/miniwob/", 1)[1].split(".html", 1)[0]


class MiniWoB:
    """MiniWoB++ for the evaluation runner: as in BrowserGym, the page's state is read after
    every step and the page's own end ends the episode (a click on the START cover would begin
    a new problem and erase the reward); leaving the task page fails it; success is a raw
    reward above 0."""

    name = "miniwob"

    def serve(self) -> contextlib.AbstractContextManager[str]:
        return serve_directory(html_dir())

    async def open(self, browser: ExtensionBrowser, base_url: str, task: str,
                   seed: int) -> _Attempt:
        url = task_url(base_url, task)
        tab_id, state = await open_started(
            browser, url, ("miniwob.start", {"seed": seed, "max_time_ms": MAX_TIME_MS}),
            ("miniwob.state", {}))
        return _Attempt(browser, tab_id, url, state["utterance"])


@dataclass
class _Attempt(Opened):
    ends_itself = True
    state: dict = field(default_factory=dict)

    async def ended(self, tab_id: int | None) -> bool:
        try:
            self.state.update(await self.browser.probe(tab_id, "miniwob.state"))
        except BrowserError as exc:         # BrowserGym ends such an episode too, with 0
            raise BrowserError(f"the agent left the task page ({exc})") from None
        return bool(self.state.get("done"))

    async def outcome(self) -> Outcome:
        if not self.state.get("done"):      # ended by the agent, the limit or an error
            try:
                self.state.update(await self.browser.probe(self.tab_id, "miniwob.state"))
            except BrowserError as exc:
                self.state.update(done=False, reason=f"no task page to read: {exc}")
        done = bool(self.state.get("done"))
        raw = float(self.state.get("raw_reward") or 0.0) if done else 0.0
        return Outcome(raw > 0, done, raw, self.state.get("reason"))
