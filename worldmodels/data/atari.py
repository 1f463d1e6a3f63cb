"""Atari episodes from the Arcade Learning Environment, recorded once, served as clips.

The ROMs ship inside the `ale-py` wheel, so nothing is fetched: the first use plays
each game with a random "sticky" policy and writes the episodes under
`<repo>/data/atari/<name>/`, where `<name>` is derived from every setting (two settings
never share a folder). Later uses read the shards back.

What one recorded step holds (frameskip 4: one step = 4 emulator frames = 1/15 s):

    frames[t]   uint8 (H, W, 3) RGB, the screen (210 x 160) area-downsampled to H x W
    actions[t]  the action taken *at* frames[t]; it produces frames[t + 1]
    rewards[t]  float32, the reward that action earned

Actions are stored as indices into ALE's full 18-action set (`ACTION_MEANINGS`), so one
vocabulary (A = 18) means the same thing in every game; the policy only samples the
game's own minimal action set. It keeps each action for a geometric number of steps
(mean `sticky_mean`) so the screen moves as it would under a player. Games with a FIRE
button press it at the start and after each lost life (Breakout serves only on FIRE).

Episodes that differ. ALE resets deterministically, so without care every episode of a
game replays the same opening and a "held-out" episode repeats training frames exactly
(format 1 did: 14-39% of the val frames of five games were pixel-identical to a training
frame). Two sources of randomness keep episodes apart, as Machado et al. (2018) recommend:
ALE v5's sticky actions (`repeat_action_probability` = 0.25: with that probability the
emulator repeats the previous action instead of the one given, seeded per episode) and a
random number of no-ops at reset (0..`noop_max`, not recorded). `worldmodels.data.leakage`
measures what is left, and a test fails if a val or held-out-game window equals a training
window.

Splits: "train" and "val" are different episodes (different seeds) of the training
games; "heldout_game" is a game never seen in training, for generalisation tests.

On disk: one `<split>-<game>-<episode>.npz` shard per episode (zip, deflate; written to a
temporary file then renamed, with fixed zip timestamps so the same settings give the same
bytes), and `manifest.json`, written last, that lists the shards. A folder without a
manifest is an interrupted recording: the next use resumes it, keeping finished shards.

    uv run python -m worldmodels.data.atari --preset debug
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import sys
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from tqdm.auto import tqdm

FORMAT_VERSION = 2  # 2: sticky actions 0.25 + no-op starts, more val episodes
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "data" / "atari"
SPLITS = ("train", "val", "heldout_game")
# ALE's full action set, index = `ale_py.Action` value (checked against ale-py in the tests).
ACTION_MEANINGS = (
    "NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT",
    "DOWNLEFT", "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE",
    "DOWNRIGHTFIRE", "DOWNLEFTFIRE",
)  # fmt: skip
NUM_ACTIONS = len(ACTION_MEANINGS)  # A = 18
FIRE = ACTION_MEANINGS.index("FIRE")
STALE_SECONDS = 600  # a temporary file this old belongs to a recording that was killed


@dataclass(frozen=True)
class AtariConfig:
    """What to record. Episode counts are per game; `max_steps` caps each episode.

    An episode ends at the game's own end (all lives lost, clock out) or at `max_steps`,
    whichever comes first, so a split holds at most episodes * max_steps frames per game.
    """

    games: tuple[str, ...] = ("Pong", "Breakout", "MsPacman", "SpaceInvaders", "Freeway", "Enduro")
    heldout_game: str | None = "Boxing"  # never in train/val; None: no "heldout_game" split
    train_episodes: int = 8
    val_episodes: int = 8  # Breakout's random-play episodes are short: 8 give > 1,000 steps
    heldout_episodes: int = 8  # >= 8 episodes, so a bootstrap over episodes means something
    max_steps: int = 320  # agent steps (each = `frameskip` emulator frames)
    frame_size: int = 64  # H = W, pixels
    frameskip: int = 4
    sticky_mean: float = 4.0  # mean number of steps an action is held (geometric)
    repeat_action_probability: float = 0.25  # ALE v5's sticky actions (Machado et al. 2018)
    noop_max: int = 30  # 0..noop_max no-ops after reset, not recorded: varied starts
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "games", tuple(self.games))  # a list would hash differently
        object.__setattr__(self, "sticky_mean", float(self.sticky_mean))  # 4 and 4.0: one name
        p = float(self.repeat_action_probability)
        object.__setattr__(self, "repeat_action_probability", p)
        if not self.games:
            raise ValueError("AtariConfig.games is empty; name at least one training game")
        if len(set(self.games)) != len(self.games):
            raise ValueError(f"AtariConfig.games has duplicates: {self.games}")
        if self.heldout_game in self.games:
            raise ValueError(
                f"AtariConfig.heldout_game={self.heldout_game!r} is also a training game; "
                "a held-out game must not be in `games`"
            )
        for field in ("train_episodes", "val_episodes", "heldout_episodes", "noop_max"):
            if getattr(self, field) < 0:
                raise ValueError(f"AtariConfig.{field} must be >= 0, got {getattr(self, field)}")
        for field in ("max_steps", "frame_size", "frameskip"):
            if getattr(self, field) < 1:
                raise ValueError(f"AtariConfig.{field} must be >= 1, got {getattr(self, field)}")
        if self.sticky_mean < 1:
            raise ValueError(f"AtariConfig.sticky_mean must be >= 1 step, got {self.sticky_mean}")
        if not 0.0 <= self.repeat_action_probability < 1.0:
            raise ValueError(
                "AtariConfig.repeat_action_probability must be in [0, 1), "
                f"got {self.repeat_action_probability}"
            )

    @property
    def game_names(self) -> tuple[str, ...]:
        """Every game of the recording; an item's `game` indexes this tuple."""
        return self.games + ((self.heldout_game,) if self.heldout_game else ())

    @property
    def name(self) -> str:
        """Folder name: readable summary + hash of every setting and the format version."""
        settings = json.dumps([FORMAT_VERSION, dataclasses.asdict(self)], sort_keys=True)
        digest = hashlib.sha256(settings.encode()).hexdigest()[:10]
        return f"{len(self.games)}games-{self.frame_size}px-seed{self.seed}-{digest}"


