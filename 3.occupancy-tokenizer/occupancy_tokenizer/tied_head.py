"""The output head tied to the input embedding (OccWorld).

The decoder ends with Z*C channels per column; unfolded, that is one C-vector d[x, y, z] per
voxel. Instead of a fresh Linear(C, Q), OccWorld scores it against the input's own class table
W (Q, C) (folding.py):

    logit[x, y, z, q] = d[x, y, z] . W[q]          one dot product per class, every level

So "predict class q" means "decode a vector that points the way q's embedding points": input
and output share one meaning of each class, and the head adds no parameters (Press & Wolf 2017
tied a language model's input and output embeddings the same way). The same W serves every
height level: a car at z = 0 and a car at z = 3 are the same class.

Shapes: B batch, X, Y, Z voxel-grid sizes, C channels of a class embedding, Q semantic classes.
"""

import torch
from einops import einsum
from torch import nn

from occupancy_tokenizer.folding import unfold_height


class TiedHead(nn.Module):
    """Decoded image (B, Z*C, X, Y) -> class logits (B, X, Y, Z, Q), weights W of `embedding`.

    The embedding is held by reference, not copied: a gradient from the logits and a gradient
    from the input both land in the one `embedding.weight`. It is not registered as a
    submodule, so the model's state_dict names the table once (under its owner, the folding):
    safetensors refuses to save one tensor under two names.
    """

    def __init__(self, embedding: nn.Embedding, levels: int):
        super().__init__()
        object.__setattr__(self, "_tied", embedding)  # plain attribute: not a submodule
        self.levels = levels  # Z

    @property
    def embedding(self) -> nn.Embedding:
        """The shared class table: the same Parameter as the input's."""
        return self._tied

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, Z*C, X, Y) -> logits (B, X, Y, Z, Q)."""
        d = unfold_height(image, self.levels)  # (B, X, Y, Z, C): one vector per voxel
        W = self.embedding.weight  # (Q, C)
        return einsum(d, W.to(d.dtype), "b x y z c, q c -> b x y z q")  # d . W[q]
