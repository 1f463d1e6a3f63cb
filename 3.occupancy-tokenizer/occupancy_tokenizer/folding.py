"""Height folding: a 3D grid of class ids becomes a 2D image with many channels (OccWorld).

An occupancy frame is a grid of class ids, `grid[b, x, y, z]` in {0, ..., Q-1} (Occ3D: Q = 18,
id 17 = free). Ids are names, not numbers (car = 4 is not "half" of manmade = 15), so each id
is first replaced by a learned vector of C channels, a row of an embedding table:

    e[b, x, y, z, :] = W[grid[b, x, y, z], :]           W: (Q, C), learned

Driving scenes are wide and flat (Occ3D: 200 x 200 columns, only 16 voxels tall), so OccWorld
does not spend 3D convolutions on the short axis: it stacks the Z levels of each column into
the channel axis,

    image[b, z * C + c, x, y] = e[b, x, y, z, c]        (B, X, Y, Z, C) -> (B, Z*C, X, Y)

and a 2D network works on the X x Y bird's-eye image (OccWorld: 16 levels x 8 = 128 channels).
The decoder's output is unfolded the same way, (B, Z*C, X, Y) -> (B, X, Y, Z, C), and scored
against W itself (tied_head.py). Folding is a pure reshape: `unfold(fold(e)) == e` exactly.

Shapes: B batch, X, Y, Z voxel-grid sizes, Q semantic classes, C channels of a class embedding.
"""

import torch
from einops import rearrange
from torch import nn

from worldmodels.occ3d import NUM_CLASSES


def check_grid(grid: torch.Tensor, num_classes: int = NUM_CLASSES, dims: int = 4) -> None:
    """Raise a ValueError naming the problem unless `grid` is a `dims`-axis integer tensor of
    class ids in [0, num_classes): (B, X, Y, Z) for a frame batch, (B, T, X, Y, Z) for clips."""
    layout = "(B, X, Y, Z)" if dims == 4 else "(B, T, X, Y, Z)"
    if not isinstance(grid, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of class ids {layout}, got {type(grid)}")
    if grid.dtype.is_floating_point or grid.dtype.is_complex or grid.dtype == torch.bool:
        raise ValueError(
            f"expected integer class ids (uint8 or int64), got dtype {grid.dtype}; "
            "a float grid is probably one-hot, logits or a visibility mask, not ids"
        )
    if grid.dim() != dims:
        raise ValueError(f"expected a class-id grid {layout}, got shape {tuple(grid.shape)}")
    if grid.numel() == 0:
        raise ValueError(f"empty class-id grid of shape {tuple(grid.shape)}")
    low, high = int(grid.min()), int(grid.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"class ids must lie in [0, {num_classes}) (Occ3D: 17 = free), "
            f"found ids in [{low}, {high}]"
        )


def fold_height(e: torch.Tensor) -> torch.Tensor:
    """(B, X, Y, Z, C) -> (B, Z*C, X, Y): each column's Z levels stacked into the channels."""
    return rearrange(e, "b x y z c -> b (z c) x y")  # channel z*C + c holds level z, channel c


def unfold_height(image: torch.Tensor, levels: int) -> torch.Tensor:
    """(B, Z*C, X, Y) -> (B, X, Y, Z, C), the inverse of `fold_height` for Z = `levels`."""
    if image.dim() != 4 or image.shape[1] % levels != 0:
        raise ValueError(
            f"expected (B, Z*C, X, Y) with Z={levels} dividing the channels, "
            f"got shape {tuple(image.shape)}"
        )
    return rearrange(image, "b (z c) x y -> b x y z c", z=levels)  # (B, X, Y, Z, C)


class HeightFolding(nn.Module):
    """Class ids (B, X, Y, Z) -> embedded and folded image (B, Z*C, X, Y).

    `embedding.weight` (Q, C) is the table W above; the tied head reads the same tensor.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, embed_dim: int = 8, levels: int = 16):
        super().__init__()
        if num_classes < 2 or embed_dim < 1 or levels < 1:
            raise ValueError(
                "need num_classes >= 2, embed_dim >= 1, levels >= 1, "
                f"got {num_classes}, {embed_dim}, {levels}"
            )
        self.num_classes = num_classes  # Q
        self.levels = levels  # Z
        self.embedding = nn.Embedding(num_classes, embed_dim)  # W: (Q, C)

    @property
    def channels(self) -> int:
        """Z*C, the channels of the folded image."""
        return self.levels * self.embedding.embedding_dim

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        """Class ids (B, X, Y, Z), uint8 or int64 -> (B, Z*C, X, Y) float."""
        check_grid(grid, self.num_classes)
        if grid.shape[-1] != self.levels:
            raise ValueError(
                f"expected Z={self.levels} height levels, got grid shape {tuple(grid.shape)}"
            )
        e = self.embedding(grid.long())  # (B, X, Y, Z, C): e = W[id]
        return fold_height(e)  # (B, Z*C, X, Y)
