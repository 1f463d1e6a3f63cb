"""Train one of chapter 3's occupancy tokenizers on the driving world.

    uv run 3.occupancy-tokenizer/train.py                         # debug scene tokenizer, CPU
    uv run 3.occupancy-tokenizer/train.py --kind=4d               # OccSora's 4D tokenizer
    uv run 3.occupancy-tokenizer/train.py --kind=multiscale       # VAR's multi-scale quantizer
    uv run 3.occupancy-tokenizer/train.py --preset prototype      # one GPU: 200x200x16 -> 50x50
    uv run torchrun --nproc_per_node=8 3.occupancy-tokenizer/train.py --preset paper
    uv run 3.occupancy-tokenizer/train.py --steps=300 --scene.quantizer=fsq --resume  # any key

The driving data is generated on first use (`data/driving/<preset>/`). Writes
`runs/3.occupancy-tokenizer/<kind>-<preset>/`: checkpoints (safetensors), `log.jsonl`,
`run.json` (config, command, commit, machine) and `samples/` (frames from above: original |
reconstruction).
"""

from occupancy_tokenizer.build import build_datasets, build_model, make_evaluator, make_loss
from occupancy_tokenizer.config import CHAPTER_DIR, complete_config, parse_run

from worldmodels.runtime import setup_runtime
from worldmodels.trainer import announce, default_out_dir, train_and_report


def main(argv=None) -> dict:
    config, preset = parse_run(argv)  # --data.preset first: the grid the sizes are checked on
    config = complete_config(config)  # each model's grid = the driving preset's
    runtime = setup_runtime(config.run.device, config.run.dtype, config.run.seed)
    out_dir = default_out_dir(CHAPTER_DIR, f"{config.kind}-{preset}", config.run)
    announce(runtime, f"{config.kind}, preset {preset}", out_dir, config)

    datasets = build_datasets(config)
    model = build_model(config)
    evaluator = make_evaluator(config, datasets, out_dir=out_dir) if runtime.is_main else None
    return train_and_report(model, make_loss(config), datasets, config, runtime, out_dir,
                            evaluator)  # fmt: skip


if __name__ == "__main__":
    main()