PRESETS = {
    # ~2,500 frames per training game (Breakout fewer: random play loses its lives fast).
    "debug": AtariConfig(),
    "full": AtariConfig(train_episodes=16, val_episodes=8, heldout_episodes=6, max_steps=1000),
}


def resolve_config(config: AtariConfig | str | None) -> AtariConfig:
    """None -> the "debug" preset; a string -> that preset; an AtariConfig -> itself."""
    if config is None:
        return PRESETS["debug"]
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown Atari preset {config!r}; choose one of {sorted(PRESETS)}")
        return PRESETS[config]
    if not isinstance(config, AtariConfig):
        raise TypeError(f"config must be an AtariConfig, a preset name or None, got {config!r}")
    return config


# ----------------------------------------------------------------------------- recording


def _gym():
    """gymnasium with the ALE environments registered (imported on demand: it is slow)."""
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    return gymnasium


def available_games() -> tuple[str, ...]:
    """Every game ale-py ships, by its gymnasium name ("Pong", "MsPacman", ...)."""
    ids = (key for key in _gym().registry if key.startswith("ALE/") and key.endswith("-v5"))
    names = (key[len("ALE/") : -len("-v5")] for key in ids)
    return tuple(sorted(names))


def check_games(config: AtariConfig) -> None:
    """Raise a ValueError naming any game of `config` that ale-py does not ship."""
    valid = available_games()
    unknown = [game for game in config.game_names if game not in valid]
    if unknown:
        raise ValueError(f"unknown Atari game(s) {unknown}; ale-py ships: {', '.join(valid)}")


@dataclass(frozen=True)
class _Episode:
    split: str
    game: str
    index: int  # episode number within (split, game)
    seed: int  # seeds both the emulator and the policy

    @property
    def file(self) -> str:
        return f"{self.split}-{self.game}-{self.index:03d}.npz"


