"""Held out means held out: find evaluation windows that repeat a training window exactly.

A window is `length` consecutive frames of one episode. Two windows are the same when every
frame is byte-identical, so a model scored on a duplicated window is scored on something it
was trained on. Each frame is hashed once (8 bytes of blake2b) and a window is the run of
its frames' hashes, so comparing every window of a split costs one pass over its frames.

Random play does not make Atari episodes differ everywhere: MsPacman's opening tune plays
the same frames whatever the joystick does, and in Pong a paddle pinned against the wall
leaves a deterministic ball and opponent. So varied starts (see `atari`) are not enough, and
`AtariClips` also drops every evaluation clip whose window occurs in training.

A *static* window (the screen does not change at all, e.g. a pause before a serve) says
nothing about dynamics and can repeat across episodes by chance; the report counts those
apart from the moving duplicates that matter.

    uv run python -m worldmodels.data.leakage --preset debug --length 4
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def frame_hashes(frames: np.ndarray) -> np.ndarray:
    """(T,) uint64: an 8-byte blake2b digest of each frame of `frames` (T, ...).

    Two different frames share a digest with probability 2^-64 per pair: for the ~10^8
    pairs of a debug recording, about 10^-11.
    """
    digests = [
        hashlib.blake2b(np.ascontiguousarray(frame).tobytes(), digest_size=8).digest()
        for frame in frames
    ]
    return np.frombuffer(b"".join(digests), dtype=np.uint64).copy()


def window_keys(hashes: np.ndarray, length: int) -> list[bytes]:
    """The key of every run of `length` consecutive frames (T - length + 1 of them)."""
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    return [hashes[i : i + length].tobytes() for i in range(len(hashes) - length + 1)]


def is_static(key: bytes) -> bool:
    """True when the window holds two or more frames and all are the same image."""
    hashes = np.frombuffer(key, dtype=np.uint64)
    return len(hashes) > 1 and bool((hashes == hashes[0]).all())


def training_windows(train_hashes: Iterable[np.ndarray], length: int) -> set[bytes]:
    """Every `length`-frame window of the training episodes (given as frame hashes)."""
    seen: set[bytes] = set()
    for hashes in train_hashes:
        seen.update(window_keys(hashes, length))
    return seen


def novel_starts(hashes: np.ndarray, length: int, seen: set[bytes]) -> np.ndarray:
    """(T - length + 1,) bool: does the window starting at each step differ from all of `seen`?"""
    return np.array([key not in seen for key in window_keys(hashes, length)], dtype=bool)


def duplicate_windows(
    train_hashes: Iterable[np.ndarray], eval_hashes: Iterable[np.ndarray], length: int
) -> dict[str, int]:
    """Count the windows of the evaluation episodes that equal some training window.

    Both arguments are per-episode frame hashes (`frame_hashes`). Returns {"windows",
    "duplicates", "static_duplicates", "moving_duplicates"}; duplicates = static + moving.
    """
    seen = training_windows(train_hashes, length)
    windows = duplicates = static = 0
    for hashes in eval_hashes:
        for key in window_keys(hashes, length):
            windows += 1
            if key in seen:
                duplicates += 1
                static += is_static(key)
    return {
        "windows": windows,
        "duplicates": duplicates,
        "static_duplicates": static,
        "moving_duplicates": duplicates - static,
    }


def recording_hashes(folder: Path, manifest: dict) -> dict[str, np.ndarray]:
    """{shard file: (T,) uint64 frame hashes} for an Atari recording, cached beside it.

    The cache (`frame_hashes.npz`) is keyed by each shard's sha256 from the manifest, so a
    re-recorded shard is hashed again.
    """
    from worldmodels.data import atari

    folder = Path(folder)
    cache_path = folder / "frame_hashes.npz"
    wanted = {shard["file"]: shard["sha256"] for shard in manifest["shards"]}
    if cache_path.exists():
        try:
            with np.load(cache_path, allow_pickle=False) as cache:
                if str(cache["key"]) == json.dumps(wanted, sort_keys=True):
                    return {file: cache[f"h_{file}"] for file in wanted}
        except Exception:  # a damaged cache is rebuilt, never trusted
            pass
    hashes = {file: frame_hashes(atari.load_shard(folder / file)["frames"]) for file in wanted}
    arrays = {f"h_{file}": h for file, h in hashes.items()}
    arrays["key"] = np.array(json.dumps(wanted, sort_keys=True))
    atari.write_npz_atomic(cache_path, arrays)
    return hashes


@functools.lru_cache(maxsize=16)
def _training_windows_cached(folder: str, manifest_json: str, length: int) -> frozenset:
    manifest = json.loads(manifest_json)
    hashes = recording_hashes(Path(folder), manifest)
    train = [hashes[s["file"]] for s in manifest["shards"] if s["split"] == "train"]
    return frozenset(training_windows(train, length))


def novel_clip_starts(folder: Path, manifest: dict, files: Sequence[str], length: int):
    """For each shard in `files`: (T - length + 1,) bool, True where the `length`-frame
    window starting there equals no window of any training episode (of any game)."""
    seen = _training_windows_cached(str(folder), json.dumps(manifest, sort_keys=True), length)
    hashes = recording_hashes(folder, manifest)
    return [novel_starts(hashes[file], length, seen) for file in files]


def novel_clip_mask(
    folder: Path, manifest: dict, files: Sequence[str], length: int, index: np.ndarray
) -> np.ndarray:
    """(num_clips,) bool for a clip index of (episode, start) rows over the shards `files`:
    True where the clip equals no training window. AtariClips and chapter 2's TokenClips
    both filter their held-out clips with it, so they serve the same clips."""
    novel = novel_clip_starts(folder, manifest, files, length)
    return np.array([novel[e][start] for e, start in index], dtype=bool)


def atari_leakage(
    config=None, root=None, length: int = 1, folder=None
) -> dict[str, dict[str, dict]]:
    """{split: {game: counts}} for the "val" and "heldout_game" episodes of an Atari
    recording, each against every training episode (all games: a held-out game must match
    none). These are the raw recording's counts; AtariClips drops the duplicated windows."""
    from worldmodels.data import atari

    if folder is None:
        folder, manifest = atari.ensure_recorded(config, root, progress=False)
    else:  # an existing recording, e.g. one made by an older version of the recorder
        folder = Path(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
    hashes = recording_hashes(folder, manifest)
    by_split: dict[str, dict[str, list[np.ndarray]]] = {}
    for shard in manifest["shards"]:
        by_split.setdefault(shard["split"], {}).setdefault(shard["game"], []).append(
            hashes[shard["file"]]
        )
    train = [h for game in by_split.get("train", {}).values() for h in game]
    return {
        split: {
            game: duplicate_windows(train, game_hashes, length)
            for game, game_hashes in by_split.get(split, {}).items()
        }
        for split in ("val", "heldout_game")
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="debug", help="a preset of worldmodels.data.atari")
    parser.add_argument("--root", default=None, help="parent folder of the recordings")
    parser.add_argument("--length", type=int, nargs="+", default=[1, 4, 11])
    parser.add_argument("--folder", default=None, help="score this recording folder instead")
    args = parser.parse_args(argv)
    results = {}
    print("| split | game | " + " | ".join(f"{n}-frame windows: dup (static)" for n in args.length))
    print("|---|---|" + "---|" * len(args.length))
    by_length = {n: atari_leakage(args.preset, args.root, n, args.folder) for n in args.length}
    for split in ("val", "heldout_game"):
        for game in by_length[args.length[0]][split]:
            cells = []
            for n in args.length:
                c = by_length[n][split][game]
                share = c["duplicates"] / max(c["windows"], 1)
                cells.append(f"{100 * share:.1f}% ({c['static_duplicates']}) of {c['windows']}")
                results.setdefault(split, {}).setdefault(game, {})[n] = c
            print(f"| {split} | {game} | " + " | ".join(cells))
    return results


if __name__ == "__main__":
    main()
