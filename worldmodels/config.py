"""Configuration: one dataclass per concern, presets, and type-checked `--key=value` overrides.

A chapter describes its whole run as one dataclass of sections, for example

    @dataclass
    class Config:
        model: TokenizerConfig
        data: DataConfig
        run: RunConfig

and a dict of presets (`debug`, `prototype`, `paper`) that build it. `parse_config` picks a
preset and applies overrides from the command line:

    uv run 1.video-tokenizer/train.py --preset debug --run.steps=500 --dim=96

A key is either `section.field` or a bare `field` that exists in exactly one section. An
unknown key, an ambiguous key or a value of the wrong type stops the run with a message that
says what was expected; nothing is silently ignored. Commands that are not training runs
(validate.py, benchmark.py) read their options the same way with `parse_command`, from one
flat dataclass of options.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from worldmodels.config_values import ConfigError, check_value, parse_value
from worldmodels.config_values import describe as _describe

C = TypeVar("C")


DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def require(config: Any, name: str, ok: bool, allowed: str) -> None:
    """Stop with a message naming the key, its value and what is allowed, unless `ok`.

    For `__post_init__` range checks: a bad value fails when the config is built (from
    presets, --key=value or a checkpoint's JSON), before any data is read or step is run.
    """
    if not ok:
        value = getattr(config, name)
        raise ConfigError(f"{type(config).__name__}.{name}={value!r}: expected {allowed}")


def at_least(config: Any, low: int, *names: str, note: str = "") -> None:
    """Each named field must be an integer >= low (`note` says what the bound means)."""
    for name in names:
        value = getattr(config, name)
        allowed = f"an integer >= {low}" + (f" ({note})" if note else "")
        require(config, name, _is_int(value) and value >= low, allowed)


@dataclass
class RunConfig:
    """How to train, shared by every chapter (the model and data sections are the chapter's)."""

    steps: int = 1000  # optimizer steps in the whole run
    batch_size: int = 16  # per process; the global batch is batch_size * world size
    lr: float = 1e-3  # peak learning rate, reached after warmup
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio at the last step
    warmup_steps: int = 100
    weight_decay: float = 0.01  # AdamW, on weights and embeddings (not norms and biases)
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    # 0 = off; else after each step ema = ema_decay * ema + (1 - ema_decay) * weights, and
    # evaluation and ema.safetensors use the average (worldmodels/ema.py)
    ema_decay: float = 0.0
    log_every: int = 10  # steps between lines of the JSONL log
    eval_every: int = 250  # steps between evaluations; 0 evaluates only at the end
    checkpoint_every: int = 250  # steps between checkpoints; the last step is always saved
    keep_checkpoints: int = 2  # the newest this many step folders are kept (>= 1)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # autocast dtype: auto | float32 | bfloat16 | float16
    compile: bool = False  # torch.compile the training step
    num_workers: int = 0  # DataLoader worker processes
    out_dir: str = ""  # empty: runs/<chapter>/<preset>
    resume: bool = False  # continue from the latest checkpoint in out_dir
    allow_config_change: bool = False  # --resume with changed keys that alter the run
    progress: bool = True  # tqdm progress bar

    def __post_init__(self):
        at_least(self, 1, "batch_size", "log_every", "keep_checkpoints")
        at_least(self, 0, "steps", "warmup_steps", "num_workers")
        at_least(self, 0, "eval_every", "checkpoint_every", note="0 = only at the end")
        require(self, "lr", 0 < self.lr < math.inf, "a finite number > 0")
        require(self, "min_lr_ratio", 0 <= self.min_lr_ratio <= 1, "in [0, 1]")
        require(self, "weight_decay", 0 <= self.weight_decay < math.inf, "a finite number >= 0")
        require(self, "grad_clip", 0 <= self.grad_clip < math.inf, ">= 0 (0 = no clipping)")
        require(self, "ema_decay", 0 <= self.ema_decay < 1, "in [0, 1) (0 = no EMA)")
        for name in ("beta1", "beta2"):
            require(self, name, 0 <= getattr(self, name) < 1, "in [0, 1)")
        require(self, "dtype", self.dtype in DTYPE_NAMES, f"one of {DTYPE_NAMES}")
        device_ok = re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(self.device)) is not None
        require(self, "device", device_ok, "auto, cpu, cuda, cuda:N or mps")


def gpu_run(
    steps: int,
    batch_size: int,
    lr: float,
    warmup_steps: int,
    eval_every: int,
    checkpoint_every: int = 5000,
    num_workers: int = 4,
    **changes: Any,
) -> RunConfig:
    """The run section of a GPU preset (`prototype`, `paper`) in every chapter: the schedule
    given here, torch.compile on, DataLoader workers, the dtype picked by the device (bf16
    on CUDA); any other RunConfig field may be passed in `changes`."""
    return RunConfig(
        steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps,
        eval_every=eval_every, checkpoint_every=checkpoint_every, num_workers=num_workers,
        compile=True, **changes,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# Walking a config of sections


def _fields(obj: Any) -> dict[str, tuple[Any, Any]]:
    """field name -> (annotated type, current value) for one dataclass instance."""
    hints = typing.get_type_hints(type(obj))
    return {f.name: (hints[f.name], getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def flat_keys(config: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Every leaf of a nested dataclass as 'section.field' -> (type, value)."""
    out = {}
    for name, (tp, value) in _fields(config).items():
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(value):
            out.update(flat_keys(value, prefix=f"{key}."))
        else:
            out[key] = (tp, value)
    return out


def resolve_key(config: Any, key: str) -> str:
    """Map a dotted or bare key to its full dotted path, or raise a ConfigError that helps."""
    keys = flat_keys(config)
    if key in keys:
        return key
    matches = [k for k in keys if k.split(".")[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"config key {key!r} is ambiguous: write one of {sorted(matches)}")
    names = sorted(set(keys) | {k.split(".")[-1] for k in keys})
    close = difflib.get_close_matches(key, names, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"unknown config key {key!r}.{hint} Run with --help to list every key.")


def _apply(config: Any, changes: Mapping[str, Any]) -> Any:
    """A copy of `config` with dotted paths set; each section is rebuilt once, with all of its
    changes together, so that its `__post_init__` checks see the final values (--dim=30
    --heads=3 must not fail on the intermediate dim=30, heads=4)."""
    direct = {k: v for k, v in changes.items() if "." not in k}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        if "." in key:
            head, rest = key.split(".", 1)
            nested.setdefault(head, {})[rest] = value
    for head, sub in nested.items():
        direct[head] = _apply(getattr(config, head), sub)
    return dataclasses.replace(config, **direct)


def derived(default: Any, source: str) -> Any:
    """A dataclass field that the run derives (from the data, the tokenizer ...), not the user:
    `vocab_size: int = derived(1000, "the tokenizer's codebook")`. Overrides of it are refused
    (`override`), so nothing needs to police a user's value against the derived one."""
    return dataclasses.field(default=default, metadata={"derived": source})


def derived_from(config: Any, path: str) -> str | None:
    """What a dotted field of a nested config is derived from, or None if the user sets it."""
    *sections, name = path.split(".")
    for section in sections:
        config = getattr(config, section)
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    return field.metadata.get("derived")


def override(config: C, overrides: Mapping[str, Any]) -> C:
    """Apply {key: value} overrides; string values are parsed to the field's type."""
    keys = flat_keys(config)
    changes = {}
    for key, value in overrides.items():
        path = resolve_key(config, key)
        source = derived_from(config, path)
        if source is not None:
            raise ConfigError(f"{path} is set from {source}, not by hand; leave it out")
        tp = keys[path][0]
        if isinstance(value, str) and tp is not str:
            try:
                value = parse_value(value, tp)
            except ValueError as err:
                raise ConfigError(
                    f"--{path} expects {_describe(tp)}, got {value!r} ({err})"
                ) from None
        elif not check_value(value, tp):
            raise ConfigError(f"{path} expects {_describe(tp)}, got {value!r}")
        if isinstance(value, list) and typing.get_origin(tp) is tuple:
            value = tuple(value)
        changes[path] = value
    return _apply(config, changes)


def _split_argv(argv: Sequence[str]) -> tuple[str | None, dict[str, str], bool]:
    """Split command-line words into (preset name, {key: text}, help asked)."""
    preset, overrides, want_help = None, {}, False
    words = list(argv)
    while words:
        word = words.pop(0)
        if word in ("-h", "--help"):
            want_help = True
        elif word == "--preset":
            if not words:
                raise ConfigError("--preset needs a name, e.g. --preset debug")
            preset = words.pop(0)
        elif word.startswith("--preset="):
            preset = word.split("=", 1)[1]
        elif word.startswith("--") and "=" in word:
            key, text = word[2:].split("=", 1)
            overrides[key] = text
        elif word.startswith("--"):  # a bare flag means true: --resume, --compile
            overrides[word[2:]] = "true"
        else:
            raise ConfigError(f"cannot read argument {word!r}; write options as --key=value")
    return preset, overrides, want_help


def format_config(config: Any) -> str:
    """One line per key with its type and value, for --help and the start of a run."""
    rows = flat_keys(config)
    width = max(len(k) for k in rows)
    return "\n".join(f"  --{k:<{width}} {v[1]!r}  ({_describe(v[0])})" for k, (v) in rows.items())


def parse_config(
    presets: Mapping[str, Callable[[], C]],
    argv: Sequence[str] | None = None,
    default: str = "debug",
) -> tuple[C, str]:
    """Build a config from `--preset NAME` and `--key=value` words; returns (config, preset)."""
    argv = sys.argv[1:] if argv is None else argv
    preset, overrides, want_help = _split_argv(argv)
    preset = preset or default
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(presets)}")
    config = override(presets[preset](), overrides)
    if want_help:
        print(f"presets: {', '.join(presets)} (default {default})\n")
        print(f"keys of preset {preset!r} (bare names work when unique):")
        print(format_config(config))
        raise SystemExit(0)
    return config, preset


# ---------------------------------------------------------------------------------------
# To and from JSON


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a nested config (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Rebuild a nested config dataclass from `to_dict` output, checking every key and type."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{cls.__name__} has no keys {sorted(unknown)}; valid: {sorted(names)}")
    values = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = from_dict(tp, value)
            continue
        if not check_value(value, tp):
            raise ConfigError(f"{cls.__name__}.{name} expects {_describe(tp)}, got {value!r}")
        values[name] = tuple(value) if typing.get_origin(tp) is tuple else value
    return cls(**values)


# Commands other than training read their options with the same parsing (commands.py).
from worldmodels.commands import command_help, parse_command  # noqa: E402, F401
