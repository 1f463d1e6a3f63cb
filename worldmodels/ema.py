"""An exponential moving average of a model's weights (`RunConfig.ema_decay`).

After every optimizer step, for every trainable parameter theta,

    ema = decay * ema + (1 - decay) * theta            (ema starts equal to theta)

so the average remembers about 1 / (1 - decay) steps (decay 0.9999, OccSora's and DiT's: the
last ~10k). Diffusion models are evaluated and sampled with these averaged weights: they
smooth out the noise of the last updates. Buffers (normalisation statistics, fixed tables)
are not averaged: the EMA model uses the model's own, which is the same as copying them at
every step. Frozen parameters (requires_grad False) never change, so they are not kept.

The trainer owns one `EMA` (when ema_decay > 0): `update` after each step, `applied` around
each evaluation (the model holds the averaged weights inside, its own again after), and
`state_dict` / `load_state_dict` for the checkpoint's `ema.safetensors`. Keep the model's
weights in float32 (autocast does the low precision): in bf16, 1 - decay = 1e-4 of a weight is
below its precision, and the average would never move.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

FILE = "ema.safetensors"  # the averaged weights in a checkpoint's step folder


def trainable(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """(name, parameter) of every trainable parameter, each shared one once."""
    return ((n, p) for n, p in model.named_parameters() if p.requires_grad)


class EMA:
    """The averaged copy of `model`'s trainable parameters, by name (module docstring)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 <= decay < 1:
            raise ValueError(f"decay={decay}: expected a number in [0, 1)")
        self.decay = decay
        self.shadow = {name: p.detach().clone() for name, p in trainable(model)}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """ema = decay * ema + (1 - decay) * theta, for each parameter (lerp: a + w (b - a))."""
        for name, p in trainable(model):
            self.shadow[name].lerp_(p.detach(), 1 - self.decay)

    @torch.no_grad()
    def copy_from(self, model: nn.Module) -> None:
        """Restart the average at the model's weights (ema = theta)."""
        for name, p in trainable(model):
            self.shadow[name].copy_(p)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Put the averaged weights into the model (theta = ema), for good."""
        for name, p in trainable(model):
            p.copy_(self.shadow[name])

    @torch.no_grad()
    def _swap(self, model: nn.Module) -> None:
        """Exchange the model's values with the average's, in place (twice: back as before).
        One tensor at a time, so at most one parameter's extra memory."""
        for name, p in trainable(model):
            held = p.detach().clone()
            p.copy_(self.shadow[name])
            self.shadow[name].copy_(held)

    @contextmanager
    def applied(self, model: nn.Module):
        """Inside: `model` holds the averaged weights; after (even after an error): its own,
        bit for bit. Its parameters stay the same tensors (a compiled model is not retraced)."""
        self._swap(model)
        try:
            yield model
        finally:
            self._swap(model)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """name -> averaged tensor (on the CPU, contiguous: ready for safetensors)."""
        return {name: value.detach().contiguous().cpu() for name, value in self.shadow.items()}

    def check(self, tensors: dict[str, torch.Tensor]) -> None:
        """Raise ValueError unless `tensors` holds exactly this average's names and shapes."""
        missing, unexpected = self.shadow.keys() - tensors.keys(), tensors.keys() - self.shadow
        if missing or unexpected:
            raise ValueError(
                f"the EMA weights do not fit this model: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        for name, value in tensors.items():
            if value.shape != self.shadow[name].shape:
                raise ValueError(
                    f"the EMA weight {name} is {tuple(value.shape)}, the model's "
                    f"{tuple(self.shadow[name].shape)}"
                )

    @torch.no_grad()
    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load a `state_dict` (checked whole first: nothing is loaded from a wrong one)."""
        self.check(tensors)
        for name, value in tensors.items():
            self.shadow[name].copy_(value)
