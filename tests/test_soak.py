"""A short soak (the slow suite; bench/soak.py runs the long one): the daemon and one browser
run scripted episodes back to back on the bundled sites, the browser restarted every 20 and
the daemon once; nothing is lost and memory stays flat within each life."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import run_async

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from soak import soak  # noqa: E402  (bench/ is no package: the same code as the long run)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(1200)
def test_a_short_soak_loses_nothing_and_memory_stays_flat(home):
    found = run_async(soak(home, 60, browser_every=20, memory_every=10, restart_daemon_at=30,
                           say=lambda line: None))
    assert len(found.ran) == 60 and found.lost == []
    assert sum(status == "done" for _, status, _ in found.ran) >= 57
    assert len({c.daemon_life for c in found.checkpoints}) == 2
    assert all(g <= 0.25 for g in found.growth("daemon").values()), found.checkpoints
    assert all(g <= 0.5 for g in found.growth("browser").values()), found.checkpoints
