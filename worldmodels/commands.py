"""Options of commands that are not training runs (validate.py, benchmark.py), read the way
training configs are: `--key=value` typed by the dataclass field, "did you mean" on unknown
keys, `--help` listing every option with its type, default and comment.

    @dataclass
    class Options:
        runs: tuple[str, ...] = ()  # run folders
        clips: int = 512  # held-out clips
    args = parse_command(Options, positional="runs")   # validate.py RUN RUN --clips=64
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import sys
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from worldmodels.config_values import ConfigError, describe, parse_value

C = TypeVar("C")


def _field_notes(cls: type) -> dict[str, str]:
    """field name -> the comment after it in the class source (`dim: int = 64  # width`)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # defined in a REPL or by exec: no notes, still works
        return {}
    pattern = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.*)$")
    return {m[1]: m[2] for m in map(pattern.match, source.splitlines()) if m}


def command_help(cls: type, positional: str | None = None) -> str:
    """--help of a command: its docstring, then one line per option (type, default, note)."""
    hints = typing.get_type_hints(cls)
    notes = _field_notes(cls)
    rows = [
        (f"{f.name} (positional words)" if f.name == positional else f"--{f.name}", f)
        for f in dataclasses.fields(cls)
    ]
    width = max(len(name) for name, _ in rows)
    lines = [inspect.cleandoc(cls.__doc__ or cls.__name__), "", "options (--key=value):"]
    for name, f in rows:
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        note = f"  {notes[f.name]}" if f.name in notes else ""
        lines.append(f"  {name:<{width}} {describe(hints[f.name])} = {default!r}{note}")
    return "\n".join(lines)


def parse_command(
    cls: type[C], argv: Sequence[str] | None = None, positional: str | None = None
) -> C:
    """Options of a command that is not a training run (validate.py, benchmark.py).

    `cls` is a flat dataclass of options with defaults; `--key=value` sets a field (typed as
    in `override`), a bare `--flag` sets a bool field to true, and words without `--` fill the
    field named `positional` (a tuple collects them all, any other type takes exactly one).
    `-h`/`--help` prints `command_help` and exits.
    """
    argv = sys.argv[1:] if argv is None else argv
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    words: list[str] = []
    for word in argv:
        if word in ("-h", "--help"):
            print(command_help(cls, positional))
            raise SystemExit(0)
        if not word.startswith("--"):
            words.append(word)
            continue
        key, has_value, text = word[2:].partition("=")
        if key not in names or key == positional:
            close = difflib.get_close_matches(key, [n for n in names if n != positional], n=3)
            hint = f" Did you mean {', '.join('--' + c for c in close)}?" if close else ""
            raise ConfigError(f"unknown option --{key}.{hint} Run with --help to list them.")
        tp = hints[key]
        if not has_value and tp is not bool:
            raise ConfigError(f"--{key} needs a value: --{key}=<{describe(tp)}>")
        try:
            values[key] = parse_value(text if has_value else "true", tp)
        except ValueError as err:
            raise ConfigError(f"--{key} expects {describe(tp)}, got {text!r} ({err})") from None
    if words:
        if positional is None:
            raise ConfigError(
                f"unexpected argument {words[0]!r}: this command takes only --key=value options"
            )
        tp = hints[positional]
        if len(words) > 1 and typing.get_origin(tp) not in (tuple, list):
            raise ConfigError(f"expected at most one {positional}, got {words}")
        try:  # each word parsed as the element type: tuple[str, ...] -> str, str -> str
            parsed = [parse_value(w, _element_type(tp)) for w in words]
        except ValueError as err:
            raise ConfigError(f"{positional} expects {describe(tp)}: {err}") from None
        values[positional] = _collect(tp, parsed)
    return cls(**values)


def _element_type(tp: Any) -> Any:
    """The type of one positional word: X of tuple[X, ...] / list[X], else tp itself."""
    if typing.get_origin(tp) in (tuple, list):
        return (typing.get_args(tp) or (str,))[0]
    return tp


def _collect(tp: Any, parsed: list[Any]) -> Any:
    """Positional words as the field's type: a tuple, a list, or the one value."""
    origin = typing.get_origin(tp)
    return tuple(parsed) if origin is tuple else parsed if origin is list else parsed[0]
