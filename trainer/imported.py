"""Adapters trained elsewhere (TRL on a GPU, from `nightloop train export`), brought back.

`import_adapter` converts a peft LoRA folder (``save_pretrained``'s adapter_config.json and
weights) for the served base model into the GGUF llama.cpp loads, registers it as a candidate
whose parent is the serving adapter, and leaves a cycle waiting at its gate phase: `run_cycle`
then measures it against the serving adapter exactly as it measures its own candidates, and
promotes it only if it passes. A folder that is no peft adapter, or one trained for another
base model, is refused before anything is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

from daemon.core.errors import NightloopError
from daemon.core.models import check_model, shipped_model
from daemon.core.settings import Settings, data_dir
from daemon.core.store import Adapter, Store

from .cycle import CycleState
from .starting import serving_adapter


async def import_adapter(settings: Settings, folder: Path) -> Adapter:
    """The registered candidate (GGUF and peft copy under the data dir's adapters/)."""
    from .export import export_adapter
    from .model import load_base, load_lora
    if not (folder / "adapter_config.json").is_file():
        raise NightloopError(f"{folder} holds no peft adapter (no adapter_config.json)")
    base = check_model(Path(settings.model).expanduser() if settings.model
                       else shipped_model()).path
    model, _, arch = await asyncio.to_thread(load_base, base)
    try:
        peft_model = await asyncio.to_thread(load_lora, model, folder)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise NightloopError(f"{folder} does not fit the base model {base.name}: {exc}") from None
    dest = data_dir() / "adapters" / f"{time.strftime('%Y%m%d-%H%M%S')}-imported"
    gguf = await asyncio.to_thread(export_adapter, peft_model, dest / "adapter.gguf", arch)
    await asyncio.to_thread(peft_model.save_pretrained, str(dest / "peft"))
    async with await Store.open(settings.db_path, recover=False) as store:
        serving = await serving_adapter(store, settings)
        candidate = await store.add_adapter(Adapter(
            path=str(gguf), sha256=hashlib.sha256(gguf.read_bytes()).hexdigest(),
            base_model=base.name, parent=serving.id if serving else None,
            config={"imported_from": str(folder.resolve())}))
        CycleState(str(settings.db_path), max((e.id for e in await store.episodes(1)),
                                              default=0),
                   serving.id if serving else None, str(dest), phase="gate",
                   candidate=candidate.id).save()
    return candidate
