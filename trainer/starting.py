"""The starting adapter nightloop ships, and which adapter a store's settings serve.

The starting adapter (`starting_adapter/`, RECIPE.md says how it was made and measured) is a
LoRA adapter on the shipped SmolLM2 model, kept as float16 peft weights. A store that has never
had an adapter, under settings that name none and serve the shipped model, registers it as its
promoted adapter on first use: its GGUF is written once from those weights (numpy and gguf, no
torch), beside a copy of them for the nightly cycle to train on, under the data dir's
``adapters/shipped-<hash>/``. From then on it is an adapter like the cycle's own: the next
candidate has it as parent, and rolling it back leaves the bare model serving.

The ``adapter`` setting: empty, the store's serving adapter (so, on a new store, this one);
``none``, the bare model; else a GGUF file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from daemon.core.models import shipped_model
from daemon.core.settings import Settings, data_dir
from daemon.core.store import Adapter, Store, now

FOLDER = Path(__file__).with_name("starting_adapter")
WEIGHTS = "adapter_model.safetensors"


def takes_starting_adapter(settings: Settings, adapters: list[Adapter]) -> bool:
    """Does a store whose adapters are `adapters` take the starting adapter under `settings`?
    Only one that never had an adapter, with `settings` naming none and serving the shipped
    model (the adapter was trained for it)."""
    return not adapters and not settings.adapter and (
        not settings.model
        or Path(settings.model).expanduser().resolve() == shipped_model().resolve())


async def serving_adapter(store: Store, settings: Settings) -> Adapter | None:
    """The store's promoted adapter (None: the bare model serves); the starting adapter,
    registered as promoted first, where the store takes it (`takes_starting_adapter`)."""
    if takes_starting_adapter(settings, await store.adapters()):
        await adopt_starting_adapter(store)
    return await store.promoted_adapter()


async def with_serving_adapter(store: Store, settings: Settings) -> Settings:
    """`settings` with ``adapter`` the GGUF to load: the one named, none for ``none``, else the
    store's serving adapter's (see `serving_adapter`)."""
    if settings.adapter:
        return dataclasses.replace(settings, adapter=settings.adapter_file)
    serving = await serving_adapter(store, settings)
    return dataclasses.replace(settings, adapter=serving.path if serving else "")


async def adopt_starting_adapter(store: Store) -> Adapter | None:
    """Register the starting adapter as the store's promoted adapter, unless the store has
    had one (then None); its files are written once per data dir."""
    gguf = starting_gguf()
    return await store.add_first_adapter(Adapter(
        path=str(gguf), sha256=hashlib.sha256(gguf.read_bytes()).hexdigest(),
        base_model=shipped_model().name, status="promoted", promoted_at=now(),
        config={"source": "shipped", "recipe": "trainer/starting_adapter/RECIPE.md"}))


def starting_gguf() -> Path:
    """The starting adapter's GGUF, with its peft weights beside it, in the data dir (written
    on first use, atomically, so a crash leaves nothing half-written to reuse)."""
    from safetensors.numpy import load_file

    from .export import Architecture, write_adapter
    weights = FOLDER / WEIGHTS
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    folder = data_dir() / "adapters" / f"shipped-{digest}"
    gguf, peft = folder / "adapter.gguf", folder / "peft"
    if not peft.is_dir():
        partial = folder / f"peft.{os.getpid()}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name in (WEIGHTS, "adapter_config.json"):
            shutil.copyfile(FOLDER / name, partial / name)
        try:
            partial.replace(peft)
        except OSError:                 # another process put it there first
            shutil.rmtree(partial)
    if not gguf.is_file():
        alpha = json.loads((FOLDER / "adapter_config.json").read_text())["lora_alpha"]
        write_adapter(load_file(str(weights)), alpha, gguf, Architecture.of_gguf(shipped_model()))
    return gguf
