"""Interrupts that wait for a safe moment: SIGINT and SIGTERM become a flag.

Python delivers a signal between two bytecodes, wherever the main thread is: raising
KeyboardInterrupt there can land inside `optimizer.step()`, between the update of one
tensor and the next, and a checkpoint saved then holds a half-updated model (or the weights
of step s+1 labelled s). So while `train` runs, a signal only sets a flag; the loop reads it
at the next step boundary, where the model, the optimizer, the step count and the RNG agree,
saves there and stops:

    SIGINT (Ctrl-C, a notebook's "interrupt")  save, then raise KeyboardInterrupt
    SIGINT a second time                       raise KeyboardInterrupt at once (nothing saved
                                               after the last checkpoint: the escape hatch
                                               for a step or an evaluation that hangs)
    SIGTERM (schedulers, `kill`, torchrun)     save, then exit with code 143 (128 + 15)

Under DDP every rank must stop at the same step (the save is collective), so the trainer
combines the ranks' flags with one all-reduce per step (`Runtime.any`).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

import torch
from torch import nn


class StopRequest:
    """Context manager: while inside, SIGINT/SIGTERM set `self.signum` instead of raising.

    Handlers are installed only in the main thread (Python allows no other); elsewhere the
    default behaviour stays, and the trainer's exception path still saves what it can.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        self.signum = signum
        name = signal.Signals(signum).name
        again = " (Ctrl-C again stops at once, unsaved)" if signum == signal.SIGINT else ""
        # os.write, not print: a handler may run while the main thread is inside print.
        os.write(2, f"\n{name}: saving at the end of this step, then stopping{again}\n".encode())

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def stop(self, signum: int | None = None) -> None:
        """Raise what the signal means, once the checkpoint is saved."""
        signum = signum or self.signum or signal.SIGINT
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)


def assert_finite(model: nn.Module, step: int) -> None:
    """Raise FloatingPointError naming the parameters holding a NaN or an infinity.

    Called before every save: the log checks the loss only every `log_every` steps, and a
    non-finite checkpoint made `latest` would be what --resume reloads.
    """
    assert_finite_tensors(dict(model.named_parameters()), step)


def assert_finite_tensors(tensors: dict[str, torch.Tensor], step: int, what: str = "weights"):
    """`assert_finite` of named tensors (the model's parameters, an EMA of them)."""
    if not tensors:
        return
    finite = torch.stack([p.detach().isfinite().all() for p in tensors.values()])
    if bool(finite.all()):  # one device sync for the whole model
        return
    bad = [name for name, ok in zip(tensors, finite.tolist()) if not ok]
    raise FloatingPointError(
        f"the {what} are not finite at step {step} (NaN or inf in {', '.join(bad[:5])}); "
        "not saving them over the last good checkpoint. Lower --lr, raise --warmup_steps "
        "or set --grad_clip, then --resume from the last checkpoint"
    )


def save_after_error(
    err: BaseException,
    step: int,
    last_saved: int | None,
    in_step: bool,
    updating: bool,
    save: Callable[[int], None],
) -> None:
    """Save what was trained before `err` propagates, when the state is whole and new.

    `in_step`: the error came during step `step + 1` (its forward or backward: the weights
    are still those of `step`); `updating`: inside the optimizer's update, where the weights
    are half-written and saving them would be wrong. A save that fails (non-finite weights,
    a full disk) is reported; the original error is what propagates.
    """
    name = type(err).__name__
    where = f"{name} at step {step + in_step}"
    if updating:
        print(f"\n{name} inside the optimizer step: the weights are half-updated, not saved; "
              f"the last checkpoint (step {last_saved}) is intact")  # fmt: skip
        return
    if step == last_saved:  # nothing trained since the last checkpoint
        return
    try:
        save(step)
    except Exception as save_err:  # noqa: BLE001 (the original error matters more)
        print(f"\n{where}; could not save step {step}: {save_err}")
    else:
        print(f"\n{where}: saved step {step}; continue with --resume")
