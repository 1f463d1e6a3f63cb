"""Train one of chapter 2's models on Atari tokens: MaskGIT dynamics, the AR baseline or the LAM.

    uv run 2.dynamics-model/train.py --kind=maskgit           # debug preset: CPU, minutes
    uv run 2.dynamics-model/train.py --kind=ar
    uv run 2.dynamics-model/train.py --kind=lam
    uv run 2.dynamics-model/train.py --kind=maskgit --preset prototype     # one GPU
    uv run torchrun --nproc_per_node=8 2.dynamics-model/train.py --kind=maskgit --preset paper
    uv run 2.dynamics-model/train.py --kind=ar --steps=500 --ar.dim=64 --temperature=1  # any key

Frames are tokenised once by chapter 1's tokenizer (`--tokenizer=DIR`, default its committed
`pretrained/`) and cached under `data/tokens/`. Writes `runs/2.dynamics-model/<kind>-<preset>/`:
checkpoints (safetensors), `log.jsonl`, `run.json` (config, command, commit, machine) and
`samples/` rollout strips (real / generated rows).
"""

from dynamics_model.build import LOSSES, build_datasets, build_model, make_evaluator
from dynamics_model.config import PRESETS, complete_config
from dynamics_model.tokens import CHAPTER_DIR, load_tokenizer

from worldmodels.config import parse_config
from worldmodels.runtime import setup_runtime
from worldmodels.trainer import announce, default_out_dir, train_and_report


def main(argv=None) -> dict:
    config, preset = parse_config(PRESETS, argv)
    runtime = setup_runtime(config.run.device, config.run.dtype, config.run.seed)
    tokenizer, _ = load_tokenizer(config.data.tokenizer, runtime.device)
    config = complete_config(config, tokenizer)  # checks kind; sizes from the tokenizer
    out_dir = default_out_dir(CHAPTER_DIR, f"{config.kind}-{preset}", config.run)
    announce(runtime, f"{config.kind}, preset {preset}", out_dir, config)

    datasets = build_datasets(config, progress=runtime.is_main)
    model = build_model(config)
    evaluator = (
        make_evaluator(config, datasets, tokenizer, out_dir=out_dir) if runtime.is_main else None
    )
    loss_fn = LOSSES[config.kind]
    return train_and_report(model, loss_fn, datasets, config, runtime, out_dir, evaluator)


if __name__ == "__main__":
    main()
