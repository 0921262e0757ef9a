"""MiniWoB++ as a task source: its pages (from the `miniwob` package), suites, and seed splits.

The package ships every task's HTML under ``miniwob/html``; it is installed with --no-deps
(its Python environment code needs gymnasium and selenium, which we do not use) and served as
static files. An episode is seeded and started in the page's main world through the extension's
``miniwob.start`` probe; ``miniwob.state`` reads the ground truth (`WOB_RAW_REWARD_GLOBAL`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

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
TEST_EVERY = 5                  # seeds 0, 5, 10, ... are test seeds; all others train seeds


def html_dir() -> Path:
    """The folder to serve: it holds miniwob/, core/, common/ and flight/."""
    try:
        path = Path(distribution("miniwob").locate_file("miniwob/html"))
    except PackageNotFoundError:
        raise FileNotFoundError("the `miniwob` package is not installed; run `make setup`") \
            from None
    if not (path / "miniwob").is_dir():
        raise FileNotFoundError(f"{path} has no miniwob/ folder; reinstall the miniwob package")
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
    raise ValueError(f"unknown suite {name!r}; choose smoke, core or all")


def check_tasks(names: list[str]) -> list[str]:
    """`names` if they are all MiniWoB++ tasks (and there is one at least), else ValueError."""
    if not names:
        raise ValueError("no MiniWoB++ task named")
    known = {p.stem for p in (html_dir() / "miniwob").glob("*.html")}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown MiniWoB++ task {', '.join(map(repr, unknown))}; "
                         "see `nightloop eval miniwob --help` for the suites")
    return names


def parse_tasks(text: str) -> list[str]:
    """The task names in a comma-separated list (`--tasks a,b`), checked as `check_tasks` does."""
    return check_tasks([t.strip() for t in text.split(",") if t.strip()])


def split_of(seed: int) -> str:
    """The fixed rule: a seed divisible by TEST_EVERY is a test seed, any other a train seed."""
    return "test" if seed % TEST_EVERY == 0 else "train"


def seeds(split: str, count: int, skip: int = 0) -> list[int]:
    """`count` seeds of `split` in order, after its first `skip` (stable across versions)."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose train or test")
    found, seed = [], 0
    while len(found) < skip + count:
        if split_of(seed) == split:
            found.append(seed)
        seed += 1
    return found[skip:]


def task_url(base_url: str, task: str) -> str:
    return f"{base_url}/miniwob/{task}.html"


def task_of(url: str) -> str | None:
    """The task name of a MiniWoB++ page URL (None for other pages)."""
    if "/miniwob/" not in url:
        return None
    return url.split("/miniwob/", 1)[1].split(".html", 1)[0]
