"""Reading a GGUF file's header: its key/value metadata, without loading any tensor.

Arrays (the tokenizer's vocabulary, mostly) are skipped and reported by length only, which keeps
this to a few milliseconds for any model. `GGUFError` says in words why a file is not a usable
GGUF (wrong magic, truncated, unsupported version).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .errors import NightloopError

MAGIC = b"GGUF"
# GGUF value types: id -> struct format (scalars); 8 string, 9 array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

# llama.cpp's `general.file_type` (enum llama_ftype) for the common quantizations.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
              10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
              16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
              22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
              28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16"}


class GGUFError(NightloopError):
    """The file is not a GGUF file nightloop can read."""


@dataclass(frozen=True)
class ArrayInfo:
    """Stands in for an array value: its element type and length, not its contents."""

    type: int
    length: int


def read_metadata(path: Path) -> dict[str, Any]:
    """The file's key/value metadata (arrays as ArrayInfo). Raises GGUFError or OSError."""
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic != MAGIC:
            raise GGUFError(f"{path} is not a GGUF file (it starts with {magic!r}, "
                            f"not {MAGIC!r})")
        version = _unpack(f, "<I")
        if version not in (2, 3):
            raise GGUFError(f"{path} is GGUF version {version}; versions 2 and 3 are supported")
        _tensors, n_kv = _unpack(f, "<Q"), _unpack(f, "<Q")
        if n_kv > 1_000_000:
            raise GGUFError(f"{path} has a corrupt header ({n_kv} metadata entries)")
        return {_string(f): _value(f, _unpack(f, "<I")) for _ in range(n_kv)}


def _unpack(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise GGUFError(f"{f.name} is truncated: its header ends early")
    return struct.unpack(fmt, data)[0]


def _string(f: BinaryIO) -> str:
    length = _unpack(f, "<Q")
    data = f.read(length)
    if len(data) != length:
        raise GGUFError(f"{f.name} is truncated: its header ends early")
    return data.decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        return _unpack(f, _SCALARS[kind])
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item, length = _unpack(f, "<I"), _unpack(f, "<Q")
        if item in _SCALARS:
            f.seek(struct.calcsize(_SCALARS[item]) * length, 1)
        elif item == _STRING:
            for _ in range(length):
                f.seek(_unpack(f, "<Q"), 1)
        else:
            for _ in range(length):
                _value(f, item)
        return ArrayInfo(item, length)
    raise GGUFError(f"{f.name} has an unknown metadata value type {kind}")
