"""Changing which adapter serves, in a store: the one definition the daemon uses for an
``adapter`` message and the CLI uses when no daemon serves the store."""

from __future__ import annotations

import dataclasses

from daemon.core import protocol as p
from daemon.core.errors import NotFound
from daemon.core.store import Store


async def change_adapter(store: Store, change: p.AdapterChange) -> p.AdapterChange:
    """Apply `change`; the answer with `serving` (None: the base model) and `retired` set.
    NotFound or UsageError, saying why, when there is no such adapter, nothing to roll back,
    or the adapter a rollback names does not serve."""
    if change.change == "promote":
        if await store.adapter(change.adapter_id) is None:
            raise NotFound(f"there is no adapter {change.adapter_id}")
        await store.set_adapter_status(change.adapter_id, "promoted")
        return dataclasses.replace(change, serving=change.adapter_id, retired=None)
    retired, serving = await store.rollback_adapter(change.adapter_id)
    return dataclasses.replace(change, serving=serving.id if serving else None,
                               retired=retired.id)
