"""Carry a staged bench from one machine to the next.

A benchmark of several nights outlives a session and the machine it ran on, so what its next
stage needs travels in the repository as one archive:

    python bench/carry.py pack OUT ARCHIVE.tar.xz     # after a session's stages
    python bench/carry.py unpack ARCHIVE.tar.xz OUT   # on the next machine, then run the bench

`pack` takes every stage's result (OUT/*.json, OUT/*.partial.jsonl) and, for each home a cycle
trained in (a folder of OUT holding store.db), a consistent copy of its store (SQLite's backup:
the WAL folded in), the files kept beside it (`store.db.*.json`: an unfinished cycle, the gate's
known outcomes, the judge's refit) and its trained adapters' peft weights — with the training
states only while a cycle is unfinished. It leaves out what can be made again or is not read
later: each adapter's GGUF (`unpack` writes it again from the peft weights: the same tensors),
the shipped starting adapter's folder (written again from trainer/starting_adapter/), the
gate's and the measurements' own stores, browser profiles, pairing tokens and logs. The store
keeps adapters by absolute path, so `unpack` restores into the same OUT path (the archive says
which) and refuses another, and refuses to overwrite what OUT already has.
"""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
import sys
import tarfile
import tempfile
from pathlib import Path

MANIFEST = "carried.json"


def homes(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.glob("*/store.db"))


def kept(home: Path) -> list[Path]:
    """What of a cycle's home a later stage needs, besides its store."""
    unfinished = (home / "store.db.cycle.json").exists()
    adapters = [a for a in sorted((home / "data" / "nightloop" / "adapters").glob("*"))
                if not a.name.startswith("shipped-")]
    return [*home.glob("store.db.*.json"),
            *(a / "peft" for a in adapters if (a / "peft").is_dir()),
            *(state for a in adapters for state in a.glob("*-state.pt") if unfinished)]


def rebuild(home: Path) -> int:
    """Write again what `pack` left out of `home`: each adapter's GGUF from its peft weights,
    and the shipped starting adapter's folder. The number of files written."""
    import os

    from safetensors.numpy import load_file

    from daemon.core.models import shipped_model
    from trainer.export import Architecture, write_adapter
    from trainer.starting import starting_gguf
    os.environ["XDG_DATA_HOME"] = str(home / "data")        # where starting_gguf writes
    written = [starting_gguf()]
    for peft in (home / "data" / "nightloop" / "adapters").glob("*/peft"):
        gguf = peft.parent / "adapter.gguf"
        if not gguf.exists():
            alpha = json.loads((peft / "adapter_config.json").read_text())["lora_alpha"]
            write_adapter(load_file(str(peft / "adapter_model.safetensors")), alpha, gguf,
                          Architecture.of_gguf(shipped_model()))
            written.append(gguf)
    return len(written)


def pack(out: Path, archive: Path) -> None:
    out = out.resolve()
    with tarfile.open(archive, "w:xz") as tar, tempfile.TemporaryDirectory() as tmp:
        names = [MANIFEST]
        for path in sorted([*out.glob("*.json"), *out.glob("*.partial.jsonl")]):
            tar.add(path, path.name)
            names.append(path.name)
        for home in homes(out):
            copy = Path(tmp) / f"{home.name}.db"
            with sqlite3.connect(home / "store.db") as src, sqlite3.connect(copy) as dst:
                src.backup(dst)
            tar.add(copy, f"{home.name}/store.db")
            for path in kept(home):
                tar.add(path, str(path.relative_to(out)))
            names.append(f"{home.name}/")
        manifest = json.dumps({"out": str(out), "entries": names}, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    print(f"{archive}: {archive.stat().st_size / 2**20:.1f} MiB, {len(names) - 1} entries "
          f"from {out}")


def unpack(archive: Path, out: Path) -> None:
    out = out.resolve()
    with tarfile.open(archive, "r:xz") as tar:
        manifest = json.loads(tar.extractfile(MANIFEST).read())
        if Path(manifest["out"]) != out:
            sys.exit(f"{archive} was packed from {manifest['out']}: its stores name their "
                     f"adapters by that path; unpack it there")
        clashes = [m.name for m in tar.getmembers()
                   if m.name != MANIFEST and (out / m.name).exists() and m.isfile()]
        if clashes:
            sys.exit(f"{out} already has {', '.join(clashes[:5])}: unpack into an empty folder")
        out.mkdir(parents=True, exist_ok=True)
        tar.extractall(out, members=[m for m in tar.getmembers() if m.name != MANIFEST],
                       filter="data")
    rebuilt = sum(rebuild(home) for home in homes(out))
    print(f"{out}: {len(manifest['entries']) - 1} entries from {archive}, {rebuilt} adapter "
          "files written again")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="OUT → ARCHIVE")
    p.add_argument("out", type=Path)
    p.add_argument("archive", type=Path)
    u = sub.add_parser("unpack", help="ARCHIVE → OUT")
    u.add_argument("archive", type=Path)
    u.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.out, args.archive)
    else:
        unpack(args.archive, args.out)


if __name__ == "__main__":
    main()
