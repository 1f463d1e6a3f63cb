"""Reading one config value: command-line text -> the field's annotated type, and checking a
value from JSON against it. The leaf of the config system (`config.py`, `commands.py`)."""

from __future__ import annotations

import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A bad preset name, override key or value."""


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def describe(tp: Any) -> str:
    if typing.get_args(tp):  # tuple[int, ...], Literal['a', 'b'], float | None
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_value(text: str, tp: Any) -> Any:
    """Convert command-line text to the annotated type `tp` (raises ValueError when it can't)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):  # Optional[X] and X | None
        if text.strip().lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise ValueError(f"unsupported union type {tp}")
        return parse_value(text, inner[0])
    if origin is typing.Literal:
        for option in args:
            if str(option) == text:
                return option
        raise ValueError(f"expected one of {list(args)}, got {text!r}")
    if origin in (tuple, list):
        parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[int, ...]
            values = [parse_value(p, args[0]) for p in parts]
        elif origin is list:
            values = [parse_value(p, args[0] if args else str) for p in parts]
        else:  # fixed-length tuple[float, float]
            if len(parts) != len(args):
                raise ValueError(f"expected {len(args)} comma-separated values, got {text!r}")
            values = [parse_value(p, a) for p, a in zip(parts, args)]
        return tuple(values) if origin is tuple else values
    if tp is bool:
        return _parse_bool(text)
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str:
        return text
    raise ValueError(f"unsupported field type {tp}")


def check_value(value: Any, tp: Any) -> bool:
    """Whether `value` (from JSON or Python) fits the annotated type `tp`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(check_value(value, a) for a in args)
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(check_value(v, a) for v, a in zip(value, args))
        return all(check_value(v, args[0]) for v in value) if args else True
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)
