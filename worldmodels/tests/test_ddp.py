"""DDP under torchrun with the gloo backend: two CPU processes train one model in step."""

import json
import shutil
import subprocess
import sys
import textwrap

from safetensors.torch import load_file

SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from worldmodels.config import RunConfig
    from worldmodels.runtime import setup_runtime, teardown_runtime
    from worldmodels.trainer import train

    class Pairs(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return {"x": x, "y": y}

    def mse(model, batch):
        return ((model(batch["x"]) - batch["y"]) ** 2).mean(), {}

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = Pairs(x, x.sum(1, keepdim=True))
    run = RunConfig(steps=12, batch_size=8, lr=1e-2, warmup_steps=2, log_every=4,
                    eval_every=0, checkpoint_every=6, progress=False)
    runtime = setup_runtime("cpu", "float32", seed=0)
    torch.manual_seed(0)  # the same initial weights on every rank, as DDP requires
    model = nn.Linear(4, 1)
    train(model, mse, data, run, runtime, sys.argv[1], {"world_size": runtime.world_size})
    torch.save(model.state_dict(), f"{sys.argv[1]}/rank{runtime.rank}.pt")
    teardown_runtime(runtime)
    """
)


def test_two_process_gloo_training(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",  # a free port on localhost, so parallel runs cannot collide
        str(script),
        str(out),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    if result.returncode != 0 and "terminate called without an active exception" in result.stderr:
        # Once in CI (not reproduced in dozens of local runs) a rank aborted in gloo's C++
        # teardown after training had finished; run once more before calling it a failure.
        shutil.rmtree(out, ignore_errors=True)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    import torch

    rank0 = torch.load(out / "rank0.pt", weights_only=True)
    rank1 = torch.load(out / "rank1.pt", weights_only=True)
    # gradients were averaged every step, so both replicas hold the same weights
    assert torch.equal(rank0["weight"], rank1["weight"])
    saved = load_file(out / "checkpoints" / "step_000012" / "model.safetensors")
    assert torch.equal(saved["weight"], rank0["weight"])
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["world_size"] == 2
