"""Atari clips as temporally compressed tokens (the 1X compression-challenge setting).

The per-frame token cache of tokens.py cannot serve a tokenizer that compresses time: a
latent frame stands for a group of t frames and depends on where its group starts, so each
clip is tokenised whole and cached under its own key (tokens.py's helpers, its cache root).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from dynamics_model.tokens import (
    CACHE_VERSION,
    REPO_ROOT,
    _load_cache,
    _save_atomic,
    load_tokenizer_quietly,
    tokenizer_digest,
    tokenizer_folder,
)
from worldmodels.data.atari import AtariClips, AtariConfig, resolve_config


class CompressedTokenClips(Dataset):
    """Clips of 1 + t*k frames tokenised by a temporally compressing tokenizer (Cosmos, 1X).

    With temporal compression t, chapter 1's tokenizer maps a clip of 1 + t*k frames to
    1 + k latent token frames: the first frame alone, then one latent frame per group of t.
    A latent frame depends on where its group starts, so (unlike TokenClips) each clip is
    tokenised as a whole, and clips cannot be cut out of one long token sequence. The 1X
    compression challenge scores exactly this: given the first latent frames of a clip,
    predict the last one.

    The clip index is AtariClips' own (stride 1), so item i is the same clip in both. Item:
    dict(tokens=(1 + k, h, w) int64, frame_actions=(clip_len,) int64, game=int, and
    frames=(clip_len, C, H, W) with `with_frames=True`). Cached under data/tokens/ like
    TokenClips, keyed also by clip_len.
    """

    def __init__(  # twin: TokenClips' arguments, without `games`
        self,
        split: str,
        clip_len: int,
        tokenizer_dir: str | Path = "",
        atari_preset: AtariConfig | str = "debug",
        with_frames: bool = False,
        root: str | Path | None = None,
        progress: bool = True,
    ):
        self.split, self.clip_len, self.with_frames = split, clip_len, with_frames
        self.atari_config = resolve_config(atari_preset)
        self.game_names = self.atari_config.game_names
        self.data_root = Path(root) if root else REPO_ROOT / "data"
        tokenizer_dir = tokenizer_folder(tokenizer_dir)
        key = (
            f"v{CACHE_VERSION}|compressed|{clip_len}|{tokenizer_digest(tokenizer_dir)}|"
            f"{self.atari_config.name}"
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.cache_file = self.data_root / "tokens" / digest / f"{split}.pt"
        self.atari = AtariClips(
            split, clip_len, self.atari_config, self.data_root / "atari", progress=progress
        )
        if not self.cache_file.exists():
            self._tokenise(tokenizer_dir, progress)
        cache = _load_cache(self.cache_file, ("tokens",))
        self.tokens = cache["tokens"].long()  # (clips, 1 + k, h, w)
        if len(self.tokens) != len(self.atari):
            raise ValueError(
                f"token cache {self.cache_file} holds {len(self.tokens)} clips but the Atari "
                f"split {split!r} has {len(self.atari)}; delete it and it will be remade"
            )

    def _tokenise(self, tokenizer_dir: Path, progress: bool) -> None:
        tokenizer = load_tokenizer_quietly(tokenizer_dir)
        tokenizer.tokens_shape(self.clip_len)  # raises unless clip_len = 1 + t*k
        device = next(tokenizer.parameters()).device
        ids, batch = [], 64
        for start in tqdm(
            range(0, len(self.atari), batch),
            desc=f"tokenising {self.split} clips",
            disable=not progress,
        ):
            stop = min(start + batch, len(self.atari))
            clips = torch.stack([self.atari[i]["frames"] for i in range(start, stop)])
            with torch.no_grad():
                ids.append(tokenizer.encode(clips.to(device)).cpu().to(torch.int16))
        _save_atomic(self.cache_file, {"tokens": torch.cat(ids)})  # (clips, 1 + k, h, w)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict:
        clip = self.atari[i]
        item = {
            "tokens": self.tokens[i],  # (1 + k, h, w)
            "frame_actions": clip["actions"],  # (clip_len,)
            "game": clip["game"],
        }
        if self.with_frames:
            item["frames"] = clip["frames"]  # (clip_len, C, H, W)
        return item
