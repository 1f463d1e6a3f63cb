"""Atari clips as tokens: chapter 1's frozen tokenizer turns every frame into an 8 x 8 grid.

The dynamics models never see pixels. Each recorded frame is tokenised once, on first use,
and the ids are cached under

    <repo>/data/tokens/<digest>/<split>.pt      digest = sha256(tokenizer weights, Atari settings)

so a retrained tokenizer or another recording can never be served stale tokens. Each frame
is encoded as its own one-frame clip: chapter 1's encoder is causal in time, so inside a
longer clip a frame's tokens would depend on where the clip starts; alone, they depend on
the frame only. (So chapter 1's causal time is not used here: a frame is never encoded in
the context of the frames before it.)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch.utils.data import Dataset
from tqdm.auto import tqdm
from video_tokenizer.model import TokenizerConfig, VideoTokenizer
from video_tokenizer.pretrained import PRETRAINED_DIR
from video_tokenizer.pretrained import load_tokenizer as load_chapter1_tokenizer

from worldmodels.checkpoint import find_checkpoint
from worldmodels.data.atari import AtariClips, AtariConfig, ensure_recorded, resolve_config
from worldmodels.data.leakage import novel_clip_mask

CHAPTER_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = CHAPTER_DIR.parent
CACHE_VERSION = 2  # bump when the cache layout or the tokenisation changes


def tokenizer_folder(path: str | Path = "") -> Path:
    """The tokenizer folder a config names: "" means chapter 1's committed `pretrained/`."""
    folder = Path(path).expanduser() if path else PRETRAINED_DIR
    if not folder.exists():
        raise FileNotFoundError(
            f"tokenizer folder {folder} does not exist: expected a chapter-1 run or a folder "
            "with model.safetensors + config.json (made by `uv run 1.video-tokenizer/"
            "validate.py RUN --export=DIR`)"
        )
    return folder


def load_tokenizer(
    path: str | Path = "", device: str | torch.device = "cpu"
) -> tuple[VideoTokenizer, TokenizerConfig]:
    """Chapter 1's tokenizer from a run folder, checkpoint or exported folder, frozen, in eval.

    Returns (model, its TokenizerConfig). "" loads `1.video-tokenizer/pretrained/`.
    """
    model, config = load_chapter1_tokenizer(tokenizer_folder(path), device)
    model.requires_grad_(False)
    return model, config


def load_tokenizer_quietly(path: str | Path = "") -> VideoTokenizer:
    """load_tokenizer without touching the global random state.

    Building the model draws its (then overwritten) initial weights from torch's global
    generator. Making the token cache does this only when the cache is missing, so without
    the fork a run's model initialisation and masks would depend on whether an earlier run
    had already made the cache: the same command would train differently the second time.
    """
    with torch.random.fork_rng(devices=[]):
        return load_tokenizer(path)[0]


def tokenizer_digest(path: str | Path = "") -> str:
    """sha256 of the tokenizer's weights file: the tokens' identity."""
    weights = find_checkpoint(tokenizer_folder(path)) / "model.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest()


