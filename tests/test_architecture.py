"""The import contracts of pyproject.toml (import-linter) hold for the tree, and they do catch
what they are there for: a judge reaching into the daemon, a lower layer importing a higher."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.process


LINT = str(Path(sys.executable).parent / "lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT, "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root)})


def test_the_tree_keeps_every_contract():
    run = lint(REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("judge/render.py", "import daemon.service.server", "The judge builds on the core"),
    ("trainer/data.py", "import daemon.cli.main", "never imports the daemon proper"),
    ("daemon/core/actions.py", "import daemon.agent.episode", "Dependencies point one way"),
    ("daemon/tasks/oracle.py", "import judge.rules", "know nothing of each other"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, broken):
    for part in ("daemon", "judge", "trainer"):
        shutil.copytree(REPO / part, tmp_path / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}\n")
    run = lint(tmp_path)
    assert run.returncode != 0 and broken in run.stdout and "BROKEN" in run.stdout, run.stdout
