"""Where the user's data lands on disk: private to the user.

Folders nightloop creates for it are 0700, and the files in them 0600 (the store: SQLite gives
its WAL and SHM files the store's own mode). A folder the user named that already exists
(``--db /tmp/x.db``) is left as it is; the files nightloop writes into it are still 0600.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path`, created if missing and tightened to 0700 (for folders that are nightloop's own:
    the data folder, a browser profile)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """`path`, created empty if missing, and 0600 either way."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)
    return path


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all, 0600: into a file next to it (mkstemp makes
    it 0600), then renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
