"""Fixed evaluation subsets: the same held-out items at every evaluation, batched.

rows = fixed_subset(val, 128)       # 128 indices spread evenly over the dataset
batch = stack_items(val, rows)      # {"frames": (128, T, C, H, W), "actions": ...}
"""

from __future__ import annotations

from collections.abc import Sequence, Sized

import torch


def fixed_subset(dataset: Sized, count: int) -> list[int]:
    """`count` indices spread evenly over the dataset (all of it if it is smaller), the same
    at every call, so that every evaluation of a run scores the same items."""
    if count < 1:
        raise ValueError(f"fixed_subset needs count >= 1, got {count}")
    count = min(count, len(dataset))
    return torch.linspace(0, len(dataset) - 1, count).round().long().tolist()


def stack_items(dataset, indices: Sequence[int]) -> dict[str, torch.Tensor]:
    """The dict items at `indices` stacked key by key: {key: (len(indices), ...)}."""
    if len(indices) == 0:
        raise ValueError("stack_items needs at least one index")
    items = [dataset[i] for i in indices]
    return {key: torch.stack([torch.as_tensor(item[key]) for item in items]) for key in items[0]}
