"""Step screenshots on disk: JPEG files beside the store, never inside it.

Layout: ``<store file>-screenshots/<episode id>/<step index>.jpg`` (like SQLite's ``-wal``), the
folders 0700 and the files 0600 as the store itself. A step names its image relative to that
folder (``Step.screenshot["file"]``); `Store.delete_episodes` deletes an episode's folder with
its rows. A file is written before its step's row, so a crash leaves at most an image no row
names, which goes with its episode.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .files import private_dir


class Screenshots:
    """The screenshot folder of the store at `db`."""

    def __init__(self, db: Path):
        self.root = db.with_name(db.name + "-screenshots")

    def write(self, episode_id: int, index: int, jpeg: bytes) -> str:
        """Store one step's image; its name relative to the folder."""
        name = f"{episode_id}/{index}.jpg"
        private_dir(self.root)
        private_dir(self.root / str(episode_id))
        fd = os.open(self.root / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(jpeg)
        return name

    def path(self, name: str) -> Path:
        """The file of a name `write` returned; ValueError for a name that leaves the folder."""
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"not a screenshot name: {name!r}")
        return path

    def read(self, name: str) -> bytes | None:
        """The image, None when it is gone."""
        try:
            return self.path(name).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def delete(self, episode_ids: list[int]) -> None:
        for episode_id in episode_ids:
            shutil.rmtree(self.root / str(episode_id), ignore_errors=True)
