"""The TENSFormer, the AR baseline, MaskGIT and the DiT side by side, per preset: training
throughput (clips/s, tokens/s, MFU) and generation speed (milliseconds per forecast frame).

    uv run 5.world-model/benchmark.py                          # debug (+ prototype on a GPU)
    uv run 5.world-model/benchmark.py --presets=debug,prototype --kinds=tensformer
    uv run 5.world-model/benchmark.py --run.compile=false --model.dim=256 --ar.dim=256

Training. A step is the trainer's own step, `worldmodels.steps.optimizer_step` (forward under
autocast, the run's loss: teacher-forced cross-entropy on the 6 future frames of an 11-frame
clip, MaskGIT's Algorithm 1 on the clip, or the DiT's epsilon MSE on the target clip's latent
with the past clip's in front; scaled backward, gradient clipping, AdamW), on a
batch of the preset's shape whose token ids and motion tokens are uniform random draws (the
FLOPs and the time of a step do not depend on which ids they are; the DiT's trajectory is
Gaussian). MFU counts the FLOPs of one
step (`count_flops`) against the measured matmul peak of the device at that dtype.

Generation. The model's own forecast of the 6 future frames from 5 past frames of tokens, as
validate.py calls it, at batch 1 and at the preset's batch: the TENSFormer draws a frame in n
scale steps (n = 6 scales at debug and prototype) and the AR baseline in N = h * w token
steps, both with their KV cache; MaskGIT draws all 6 frames at once in 10 steps of Algorithm
2 (no guidance; each step one pass over the whole clip); the DiT draws its target clip (the 6
frames and the 2 past ones it starts with) in 50 DDIM steps (no guidance; each one pass over
the past and target latent frames). The scene tokenizer's encoding of the
past and decoding of the future are left out (validate.py's `--speed` times the whole
forecaster, tokenizer included), and the model is eager (a compiled step compiles `forward`;
generation calls the blocks directly). `gen_ms_per_frame_b1` and `gen_ms_per_frame_bB` are the
median of 3 timed calls after one untimed call, divided by the frames forecast.

The frozen tokenizers (chapter 3's, from `pretrained/`) set the token grids and codebooks; the
motion bins are the preset's (their range does not change the cost), the DiT's latent scale
is 1 (nor does it). For the DiT, `tokens_per_frame` is the tokens of one LATENT frame
((h/p) (w/p)) and `tokens_per_s` counts the 2T latent frames of its sequence. Results are
printed as a markdown table and appended to `5.world-model/benchmarks.jsonl`.

Options are `--key=value` (`--help` lists them). A key with a dot names a key of the preset's
config (`--run.compile=false`, `--model.dim=256`, as train.py spells it) and changes every
preset benchmarked; a key without a dot is one of this command's own options.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer
from world_model.config import (
    OCCUPANCY_KINDS,
    PRESETS,
    TOKENIZER_KINDS,
    complete_config,
    tokenizer_name,
)
from world_model.dit_forecast import sample_latent
from world_model.dit_world import code_latents
from world_model.generate import generate
from world_model.maskgit_forecast import sample_future
from world_model.token_data import CLIP_FRAMES
from world_model.training import build_model, load_frozen_tokenizer, loss_for
from world_model.windows import FUTURE_FRAMES, PAST_FRAMES

from worldmodels.benchmark import run_benchmark, synchronize, time_training_step
from worldmodels.config import override, require

HERE = Path(__file__).resolve().parent


@dataclass
class Options:
    """The TENSFormer, the AR baseline, MaskGIT and the DiT side by side per preset: training
    throughput and generation speed.

    uv run 5.world-model/benchmark.py [--key=value ...] [--section.key=value ...]"""

    kinds: tuple[str, ...] = OCCUPANCY_KINDS  # tensformer, ar, maskgit, dit
    presets: str = ""  # comma-separated; "" = debug on a CPU, debug,prototype on a GPU
    device: str = "auto"  # auto | cpu | cuda | mps
    steps: int = 3  # timed training steps per preset and kind
    warmup: int = 1  # untimed training steps before the timed ones
    generate: bool = True  # also time the forecast of 6 frames (batch 1 and the batch)

    def __post_init__(self):
        self.kinds = tuple(self.kinds)
        unknown = [k for k in self.kinds if k not in OCCUPANCY_KINDS]
        require(self, "kinds", self.kinds and not unknown, f"names among {OCCUPANCY_KINDS}")


def completed(name: str, kind: str, overrides: dict, device):
    """(config with its derived fields, frozen tokenizer) of a preset for one kind."""
    config = override(dataclasses.replace(PRESETS[name](), kind=kind), overrides)
    tokenizer = load_frozen_tokenizer(tokenizer_name(config), device, TOKENIZER_KINDS[kind])
    m = config.motion
    motion_tokenizer = EgoMotionTokenizer((0.0, -1.0, -1.0), (1.0, 1.0, 1.0), m.bins)
    scale = 1.0 if kind == "dit" else None  # the DiT's latent scale: no effect on the cost
    return complete_config(config, tokenizer, motion_tokenizer, scale), tokenizer


def tokens_per_frame(config) -> int:
    """L: the tokens of one frame (all scales for the TENSFormer, h * w for AR and MaskGIT,
    (h/p) (w/p) of one latent frame for the DiT)."""
    if config.kind == "dit":
        _, h, w = config.dit.latent_shape
        return (h // config.dit.patch) * (w // config.dit.patch)
    if config.kind in ("ar", "maskgit"):
        h, w = getattr(config, config.kind).token_grid
        return h * w
    return sum(s * s for s in config.model.scales)


def frames_per_clip(config) -> int:
    """The frames of one training sequence: 11 (5 past + 6 future), or the DiT's 2T latent
    frames (past and target clips)."""
    return 2 * config.dit.latent_shape[0] if config.kind == "dit" else CLIP_FRAMES


def random_clips(config, batch: int, device) -> dict:
    """{"ids": (B, T, L), "motions": (B, T - 1)}: uniform random tokens of a clip's shape; for
    the DiT {"past", "target": (B, T, h, w) code ids, "trajectory": (B, T_c - 1, 3)}."""
    generator = torch.Generator().manual_seed(0)
    if config.kind == "dit":
        c = config.dit
        ids = torch.randint(c.codebook_size, (2, batch, *c.latent_shape), generator=generator)
        trajectory = torch.randn(batch, c.traj_len, 3, generator=generator)
        return {"past": ids[0].to(device), "target": ids[1].to(device),
                "trajectory": trajectory.to(device)}  # fmt: skip
    if config.kind == "ar":
        codes, motions = config.ar.vocab_size, config.ar.num_actions
    else:
        section = config.maskgit if config.kind == "maskgit" else config.model
        codes, motions = section.codebook_size, section.motion_vocab
    ids = torch.randint(codes, (batch, CLIP_FRAMES, tokens_per_frame(config)), generator=generator)
    moves = torch.randint(motions, (batch, CLIP_FRAMES - 1), generator=generator)
    return {"ids": ids.to(device), "motions": moves.to(device)}


@torch.no_grad()
def forecast_tokens(model, config, tokenizer, clips: dict) -> None:
    """The model's 6-frame forecast from the clip's 5 past frames, as validate.py draws it."""
    if config.kind == "dit":  # the target clip's latent, in DEFAULT_STEPS DDIM steps
        codebook = tokenizer.quantizer.codebook.weight
        past = code_latents(codebook, clips["past"], config.dit.latent_scale)  # (B, E, T, h, w)
        sample_latent(model, past, clips["trajectory"])
        return
    ids, motions = clips["ids"], clips["motions"]
    if config.kind == "ar":
        h, w = config.ar.token_grid
        tokens = ids[:, :PAST_FRAMES].unflatten(-1, (h, w))  # (B, T_p, h, w)
        for _ in range(FUTURE_FRAMES):
            T = tokens.shape[1]
            frame = model.generate_next(tokens, motions[:, :T], 1.0, 1.0, None)
            tokens = torch.cat([tokens, frame[:, None]], dim=1)
    elif config.kind == "maskgit":
        sample_future(model, ids[:, :PAST_FRAMES], motions, FUTURE_FRAMES)
    else:
        past_motions = motions[:, : PAST_FRAMES - 1]
        future_motions = motions[:, PAST_FRAMES - 1 :]
        generate(model, tokenizer.quantizer, ids[:, :PAST_FRAMES], past_motions, future_motions)


def generation_ms(model, config, tokenizer, batch: int, device) -> float:
    """Milliseconds per forecast frame at `batch`: median of 3 calls after one untimed."""
    clips = random_clips(config, batch, device)
    model.eval()
    forecast_tokens(model, config, tokenizer, clips)

    def timed() -> float:
        synchronize(device)
        start = time.perf_counter()
        forecast_tokens(model, config, tokenizer, clips)
        synchronize(device)
        return time.perf_counter() - start

    seconds = statistics.median(timed() for _ in range(3))
    return round(1000 * seconds / (batch * FUTURE_FRAMES), 2)


def benchmark_kind(name: str, kind: str, args, device, overrides) -> dict:
    config, tokenizer = completed(name, kind, overrides, device)
    B = config.run.batch_size
    timing = time_training_step(
        config.run, lambda: build_model(config), loss_for(config, tokenizer),
        lambda: random_clips(config, B, device), device, args.warmup, args.steps,
    )  # fmt: skip
    L = tokens_per_frame(config)
    row = {
        "preset": name, "kind": kind, "params_M": timing.params_M(), "batch": B,
        "tokens_per_frame": L,
        **timing.columns(clips_per_s=round(B / timing.seconds, 2),
                         tokens_per_s=round(B * frames_per_clip(config) * L / timing.seconds)),
    }  # fmt: skip
    if args.generate:
        model = timing.model
        model = getattr(model, "_orig_mod", model)
        row["gen_ms_per_frame_b1"] = generation_ms(model, config, tokenizer, 1, device)
        row["gen_ms_per_frame_bB"] = generation_ms(model, config, tokenizer, B, device)
    return row


def measure(name: str, args, device, overrides) -> list[dict]:
    """One row per kind; with both, the AR / TENSFormer ratio of generation time on the AR's."""
    rows = [benchmark_kind(name, kind, args, device, overrides) for kind in args.kinds]
    by_kind = {row["kind"]: row for row in rows}
    if args.generate and {"tensformer", "ar"} <= set(by_kind):
        tens, ar = by_kind["tensformer"], by_kind["ar"]
        for size in ("b1", "bB"):
            key = f"gen_ms_per_frame_{size}"
            ar[f"ar_over_tensformer_{size}"] = round(ar[key] / tens[key], 2)
    return rows


KEYS = ("preset", "kind", "params_M", "batch", "tokens_per_frame", "dtype", "compile",
        "steps_per_s", "clips_per_s", "tokens_per_s", "step_GFLOP", "MFU",
        "gen_ms_per_frame_b1", "gen_ms_per_frame_bB")  # fmt: skip


def main(argv=None) -> list[dict]:
    return run_benchmark(argv, Options, PRESETS, measure, KEYS, HERE / "benchmarks.jsonl")


if __name__ == "__main__":
    main()
