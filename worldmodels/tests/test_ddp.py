"""DDP under torchrun with the gloo backend: two CPU processes train one model in step.

One launch (each costs seconds of process start-up on a 2-core CPU) runs, in both processes:

  straight   12 steps with an evaluator on rank 0 only (the others pass None, as train.py
             does): every evaluation's barrier must be met, or the run deadlocks
  split      the same run, stopped by a SIGTERM that only rank 1 receives (inside its loss,
             at step 7): both ranks must stop at the same step boundary and save; then
             resumed in place, it must end bit for bit where `straight` ended, which needs
             every rank's RNG state (the model draws noise from each rank's own stream)
  plain      a noise-free model, 2 x batch 8, compared with one process of batch 16
"""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import TensorDataset

from worldmodels.config import RunConfig
from worldmodels.runlog import read_log
from worldmodels.runtime import setup_runtime
from worldmodels.trainer import train

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import torch
    from torch import nn
    from worldmodels.config import RunConfig
    from worldmodels.runtime import setup_runtime, teardown_runtime
    from worldmodels.trainer import train

    sys.path.insert(0, sys.argv[2])  # this test's folder: the data and loss are shared
    from test_ddp import mse, pairs

    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 1)
            self.register_buffer("calls", torch.zeros(()))  # DDP broadcasts buffers each step

        def forward(self, x):
            self.calls += 1
            return self.net(x + 0.1 * torch.randn_like(x))

    out = Path(sys.argv[1])
    runtime = setup_runtime("cpu", "float32", seed=0)
    data = pairs()

    def evaluate(model, step):
        return {"mse": float(mse(model, data[:])[0])}

    def run(name, make, loss=mse, resume=False, evaluator=True, steps=12):
        torch.manual_seed(0)  # the same initial weights on every rank, as DDP requires
        model = make()
        if resume:  # a resumed process starts from other RNG states than the original
            torch.manual_seed(1234 + runtime.rank)
        config = RunConfig(steps=steps, batch_size=8, lr=1e-2, warmup_steps=2, log_every=4,
                           eval_every=4, checkpoint_every=6, progress=False, resume=resume)
        evaluator = evaluate if evaluator and runtime.is_main else None
        train(model, loss, data, config, runtime, out / name,
              {"world_size": runtime.world_size}, evaluate=evaluator)
        torch.save(model.state_dict(), out / name / f"rank{runtime.rank}.pt")

    run("straight", Noisy)
    calls = {"n": 0}

    def sigterm_on_rank_1(model, batch):
        calls["n"] += 1
        if runtime.rank == 1 and calls["n"] == 7:
            os.kill(os.getpid(), signal.SIGTERM)
        return mse(model, batch)

    try:
        run("split", Noisy, loss=sigterm_on_rank_1)
    except SystemExit as stop:
        (out / "split" / f"exit{runtime.rank}").write_text(str(stop.code))
    run("split", Noisy, resume=True)
    run("plain", lambda: nn.Linear(4, 1), evaluator=False)
    teardown_runtime(runtime)
    """
)


class Pairs(TensorDataset):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return {"x": x, "y": y}


def pairs() -> Pairs:
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    return Pairs(x, x.sum(1, keepdim=True))


def mse(model, batch):
    return ((model(batch["x"]) - batch["y"]) ** 2).mean(), {}


def launch(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",  # a free port on localhost, so parallel runs cannot collide
        str(script),
        str(out),
        str(Path(__file__).parent),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    if result.returncode != 0 and "terminate called without an active exception" in result.stderr:
        # Once in CI (not reproduced in dozens of local runs) a rank aborted in gloo's C++
        # teardown after training had finished; run once more before calling it a failure.
        shutil.rmtree(out, ignore_errors=True)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_two_process_gloo_training_with_evaluation_stop_and_resume(tmp_path):
    out = launch(tmp_path)
    load = lambda path: torch.load(path, weights_only=True)  # noqa: E731
    straight = [load(out / "straight" / f"rank{r}.pt") for r in (0, 1)]
    # gradients were averaged every step, so both replicas hold the same weights
    assert torch.equal(straight[0]["net.weight"], straight[1]["net.weight"])
    saved = load_file(out / "straight" / "checkpoints" / "step_000012" / "model.safetensors")
    assert torch.equal(saved["net.weight"], straight[0]["net.weight"])
    evaluations = [r["step"] for r in read_log(out / "straight" / "log.jsonl") if "eval/mse" in r]
    assert evaluations == [4, 8, 12]

    # the SIGTERM reached rank 1 only; both ranks stopped after step 7 and exited 143
    split = out / "split"
    assert [(split / f"exit{r}").read_text() for r in (0, 1)] == ["143", "143"]
    info = json.loads((split / "run.json").read_text())
    assert [r["from_step"] for r in info["resumes"]] == [7]
    # ... and the resumed run ends bit for bit where the uninterrupted one did
    for rank in (0, 1):
        resumed = load(split / f"rank{rank}.pt")
        assert all(torch.equal(resumed[k], straight[rank][k]) for k in straight[rank])
    opt = [load(out / name / "checkpoints" / "step_000012" / "optimizer.pt") for name in
           ("straight", "split")]  # fmt: skip
    for a, b in zip(opt[0]["optimizer"]["state"].values(), opt[1]["optimizer"]["state"].values()):
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    for a, b in zip(opt[0]["rng_ranks"], opt[1]["rng_ranks"]):  # every rank's RNG state
        assert torch.equal(a["torch"], b["torch"])
    # no step logged twice; the same evaluations, and the same loss once a log window no
    # longer spans the resume (step 8's window is steps 5-8 in one run, step 8 in the other)
    logs = [read_log(out / name / "log.jsonl") for name in ("straight", "split")]
    rows = [[(r["step"], r.get("eval/mse")) for r in log] for log in logs]
    assert rows[0] == rows[1]
    assert logs[0][-2]["step"] == 12 and logs[0][-2]["loss"] == logs[1][-2]["loss"]

    # two processes of batch 8 = one process of batch 16, within float tolerance
    torch.manual_seed(0)
    single = nn.Linear(4, 1)
    run = RunConfig(steps=12, batch_size=16, lr=1e-2, warmup_steps=2, log_every=4,
                    eval_every=4, checkpoint_every=6, progress=False)  # fmt: skip
    train(single, mse, pairs(), run, setup_runtime("cpu", "float32"), tmp_path / "single", {})
    two = load(out / "plain" / "rank0.pt")
    for key, value in single.state_dict().items():
        torch.testing.assert_close(two[key], value, rtol=1e-5, atol=1e-6)
