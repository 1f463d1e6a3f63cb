"""Train chapter 5's world model (the TENSFormer, the AR baseline, MaskGIT or the DiT) on the
driving world's tokens.

    uv run 5.world-model/train.py --kind=tensformer               # debug: 2-core CPU
    uv run 5.world-model/train.py --kind=ar                       # the autoregressive baseline
    uv run 5.world-model/train.py --kind=maskgit                  # CoPilot4D's discrete diffusion
    uv run 5.world-model/train.py --kind=dit                      # OccSora's diffusion transformer
    uv run 5.world-model/train.py --kind=lidar-maskgit            # CoPilot4D's LiDAR forecasting
    uv run 5.world-model/train.py --preset prototype              # one GPU, bf16, compiled
    uv run torchrun --nproc_per_node=8 5.world-model/train.py --preset paper
    uv run 5.world-model/train.py --steps=100 --model.dim=192 --resume  # --help lists the keys

`--kind=tensformer` trains the TENSFormer (section `model`) on the multi-scale tokens of
`data.tokenizer`; `--kind=ar` trains the baseline, chapter 2's GPT (section `ar`, imported
from dynamics_model.ar), on the single-scale tokens of `data.single_scale_tokenizer` in
raster order, the ego-motion tokens as its actions. Both score only the future frames of the
same 5 + 6 frame clips (the past is context). `--kind=maskgit` trains CoPilot4D's MaskGIT
discrete diffusion (section `maskgit`, `world_model/maskgit_world.py`) on the same
single-scale tokens of the same clips: Algorithm 1's corruption, per clip one objective (the
future given a clean past, past and future jointly, or the future with no past, the
unconditional model of classifier-free guidance), label-smoothed cross-entropy on the
corrupted frames. `--kind=dit` trains OccSora's trajectory-conditioned diffusion transformer
(section `dit`, `world_model/dit_world.py`) on the continuous latent of chapter 3's 4D
tokenizer (`data.fourd_tokenizer`): each window is a past clip (the 5 past frames) and a
target clip (the last 2 past + the 6 future frames at 4d-debug-t2's 8 frames a clip); the
target's code vectors, scaled to unit std on the training split, are noised and the DiT,
reading the clean past in front of them and the target clip's ego motions, predicts the noise
(epsilon MSE; the past and the trajectory dropped at random, for generation without a past and
for guidance). `--kind=lidar-maskgit` trains the MaskGIT world model (section `lidar`) on
chapter 4's LiDAR tokens (`data.lidar_tokenizer`, its `pretrained/debug` by default) of 12-frame
clips, one 4D-Occ protocol (2 -> 2 or 6 -> 6 sweeps) per batch (`world_model/lidar_world.py`).
All five share the trainer; `--ema_decay` (OccSora: 0.9999, for 1.2 M steps)
keeps an average of the weights (ema.safetensors, what evaluation and validate.py then use).

The driving data is generated on first use (`data/driving/<preset>/`); every frame of the
train and val splits is encoded once by the kind's frozen tokenizer and cached under
`data/tokens/world_model/` (the DiT: both clips of every training window and of the
`eval_clips` val windows its evaluation reads). The ego-motion bins are fit on the training
split only. Writes `runs/5.world-model/<kind>-<preset>/`: checkpoints (safetensors; each
config.json holds the motion bins in its `motion` section), `log.jsonl` (loss terms;
teacher-forced val scene CE and token accuracy at each evaluation; for MaskGIT, CE and
accuracy on the masked future tokens of a fixed seeded corruption; for the DiT, the epsilon
MSE at a fixed seeded t and noise, with and without the trajectory), `run.json` (config,
command, commit, machine) and `motion_tokenizer.json` (the bins, `EgoMotionTokenizer.to_dict`).
"""

from pathlib import Path

from world_model.config import (
    CHAPTER_DIR,
    MODEL_NAMES,
    TOKENIZER_KINDS,
    complete_config,
    parse_run,
    tokenizer_name,
)
from world_model.training import (
    build_clips,
    build_model,
    evaluator_for,
    fit_motion,
    load_frozen_tokenizer,
    load_split_data,
    loss_for,
    train_fit,
)

from worldmodels.checkpoint import write_json_atomic
from worldmodels.runtime import setup_runtime
from worldmodels.trainer import announce, default_out_dir, train_and_report


def main(argv=None) -> dict:
    config, preset = parse_run(argv)
    runtime = setup_runtime(config.run.device, config.run.dtype, config.run.seed)
    out_dir = default_out_dir(CHAPTER_DIR, f"{config.kind}-{preset}", config.run)

    # multiscale (tensformer) | scene (ar, maskgit) | 4d (dit) | chapter 4's lidar (lidar-maskgit)
    kind = TOKENIZER_KINDS[config.kind]
    tokenizer = load_frozen_tokenizer(tokenizer_name(config), runtime.device, kind,
                                      MODEL_NAMES[config.kind])  # fmt: skip
    windows = load_split_data(config, ("train", "val"))  # occupancy windows, or LiDAR sweeps
    motion_tokenizer = fit_motion(config, windows)  # the training split's poses only
    clips = build_clips(config, windows, tokenizer, motion_tokenizer, config.run.progress)
    fitted = train_fit(config, clips, tokenizer)  # the DiT's latent scale; {} for the others
    config = complete_config(config, tokenizer, motion_tokenizer, **fitted)  # derived fields
    announce(runtime, f"{config.kind}, preset {preset}", out_dir, config)

    model = build_model(config)
    evaluate = evaluator_for(config, tokenizer, clips["val"]) if runtime.is_main else None
    result = train_and_report(model, loss_for(config, tokenizer), clips, config, runtime,
                              out_dir, evaluate)  # fmt: skip
    if runtime.is_main:  # after training: a fresh run first moves an earlier run's folder aside
        write_json_atomic(Path(out_dir) / "motion_tokenizer.json", motion_tokenizer.to_dict())
    return result


if __name__ == "__main__":
    main()