def _episode_seed(config: AtariConfig, split: str, game: str, index: int) -> int:
    """A 32-bit seed unique to (seed, split, game, episode); crc32 keeps it stable across runs
    and independent of the other games in the list."""
    key = [config.seed, SPLITS.index(split), zlib.crc32(game.encode()), index]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def plan_episodes(config: AtariConfig) -> list[_Episode]:
    """Every episode the recording holds, in recording order."""
    counts = {"train": config.train_episodes, "val": config.val_episodes}
    plan = [
        _Episode(split, game, i, _episode_seed(config, split, game, i))
        for split in ("train", "val")
        for game in config.games
        for i in range(counts[split])
    ]
    if config.heldout_game:
        game = config.heldout_game
        plan += [
            _Episode("heldout_game", game, i, _episode_seed(config, "heldout_game", game, i))
            for i in range(config.heldout_episodes)
        ]
    return plan


def _downsample(screen: np.ndarray, size: int) -> np.ndarray:
    """(210, 160, 3) uint8 -> (size, size, 3) uint8 by area averaging (PIL's box filter):
    each output pixel is the mean of the screen pixels it covers, so thin objects fade
    instead of flickering in and out as they would under nearest-neighbour sampling."""
    return np.asarray(Image.fromarray(screen).resize((size, size), Image.Resampling.BOX))


def record_episode(env, seed: int, config: AtariConfig) -> dict[str, np.ndarray]:
    """Play one episode with the sticky random policy.

    Returns frames (T, H, W, 3) uint8, actions (T,) uint8 (full-set indices), rewards (T,)
    float32, where actions[t] is taken at frames[t]. The last screen of an episode that
    ends before `max_steps` is dropped: no action follows it.
    """
    policy = np.random.default_rng(seed)
    minimal = np.array([action.value for action in env.unwrapped.ale.getMinimalActionSet()])
    can_fire = FIRE in minimal
    screen, info = env.reset(seed=seed)
    for _ in range(int(policy.integers(config.noop_max + 1))):  # a varied, unrecorded start
        screen, _, terminated, truncated, info = env.step(0)  # NOOP
        if terminated or truncated:
            screen, info = env.reset()
    lives = info.get("lives", 0)
    frames, actions, rewards = [], [], []
    action, hold = 0, 0
    fire_pending = can_fire  # press FIRE to start (and after a lost life), see module doc
    for _ in range(config.max_steps):
        if hold == 0:
            # hold ~ Geometric(p = 1 / sticky_mean): P(hold = k) = (1 - p)^(k-1) p, mean 1/p
            action = int(minimal[policy.integers(len(minimal))])
            hold = int(policy.geometric(1.0 / config.sticky_mean))
        hold -= 1
        taken = FIRE if fire_pending else action
        frames.append(_downsample(screen, config.frame_size))
        actions.append(taken)
        screen, reward, terminated, truncated, info = env.step(taken)
        rewards.append(reward)
        fire_pending = can_fire and info.get("lives", 0) < lives
        lives = info.get("lives", 0)
        if terminated or truncated:
            break
    return {
        "frames": np.stack(frames),
        "actions": np.array(actions, dtype=np.uint8),
        "rewards": np.array(rewards, dtype=np.float32),
    }


def _make_env(game: str, config: AtariConfig):
    return _gym().make(
        f"ALE/{game}-v5",
        frameskip=config.frameskip,
        repeat_action_probability=config.repeat_action_probability,
        full_action_space=True,  # env.step takes full-set indices; we still sample the minimal set
        max_episode_steps=None,
    )


