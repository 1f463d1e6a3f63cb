"""Train chapter 1's video tokenizer.

    uv run 1.video-tokenizer/train.py                          # debug preset: CPU, minutes
    uv run 1.video-tokenizer/train.py --preset prototype       # one GPU, bf16 + torch.compile
    uv run torchrun --nproc_per_node=8 1.video-tokenizer/train.py --preset paper
    uv run 1.video-tokenizer/train.py --steps=500 --quantizer=vq --resume   # any config key

Writes `runs/1.video-tokenizer/<preset>/`: checkpoints (safetensors), `log.jsonl`,
`run.json` (config, command, commit, machine) and `samples/` reconstruction grids.
"""

from video_tokenizer.experiment import CHAPTER_DIR, PRESETS, Evaluator, build_datasets, loss_fn
from video_tokenizer.model import VideoTokenizer

from worldmodels.config import format_config, parse_config, to_dict
from worldmodels.runtime import setup_runtime, teardown_runtime
from worldmodels.trainer import default_out_dir, train


def main(argv=None) -> dict:
    config, preset = parse_config(PRESETS, argv)
    runtime = setup_runtime(config.run.device, config.run.dtype, config.run.seed)
    out_dir = default_out_dir(CHAPTER_DIR, preset, config.run)
    if runtime.is_main:
        print(f"preset {preset} on {runtime.device} ({runtime.dtype}), writing to {out_dir}")
        print(format_config(config))

    datasets = build_datasets(config, progress=runtime.is_main)
    model = VideoTokenizer(config.model)
    if runtime.is_main:
        params = sum(p.numel() for p in model.parameters())
        print(f"{params / 1e6:.2f} M parameters; train clips: {len(datasets['train'])}")
    evaluator = Evaluator(datasets, config.data.eval_clips, out_dir) if runtime.is_main else None
    result = train(
        model,
        loss_fn,
        datasets["train"],
        config.run,
        runtime,
        out_dir,
        to_dict(config),
        evaluate=evaluator,
    )
    if runtime.is_main:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})
    teardown_runtime(runtime)
    return result


if __name__ == "__main__":
    main()
