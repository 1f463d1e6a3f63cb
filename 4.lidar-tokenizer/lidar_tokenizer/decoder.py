"""The tokenizer's Swin decoder: tokens back up to the BEV resolution the heads read.

The encoder's mirror image (CoPilot4D: Linear -> 6 Swin blocks at (128, 128, 256) -> patch
upsample -> (256, 256, 128) -> 2 Swin blocks -> the heads):

    codes (B, h, w, E)
      -> Linear to the last stage's width, + a learned position embedding
      -> SwinStage at the coarsest grid
      -> PatchExpand (2x up, half the width) -> SwinStage        once per earlier stage
      -> LayerNorm                        (B, h', w', dims[0]),  h' = h * 2^(stages - 1)

The position embedding is ours (CoPilot4D does not say): windows see only relative offsets,
and where a token sits matters to what it should decode into (the ego is at the centre,
far cells are sparse and seen from one side).

Shapes: B batch, h, w token-grid height, width, E code dims of a quantizer, D model width.
"""

import torch
from torch import nn

from lidar_tokenizer.swin import PatchExpand, SwinStage


class SwinDecoder(nn.Module):
    """codes (B, h, w, E) -> BEV features (B, h 2^(s-1), w 2^(s-1), dims[0]), s stages.

    `dims`, `depths`, `heads` are given in the encoder's order (finest stage first) and run
    in reverse: the decoder starts at dims[-1] on the token grid."""

    def __init__(
        self,
        code_dim: int,
        token_grid: tuple[int, int],
        dims: tuple[int, ...],
        depths: tuple[int, ...],
        heads: tuple[int, ...],
        window: int,
        mlp_ratio: float = 4,
    ):
        super().__init__()
        self.from_code = nn.Linear(code_dim, dims[-1])
        self.position = nn.Parameter(torch.zeros(1, *token_grid, dims[-1]))
        nn.init.trunc_normal_(self.position, std=0.02)
        order = list(zip(dims, depths, heads))[::-1]  # coarsest first
        self.stages = nn.ModuleList(
            SwinStage(dim, depth, head, window, mlp_ratio) for dim, depth, head in order
        )
        self.expands = nn.ModuleList(
            PatchExpand(coarse, fine) for (coarse, _, _), (fine, _, _) in zip(order, order[1:])
        )
        self.norm = nn.LayerNorm(dims[0])

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, h, w, E) -> (B, h', w', dims[0])."""
        x = self.from_code(codes) + self.position  # (B, h, w, D)
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.expands[i - 1](x)  # (B, 2h, 2w, next D)
            x = stage(x)  # (B, h, w, D)
        return self.norm(x)