def write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """Write `arrays` as a deflate-compressed .npz (readable by np.load) and return its sha256.

    np.savez_compressed stamps each member with the current time, so two identical
    recordings would differ in bytes; here every member gets the zip epoch (1980-01-01).
    The bytes go to a temporary file that is renamed over `path` only once complete.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.ascontiguousarray(array), allow_pickle=False)
    data = buffer.getvalue()
    _write_bytes_atomic(Path(path), data)
    return hashlib.sha256(data).hexdigest()


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic on POSIX and Windows: readers see old or new, never half


def load_shard(path: Path) -> dict[str, np.ndarray]:
    """Read one episode shard; a damaged file raises a ValueError that names it."""
    try:
        with np.load(path, allow_pickle=False) as shard:
            arrays = {key: shard[key] for key in ("frames", "actions", "rewards")}
    except FileNotFoundError:
        raise
    except Exception as error:  # zipfile.BadZipFile, zlib.error, KeyError, ValueError, ...
        raise ValueError(
            f"Atari shard {path} is corrupt ({type(error).__name__}: {error}); delete it and "
            "it will be re-recorded on next use"
        ) from error
    frames, actions = arrays["frames"], arrays["actions"]
    if frames.ndim != 4 or frames.dtype != np.uint8 or len(actions) != len(frames):
        raise ValueError(
            f"Atari shard {path} is corrupt (frames {frames.shape} {frames.dtype}, "
            f"{len(actions)} actions); delete it and it will be re-recorded on next use"
        )
    return arrays


def _reuse_shard(path: Path) -> dict | None:
    """A finished shard left by an interrupted recording, or None if absent or damaged."""
    if not path.exists():
        return None
    try:
        shard = load_shard(path)
    except ValueError:
        return None
    return _shard_entry(shard, hashlib.sha256(path.read_bytes()).hexdigest())


def _shard_entry(arrays: dict[str, np.ndarray], sha256: str) -> dict:
    return {
        "frames": len(arrays["actions"]),
        "return": float(arrays["rewards"].sum()),
        "sha256": sha256,
    }


def record(
    config: AtariConfig | str | None = None, root: Path | str | None = None, progress: bool = True
) -> dict:
    """Record every episode of `config` into `root/<config.name>/` and return the manifest.

    Shards already there (from an interrupted run) are kept; the manifest is written last.
    """
    config = resolve_config(config)
    check_games(config)
    folder = Path(root or DEFAULT_ROOT) / config.name
    folder.mkdir(parents=True, exist_ok=True)
    for tmp in folder.glob(".*.tmp"):
        # half-written by a killed recording; a live one (another process) writes in < 1 s
        if time.time() - tmp.stat().st_mtime > STALE_SECONDS:
            tmp.unlink(missing_ok=True)
    start = time.perf_counter()
    plan = plan_episodes(config)
    envs: dict[str, object] = {}
    shards = []
    bar = tqdm(plan, desc=f"Recording Atari {config.name}", unit="episode", disable=not progress)
    for episode in bar:
        path = folder / episode.file
        entry = _reuse_shard(path)
        if entry is None:
            if episode.game not in envs:
                envs[episode.game] = _make_env(episode.game, config)
            arrays = record_episode(envs[episode.game], episode.seed, config)
            entry = _shard_entry(arrays, write_npz_atomic(path, arrays))
        bar.set_postfix(split=episode.split, game=episode.game, frames=entry["frames"])
        shards.append({**dataclasses.asdict(episode), "file": episode.file, **entry})
    for env in envs.values():
        env.close()
    manifest = _manifest(config, shards, seconds=time.perf_counter() - start)
    _write_bytes_atomic(folder / "manifest.json", json.dumps(manifest, indent=1).encode())
    return manifest


def _manifest(config: AtariConfig, shards: list[dict], seconds: float) -> dict:
    import ale_py

    totals = {split: [s["frames"] for s in shards if s["split"] == split] for split in SPLITS}
    return {
        "format_version": FORMAT_VERSION,
        "name": config.name,
        "settings": dataclasses.asdict(config),
        "game_names": list(config.game_names),
        "action_meanings": list(ACTION_MEANINGS),
        "episodes": {split: len(lengths) for split, lengths in totals.items()},
        "frames": {split: sum(lengths) for split, lengths in totals.items()},
        "record_seconds": round(seconds, 2),
        "ale_py_version": ale_py.__version__,
        "shards": shards,
    }


MANIFEST_KEYS = ("game_names", "shards")
SHARD_KEYS = ("file", "split", "game", "frames", "sha256")


def _check_manifest(manifest, path: Path) -> None:
    """A manifest missing a key stops with the file and the key, not a bare KeyError."""
    fix = "delete it to re-record (finished shards are kept)"
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} is corrupt (expected a JSON object); {fix}")
    for key in MANIFEST_KEYS:
        if key not in manifest:
            raise ValueError(f"{path} lacks the key {key!r}; {fix}")
    for index, shard in enumerate(manifest["shards"]):
        missing = [key for key in SHARD_KEYS if not isinstance(shard, dict) or key not in shard]
        if missing:
            raise ValueError(f"{path}: shards[{index}] lacks the key(s) {missing}; {fix}")


def check_shard_digest(path: Path, expected: str) -> None:
    """The shard's bytes hash to the manifest's sha256 (a zeroed or swapped file does not)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ValueError(
            f"Atari shard {path} is corrupt: its sha256 {digest[:12]}... is not the "
            f"manifest's {expected[:12]}... (changed after recording); delete it and it will "
            "be re-recorded on next use"
        )


