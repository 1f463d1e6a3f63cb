"""Train CoPilot4D's LiDAR tokenizer on the driving world's sweeps.

    uv run 4.lidar-tokenizer/train.py                            # debug: 2-core CPU, ~20 min
    uv run 4.lidar-tokenizer/train.py --restarts=false           # plain VQ, for comparison
    uv run 4.lidar-tokenizer/train.py --preset prototype         # one GPU: 64 x 64 tokens
    uv run torchrun --nproc_per_node=8 4.lidar-tokenizer/train.py --preset paper
    uv run 4.lidar-tokenizer/train.py --steps=600 --train_rays=2048 --resume   # any key

The driving data is generated on first use (`data/driving/<preset>/`). Writes
`runs/4.lidar-tokenizer/<preset>[-norestart]/`: checkpoints (safetensors), `log.jsonl` (the
loss terms and the quantizer's counters: codes alive, restarts), `run.json` (config,
command, commit, machine) and `samples/` (a held-out sweep from above: measured | rendered).
"""

from lidar_tokenizer.build import LOSS, build_datasets, build_model, make_evaluator
from lidar_tokenizer.config import CHAPTER_DIR, parse_run, run_name

from worldmodels.runtime import setup_runtime
from worldmodels.trainer import announce, default_out_dir, train_and_report


def main(argv=None) -> dict:
    config, preset = parse_run(argv)
    runtime = setup_runtime(config.run.device, config.run.dtype, config.run.seed)
    out_dir = default_out_dir(CHAPTER_DIR, run_name(config, preset), config.run)
    announce(runtime, f"LiDAR tokenizer, preset {preset}", out_dir, config)

    datasets = build_datasets(config)
    model = build_model(config)
    evaluator = make_evaluator(config, datasets, out_dir=out_dir) if runtime.is_main else None
    return train_and_report(model, LOSS, datasets, config, runtime, out_dir, evaluator)


if __name__ == "__main__":
    main()
