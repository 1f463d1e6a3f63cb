from dataclasses import dataclass, field

import pytest

from worldmodels.config import (
    ConfigError,
    RunConfig,
    from_dict,
    override,
    parse_command,
    parse_config,
    to_dict,
)


@dataclass
class ModelConfig:
    dim: int = 64
    levels: tuple[int, ...] = (8, 5, 5, 5)
    quantizer: str = "fsq"
    dropout: float = 0.0


@dataclass
class DataConfig:
    clip_len: int = 4
    dim_hint: int | None = None


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)


PRESETS = {"debug": Config, "big": lambda: override(Config(), {"dim": 512})}


def test_preset_and_overrides_are_typed():
    config, preset = parse_config(
        PRESETS,
        [
            "--preset",
            "big",
            "--run.steps=7",
            "--levels=4,4,4",
            "--dropout=0.1",
            "--compile",
            "--dim_hint=none",
        ],
    )
    assert preset == "big"
    assert config.model.dim == 512
    assert config.run.steps == 7 and isinstance(config.run.steps, int)
    assert config.model.levels == (4, 4, 4)
    assert config.model.dropout == pytest.approx(0.1)
    assert config.run.compile is True
    assert config.data.dim_hint is None
    assert Config().model.dim == 64  # presets are not mutated


def test_unknown_key_is_rejected_with_a_suggestion():
    with pytest.raises(ConfigError, match="unknown config key 'dimm'.*'dim'"):
        parse_config(PRESETS, ["--dimm=3"])


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigError, match="expects int"):
        parse_config(PRESETS, ["--steps=ten"])
    with pytest.raises(ConfigError, match="true/false"):
        parse_config(PRESETS, ["--compile=maybe"])
    with pytest.raises(ConfigError, match="expects int"):
        override(Config(), {"dim": 1.5})


def test_unknown_preset_and_positional_words():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        parse_config(PRESETS, ["--preset=huge"])
    with pytest.raises(ConfigError, match="--key=value"):
        parse_config(PRESETS, ["steps=3"])


def test_ambiguous_bare_key():
    @dataclass
    class Two:
        a: ModelConfig = field(default_factory=ModelConfig)
        b: ModelConfig = field(default_factory=ModelConfig)

    with pytest.raises(ConfigError, match="ambiguous"):
        override(Two(), {"dim": "3"})
    assert override(Two(), {"b.dim": "3"}).b.dim == 3


def test_json_round_trip_and_bad_keys():
    config = override(Config(), {"levels": "3,3", "steps": "5"})
    data = to_dict(config)
    assert from_dict(Config, data) == config
    data["model"]["colour"] = 1
    with pytest.raises(ConfigError, match="no keys"):
        from_dict(Config, data)
    bad = to_dict(config)
    bad["run"]["steps"] = "5"
    with pytest.raises(ConfigError, match="expects int"):
        from_dict(Config, bad)


def test_help_lists_keys(capsys):
    with pytest.raises(SystemExit):
        parse_config(PRESETS, ["--help"])
    out = capsys.readouterr().out
    assert "--model.dim" in out and "--run.steps" in out


@dataclass
class Options:
    """Score some runs."""

    runs: tuple[str, ...] = ()  # run folders to score
    rollout_clips: int = 96  # held-out clips rolled out
    temperature: float | None = None  # None: the run's own
    figures: str = ""  # also copy the pictures here
    export: bool = False  # write a stand-alone copy


def test_command_options_are_typed_and_positional_words_collected():
    options = parse_command(
        Options,
        ["a", "--rollout_clips=12", "b", "--temperature=2", "--export", "--figures=x/y"],
        positional="runs",
    )
    assert options == Options(("a", "b"), 12, 2.0, "x/y", True)
    assert parse_command(Options, [], positional="runs") == Options()
    assert parse_command(Options, ["--temperature=none", "--export=false"]) == Options()


def test_command_rejects_unknown_keys_bare_values_and_stray_words():
    with pytest.raises(ConfigError, match="unknown option --rollout-clips.*--rollout_clips"):
        parse_command(Options, ["--rollout-clips=96"], positional="runs")
    with pytest.raises(ConfigError, match="expects int"):
        parse_command(Options, ["--rollout_clips=many"])
    with pytest.raises(ConfigError, match="--figures needs a value"):
        parse_command(Options, ["--figures", "x"], positional="runs")
    with pytest.raises(ConfigError, match="unexpected argument 'a'"):
        parse_command(Options, ["a"])  # no positional field named: words are an error
    with pytest.raises(ConfigError, match="unknown option --runs"):
        parse_command(Options, ["--runs=a"], positional="runs")


def test_command_single_positional():
    @dataclass
    class One:
        run: str = "default"
        clips: int = 8

    assert parse_command(One, ["r1"], positional="run") == One("r1")
    with pytest.raises(ConfigError, match="at most one run"):
        parse_command(One, ["r1", "r2"], positional="run")


def test_command_help_lists_options_types_defaults_and_notes(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_command(Options, ["--help"], positional="runs")
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Score some runs.")
    assert "--rollout_clips" in out and "int = 96" in out and "held-out clips rolled out" in out
    assert "runs (positional words)" in out and "--runs" not in out