def ensure_recorded(
    config: AtariConfig | str | None = None, root: Path | str | None = None, progress: bool = True
) -> tuple[Path, dict]:
    """The recording's folder and manifest, recording (or finishing) it first if needed."""
    config = resolve_config(config)
    folder = Path(root or DEFAULT_ROOT) / config.name
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{manifest_path} is corrupt ({error}); delete it to re-record (finished "
                "shards are kept)"
            ) from error
        _check_manifest(manifest, manifest_path)
        if all((folder / shard["file"]).exists() for shard in manifest["shards"]):
            return folder, manifest
    return folder, record(config, root, progress)


# ----------------------------------------------------------------------------- dataset


class AtariClips(torch.utils.data.Dataset):
    """Clips of `clip_len` consecutive steps of one split, never crossing an episode.

    Item: dict(
        frames=(T, C, H, W) float32 in [0, 1] (C = 3, RGB),
        actions=(T,) int64 in [0, 18), actions[t] taken at frames[t] (it leads to frames[t+1]),
        game=int, index into `game_names`,
    )
    Clips start every `stride` steps inside each episode; in "val" and "heldout_game", a clip
    whose frames equal `clip_len` consecutive training frames is left out (counted in
    `duplicates_dropped`), so no evaluation clip was trained on (`keep_training_windows=True`
    serves every clip, e.g. to tokenise whole episodes). All frames of the split are
    kept in memory as uint8 (64 x 64 x 3 = 12 KiB per frame). The recording is made on
    first use (see the module docstring); `config` is an AtariConfig, a preset name, or
    None for the "debug" preset. `games` keeps only those games of the split.
    """

    num_actions = NUM_ACTIONS
    action_meanings = ACTION_MEANINGS

    def __init__(
        self,
        split: str,
        clip_len: int,
        config: AtariConfig | str | None = None,
        root: Path | str | None = None,
        stride: int = 1,
        games: Sequence[str] | None = None,
        progress: bool = True,
        keep_training_windows: bool = False,
    ):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        if clip_len < 1 or stride < 1:
            raise ValueError(f"clip_len and stride must be >= 1, got {clip_len} and {stride}")
        self.config = resolve_config(config)
        if split == "heldout_game" and not self.config.heldout_game:
            raise ValueError("split 'heldout_game' needs AtariConfig.heldout_game, which is None")
        self.split, self.clip_len, self.stride = split, clip_len, stride
        self.folder, manifest = ensure_recorded(self.config, root, progress)
        self.game_names = tuple(manifest["game_names"])
        shards = [shard for shard in manifest["shards"] if shard["split"] == split]
        shards = self._keep_games(shards, games)
        self._frames, self._actions, self.episode_games = self._load(shards)
        self.episode_lengths = [len(actions) for actions in self._actions]
        self._index = self._clip_index()
        self.duplicates_dropped = 0  # evaluation clips equal to a training window, left out
        if split != "train" and not keep_training_windows:
            self._drop_training_windows(manifest, [shard["file"] for shard in shards])

    def _keep_games(self, shards: list[dict], games: Sequence[str] | None) -> list[dict]:
        if games is None:
            return shards
        in_split = sorted({shard["game"] for shard in shards}, key=self.game_names.index)
        unknown = [game for game in games if game not in in_split]
        if unknown:
            raise ValueError(
                f"unknown game(s) {unknown} for split {self.split!r}; it holds: {in_split}"
            )
        return [shard for shard in shards if shard["game"] in games]

    def _load(self, shards: list[dict]):
        frames, actions, episode_games = [], [], []
        for shard in shards:
            path = self.folder / shard["file"]
            if path.exists():  # (a missing file is named by load_shard)
                check_shard_digest(path, shard["sha256"])  # once per shard, when it is read
            arrays = load_shard(path)
            if len(arrays["actions"]) != shard["frames"]:
                raise ValueError(
                    f"Atari shard {path} holds {len(arrays['actions'])} steps but the manifest "
                    f"says {shard['frames']}; delete it and it will be re-recorded on next use"
                )
            frames.append(np.ascontiguousarray(rearrange(arrays["frames"], "t h w c -> t c h w")))
            actions.append(arrays["actions"].astype(np.int64))
            episode_games.append(self.game_names.index(shard["game"]))
        return frames, actions, episode_games

    def _clip_index(self) -> np.ndarray:
        """(num_clips, 2) int64 rows of (episode, first step)."""
        rows = [
            np.stack([np.full(len(starts), e), starts], axis=1)
            for e, length in enumerate(self.episode_lengths)
            if len(starts := np.arange(0, length - self.clip_len + 1, self.stride))
        ]
        if not rows:
            longest = max(self.episode_lengths, default=0)
            raise ValueError(
                f"clip_len={self.clip_len} is longer than every episode of split "
                f"{self.split!r} (longest: {longest} steps); lower clip_len or raise "
                "AtariConfig.max_steps"
            )
        return np.concatenate(rows).astype(np.int64)

    def _drop_training_windows(self, manifest: dict, files: list[str]) -> None:
        """Held out means held out: leave out every clip whose frames equal, byte for byte,
        `clip_len` consecutive frames of a training episode (see worldmodels.data.leakage)."""
        from worldmodels.data.leakage import novel_clip_mask

        keep = novel_clip_mask(self.folder, manifest, files, self.clip_len, self._index)
        self.duplicates_dropped = int((~keep).sum())
        self._index = self._index[keep]
        if not len(self._index):
            raise ValueError(
                f"every {self.clip_len}-frame clip of split {self.split!r} repeats a training "
                "window; record more (or longer) episodes"
            )

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict:
        episode, start = (int(v) for v in self._index[i])
        clip = slice(start, start + self.clip_len)
        # uint8 -> [0, 1] in numpy: single-threaded, so no OpenMP start-up cost per item
        frames = self._frames[episode][clip].astype(np.float32) / np.float32(255)  # (T, C, H, W)
        return {
            "frames": torch.from_numpy(frames),
            "actions": torch.from_numpy(self._actions[episode][clip].copy()),  # (T,)
            "game": self.episode_games[episode],
        }

    def clip_episodes(self) -> np.ndarray:
        """(num_clips,) int64: the episode (within this split) each clip is cut from, the
        unit a bootstrap resamples (clips of one episode are not independent)."""
        return self._index[:, 0].copy()

    def __repr__(self) -> str:
        games = sorted(set(self.episode_games))
        return (
            f"AtariClips(split={self.split!r}, clips={len(self)}, clip_len={self.clip_len}, "
            f"episodes={len(self.episode_lengths)}, frames={sum(self.episode_lengths)}, "
            f"games={[self.game_names[g] for g in games]}, folder={str(self.folder)!r})"
        )


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="debug", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--root", default=None, help=f"parent folder (default {DEFAULT_ROOT})")
    args = parser.parse_args(argv)
    config = resolve_config(args.preset)
    if args.seed is not None:
        config = dataclasses.replace(config, seed=args.seed)
    folder = Path(args.root or DEFAULT_ROOT) / config.name
    fresh = not (folder / "manifest.json").exists()
    start = time.perf_counter()
    folder, manifest = ensure_recorded(config, args.root)
    seconds = time.perf_counter() - start
    print(f"{'recorded' if fresh else 'already recorded'}: {folder}")
    for split in SPLITS:
        print(
            f"  {split:13s} {manifest['episodes'][split]:4d} episodes "
            f"{manifest['frames'][split]:7d} frames"
        )
    total = sum(manifest["frames"].values())
    if fresh:
        print(f"  {total} frames in {seconds:.1f} s ({total / seconds:.0f} frames/s)")
    else:
        print(f"  {total} frames (recording took {manifest['record_seconds']} s)")
    return manifest


if __name__ == "__main__":
    main(sys.argv[1:])
