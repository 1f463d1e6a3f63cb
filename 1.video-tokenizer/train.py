"""Train chapter 1's video tokenizer.

    uv run 1.video-tokenizer/train.py                          # debug preset: CPU, minutes
    uv run 1.video-tokenizer/train.py --preset prototype       # one GPU, bf16 + torch.compile
    uv run torchrun --nproc_per_node=8 1.video-tokenizer/train.py --preset paper
    uv run 1.video-tokenizer/train.py --steps=500 --quantizer=vq --resume   # any config key

Writes `runs/1.video-tokenizer/<preset>/`: checkpoints (safetensors), `log.jsonl`,
`run.json` (config, command, commit, machine) and `samples/` reconstruction grids.
"""

from video_tokenizer.config import CHAPTER_DIR, PRESETS
from video_tokenizer.data import build_datasets
from video_tokenizer.evaluate import Evaluator
from video_tokenizer.model import VideoTokenizer, loss_fn

from worldmodels.config import parse_config
from worldmodels.runtime import setup_runtime
from worldmodels.trainer import announce, default_out_dir, train_and_report


def main(argv=None) -> dict:
    config, preset = parse_config(PRESETS, argv)
    runtime = setup_runtime(config.run.device, config.run.dtype, config.run.seed)
    out_dir = default_out_dir(CHAPTER_DIR, preset, config.run)
    announce(runtime, f"preset {preset}", out_dir, config)

    datasets = build_datasets(config, progress=runtime.is_main)
    model = VideoTokenizer(config.model)
    evaluator = Evaluator(datasets, config.data.eval_clips, out_dir) if runtime.is_main else None
    return train_and_report(model, loss_fn, datasets, config, runtime, out_dir, evaluator)


if __name__ == "__main__":
    main()
