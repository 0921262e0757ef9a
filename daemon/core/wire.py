"""Typed records from untrusted JSON: the one validator behind the protocol and the action schema.

`from_json(cls, data)` builds a dataclass from a decoded JSON object and raises `InvalidMessage`
naming the first field that is missing or of the wrong type. Supported field types: str, int,
float, bool, dict, list, `Literal[...]`, and any of those `| None`; integers are 64-bit and
floats finite. Unknown keys are ignored so
that a newer peer can add optional fields without breaking an older one.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union

from .errors import InvalidMessage

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(v) for v in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _check(value: Any, tp: Any, where: str) -> Any:
    """Return `value` if it matches `tp`, else raise InvalidMessage mentioning `where`."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        inner = [t for t in options if t is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {tp} for {where}")
        return _check(value, inner[0], where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise InvalidMessage(f"{where} must be one of {_type_name(tp)}, got {value!r}")
        return value
    expected = origin or tp
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if abs(value) < 2 ** 63 else math.inf
    # bool is a subclass of int in Python but never an acceptable int on the wire.
    if expected is int and isinstance(value, bool):
        raise InvalidMessage(f"{where} must be an integer, got {value!r}")
    if not isinstance(value, expected):
        raise InvalidMessage(f"{where} must be {_type_name(expected)}, got {type(value).__name__}")
    # What SQLite and every peer can hold: 64-bit integers, finite numbers (Python's JSON
    # reads NaN and Infinity).
    if expected is int and not -2 ** 63 <= value < 2 ** 63:
        raise InvalidMessage(f"{where} is out of range")
    if expected is float and not math.isfinite(value):
        raise InvalidMessage(f"{where} must be a finite number, got {value!r}")
    return value


def from_json(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass `cls` from the JSON object `data`, validating every declared field."""
    label = where or cls.__name__
    if not isinstance(data, dict):
        raise InvalidMessage(f"{label} must be a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name not in data:
            has_default = (field.default is not dataclasses.MISSING
                           or field.default_factory is not dataclasses.MISSING)
            if has_default:
                continue
            raise InvalidMessage(f"{label} is missing the field {field.name!r}")
        values[field.name] = _check(data[field.name], hints[field.name], f"{label}.{field.name}")
    return cls(**values)


def to_json(record: Any) -> dict[str, Any]:
    """The JSON object for a dataclass record, leaving out fields that are None."""
    return {k: v for k, v in dataclasses.asdict(record).items() if v is not None}