@torch.no_grad()
def tokenize_frames(
    tokenizer: VideoTokenizer, frames: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """frames (M, C, H, W) float in [0, 1] -> ids (M, h, w) int64, each frame on its own."""
    device = next(tokenizer.parameters()).device
    ids = [
        tokenizer.encode(rearrange(chunk.to(device), "m c h w -> m 1 c h w"))[:, 0].cpu()
        for chunk in frames.split(batch_size)
    ]  # each (m, h, w)
    return torch.cat(ids)


@torch.no_grad()
def decode_frames(
    tokenizer: VideoTokenizer, ids: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """ids (B, T, h, w) int64 -> frames (B, T, C, H, W) in [0, 1], each frame on its own."""
    B = ids.shape[0]
    device = next(tokenizer.parameters()).device
    flat = rearrange(ids, "b t h w -> (b t) 1 h w")  # every frame its own one-frame clip
    frames = torch.cat(
        [tokenizer.decode(chunk.to(device)).cpu() for chunk in flat.split(batch_size)]
    )
    return rearrange(frames, "(b t) 1 c h w -> b t c h w", b=B).float()


def _save_atomic(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """torch.save to a temporary file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    torch.save(tensors, tmp)
    os.replace(tmp, path)


def _load_cache(path: Path, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """A token cache file, with any damage reported as an error naming the file."""
    fix = "delete it and it will be remade"
    try:
        cache = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a damaged file
        raise ValueError(f"token cache {path} cannot be read ({error}); {fix}") from error
    missing = [k for k in keys if not isinstance(cache, dict) or k not in cache]
    if missing:
        raise ValueError(f"token cache {path} lacks {missing}; {fix}")
    return cache


class TokenClips(Dataset):
    """Clips of `clip_len` consecutive steps of one Atari split, as tokens.

    The clip index is AtariClips' own (stride 1, clips never cross an episode), so item i is
    the same clip in both. Item: dict(
        tokens=(T, h, w) int64 in [0, K),
        actions=(T,) int64 in [0, 18), actions[t] taken at frame t (it leads to frame t+1),
        game=int, index into `game_names`,
        frames=(T, C, H, W) float32 in [0, 1], only with `with_frames=True`,
    )
    The frames are only loaded with `with_frames=True` (or to tokenise a split the first
    time); otherwise everything comes from the token cache, a few MB. `games` keeps only the
    clips of those games (the cache always holds the whole split).
    """

    def __init__(  # twin: CompressedTokenClips takes the same arguments (but `games`)
        self,
        split: str,
        clip_len: int,
        tokenizer_dir: str | Path = "",
        atari_preset: AtariConfig | str = "debug",
        with_frames: bool = False,
        root: str | Path | None = None,
        progress: bool = True,
        games: Sequence[str] | None = None,
    ):
        self.split, self.clip_len, self.with_frames = split, clip_len, with_frames
        self.atari_config = resolve_config(atari_preset)
        self.game_names = self.atari_config.game_names
        unknown = sorted(set(games or ()) - set(self.game_names))
        if unknown:
            raise ValueError(f"unknown games {unknown}; this recording has {self.game_names}")
        self.games = tuple(games) if games else None
        self.data_root = Path(root) if root else REPO_ROOT / "data"
        tokenizer_dir = tokenizer_folder(tokenizer_dir)
        key = f"v{CACHE_VERSION}|{tokenizer_digest(tokenizer_dir)}|{self.atari_config.name}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.cache_file = self.data_root / "tokens" / digest / f"{split}.pt"

        self.atari = None
        if not self.cache_file.exists():
            self._tokenise(tokenizer_dir, progress)
        if with_frames:  # the same clips, in the same order, as pixels
            self.atari = AtariClips(
                split, clip_len, self.atari_config, self.data_root / "atari", games=self.games,
                progress=progress,
            )  # fmt: skip
        keys = ("tokens", "actions", "episode_games", "episode_lengths")
        cache = _load_cache(self.cache_file, keys)
        self.tokens = cache["tokens"].long()  # (frames, h, w), every episode back to back
        self.actions = cache["actions"]  # (frames,)
        self.episode_games = cache["episode_games"].tolist()
        self.episode_lengths = cache["episode_lengths"].tolist()
        self.episode_starts = np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]])
        self._index = self._clip_index()
        self.duplicates_dropped = 0
        if split != "train":  # the clips AtariClips serves: none equals a training window
            self._drop_training_windows(progress)
        kept = [
            length
            for length, game in zip(self.episode_lengths, self.episode_games)
            if self.games is None or self.game_names[game] in self.games
        ]
        if self.atari is not None and (
            self.atari.episode_lengths != kept or len(self.atari) != len(self)
        ):
            raise ValueError(
                f"token cache {self.cache_file} does not match the Atari recording of split "
                f"{split!r} (episode lengths differ); delete it and it will be remade"
            )

    def _tokenise(self, tokenizer_dir: Path, progress: bool) -> None:
        """Tokenise every frame of the split once (batched, no_grad) and cache the ids."""
        tokenizer = load_tokenizer_quietly(tokenizer_dir)
        if tokenizer.codebook_size > torch.iinfo(torch.int16).max:
            raise ValueError(f"codebook of {tokenizer.codebook_size} codes does not fit int16")
        frames_ds = AtariClips(
            self.split,
            1,
            self.atari_config,
            self.data_root / "atari",
            progress=progress,
            keep_training_windows=True,
        )  # one item per frame, every frame, episodes in order (the filter acts on clips)
        ids, actions = [], []
        batch = 256
        for start in tqdm(
            range(0, len(frames_ds), batch),
            desc=f"tokenising {self.split}",
            disable=not progress,
        ):
            items = [frames_ds[i] for i in range(start, min(start + batch, len(frames_ds)))]
            frames = torch.cat([item["frames"] for item in items])  # (m, C, H, W)
            ids.append(tokenize_frames(tokenizer, frames).to(torch.int16))  # K <= 32767
            actions.append(torch.cat([item["actions"] for item in items]))
        _save_atomic(
            self.cache_file,
            {
                "tokens": torch.cat(ids),  # (frames, h, w) int16
                "actions": torch.cat(actions),  # (frames,) int64
                "episode_lengths": torch.tensor(frames_ds.episode_lengths),  # (episodes,)
                "episode_games": torch.tensor(frames_ds.episode_games),  # (episodes,)
            },
        )

    def _clip_index(self) -> np.ndarray:
        """(num_clips, 2) rows of (episode, first step): AtariClips' index at stride 1."""
        rows = [
            np.stack(
                [np.full(length - self.clip_len + 1, e), np.arange(length - self.clip_len + 1)], 1
            )
            for e, (length, game) in enumerate(zip(self.episode_lengths, self.episode_games))
            if length >= self.clip_len
            and (self.games is None or self.game_names[game] in self.games)
        ]
        if not rows:
            raise ValueError(
                f"clip_len={self.clip_len} is longer than every episode of split {self.split!r}"
            )
        return np.concatenate(rows).astype(np.int64)

    def _drop_training_windows(self, progress: bool) -> None:
        """Leave out the clips whose frames repeat a training window, as AtariClips does."""
        folder, manifest = ensure_recorded(self.atari_config, self.data_root / "atari", progress)
        files = [shard["file"] for shard in manifest["shards"] if shard["split"] == self.split]
        if len(files) != len(self.episode_lengths):
            raise ValueError(
                f"token cache {self.cache_file} holds {len(self.episode_lengths)} episodes but "
                f"the recording's split {self.split!r} has {len(files)}; delete it to remake it"
            )
        keep = novel_clip_mask(folder, manifest, files, self.clip_len, self._index)
        self.duplicates_dropped = int((~keep).sum())
        self._index = self._index[keep]

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict:
        episode, start = (int(v) for v in self._index[i])
        first = int(self.episode_starts[episode]) + start
        steps = slice(first, first + self.clip_len)
        item = {
            "tokens": self.tokens[steps],  # (T, h, w)
            "actions": self.actions[steps],  # (T,)
            "game": self.episode_games[episode],
        }
        if self.with_frames:
            item["frames"] = self.atari[i]["frames"]  # (T, C, H, W), the same clip
        return item

    def clip_episodes(self) -> np.ndarray:
        """(num_clips,) int64: the episode (within this split) each clip is cut from."""
        return self._index[:, 0].copy()

    def game_tokens(self) -> torch.Tensor:
        """(frames, h, w): the tokens of this dataset's games only (the cache holds every
        game of the split), e.g. to fit a baseline on what the model trains on."""
        return torch.cat(self.game_episode_tokens())

    def game_episode_tokens(self) -> list[torch.Tensor]:
        """Each episode of this dataset's games as (T_e, h, w) tokens."""
        return [
            self.tokens[int(start) : int(start) + length]
            for start, length, game in zip(
                self.episode_starts, self.episode_lengths, self.episode_games
            )
            if self.games is None or self.game_names[game] in self.games
        ]

    def clip_games(self) -> torch.Tensor:
        """The game of every clip, (num_clips,) int64."""
        return torch.tensor(self.episode_games)[torch.from_numpy(self._index[:, 0])]

    def game_actions(self) -> dict[int, torch.Tensor]:
        """game -> the sorted distinct actions played in it in this split (the policy's set)."""
        per_game: dict[int, set] = {}
        for episode, (game, start) in enumerate(zip(self.episode_games, self.episode_starts)):
            played = self.actions[int(start) : int(start) + self.episode_lengths[episode]]
            per_game.setdefault(game, set()).update(played.tolist())
        return {game: torch.tensor(sorted(actions)) for game, actions in per_game.items()}

    def __repr__(self) -> str:
        names: Sequence[str] = [self.game_names[g] for g in sorted(set(self.episode_games))]
        return (
            f"TokenClips(split={self.split!r}, clips={len(self)}, clip_len={self.clip_len}, "
            f"frames={len(self.tokens)}, games={list(names)}, cache={str(self.cache_file)!r})"
        )
