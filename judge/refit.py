"""The nightly refit of the judge's calibration from the store's own ground truth.

Practice on MiniWoB++ (and the bundled sites) leaves episodes whose outcome the page itself
reports. The cycle has the judge score a share of them (`Store.unjudged_with_truth`); `refit`
then fits the learned combination (calibration.py) on every episode of the store that has both
a judge row with a calibrated probability and ground truth, from the features those rows
recorded (rows from before a feature was added are left out): no model pass. It
measures the refit leave-task-out and the shipped fit on the same episodes (which the shipped
fit never saw), and adopts the refit, saved beside the store (`calibration.local_path`, which
`calibration.in_use` prefers), only where it ranks them at least as well. Its leave-task-out
figures become its `measured`: the stated precision that decides whether training trusts the
judge for SFT.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daemon.core.store import Store

from . import calibration, evaluate
from .judge import template

MIN_EPISODES = 100          # a refit needs this many judged episodes with ground truth
MIN_TEMPLATES = 4           # ... on this many task templates (leave-task-out needs several)


@dataclass
class Refit:
    episodes: int
    templates: int
    adopted: bool
    why: str
    refit: dict | None = None       # its leave-task-out figures
    shipped: dict | None = None     # the shipped fit's on the same episodes

    def describe(self) -> str:
        figures = "" if self.refit is None else (
            f": leave-task-out AUC {self.refit['auc_leave_task_out']}, accuracy "
            f"{self.refit['accuracy_leave_task_out']} (shipped fit on the same: AUC "
            f"{self.shipped['auc_leave_task_out']}, accuracy "
            f"{self.shipped['accuracy_leave_task_out']})")
        return (f"judge calibration {'refitted' if self.adopted else 'kept'} "
                f"({self.episodes} episodes, {self.templates} templates{figures}): {self.why}")


def measure(probabilities: list[float | None], labels: list[bool],
            groups: list[str]) -> dict:
    """What `probabilities` state, as `judge eval` measures the calibrated scorer."""
    rows = [{"template": g, "truth": float(y), "seconds": {}, "calibrated": p}
            for p, y, g in zip(probabilities, labels, groups)]
    return evaluate.stated(evaluate.summarize(rows, ("calibrated",))["calibrated"])


async def refit(store: Store, path: Path) -> Refit:
    """Refit on `store`'s judged episodes with ground truth; save the fit to `path` when it
    ranks them at least as well as the shipped one (see the module docstring)."""
    records = [(template(url), read, truth)
               for url, details, truth in await store.judged_with_truth()
               if set(calibration.FEATURES) <= set(
                   read := (details.get("calibrated") or {}).get("features") or {})]
    rows = [read for _, read, _ in records]
    labels = [truth > 0 for *_, truth in records]
    groups = [key for key, *_ in records]
    n, templates = len(rows), len(set(groups))
    if n < MIN_EPISODES or templates < MIN_TEMPLATES or len(set(labels)) < 2:
        return Refit(n, templates, False, f"too little ground truth yet (a refit needs "
                                          f"{MIN_EPISODES} episodes on {MIN_TEMPLATES} "
                                          "templates, successes and failures)")
    mine = measure(calibration.leave_task_out(rows, labels, groups), labels, groups)
    shipped = calibration.shipped()
    theirs = measure([shipped.probability(r) for r in rows], labels, groups) if shipped else \
        dict.fromkeys(mine, 0.0)
    if (mine["auc_leave_task_out"] or 0) < (theirs["auc_leave_task_out"] or 0):
        return Refit(n, templates, False, "the shipped fit ranks these episodes better", mine,
                     theirs)
    fit = calibration.fit(rows, labels)
    fit.measured = {"set": f"{store.path.name}: {n} episodes, {sum(labels)} successes, "
                           f"{templates} templates", **mine}
    fit.save(path)
    return Refit(n, templates, True, f"saved to {path}", mine, theirs)
