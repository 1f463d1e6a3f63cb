"""Windows of a token grid, the bookkeeping under Swin's attention (Liu et al. 2021).

Full attention over the h*w tokens of a BEV grid costs (h*w)^2: at CoPilot4D's 256 x 256 that
is 4e9 pairs per head. Swin cuts the grid into non-overlapping windows of s x s tokens and
attends inside each window only, L = s^2 tokens, n = (h/s)(w/s) windows:

    cost = n * L^2 = h*w * s^2         (linear in the number of tokens)

Windows alone never exchange information, so every second block moves the window grid by
s/2 tokens ("shifted windows"). Moving the grid would leave partial windows at the border;
Swin instead rolls the whole image by -s/2 (torch.roll), so the same n full windows can be
batched, and masks the pairs that the roll brought together from opposite borders:

    rolled image, s = 4, shift 2        the last window column holds columns 2..3 of
    . . . . | . . . .                   the original next to columns 0..1 (wrapped round):
    . . . . | . . A A B B  <- wrap      A may see A, B may see B, never A <-> B.

Both are a way to compute "attention restricted to a window grid offset by `shift`", which is
what the tests check against a naive full attention.

Shapes: B batch, h, w token-grid height, width, D model width, L flattened sequence length
(tokens of a window, s^2 for a window of s x s tokens), n windows per image (a count local
to the function, said beside it).
"""

import torch
from einops import rearrange


def check_windows(h: int, w: int, window: int) -> None:
    """A (h, w) token grid must split into whole windows of `window` x `window` tokens."""
    if window < 1 or h % window or w % window:
        raise ValueError(
            f"a {h} x {w} token grid does not split into {window} x {window} windows; "
            "choose a window that divides both sides (or a grid that the window divides)"
        )


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, h, w, D) -> (B, n, L, D): n = (h/s)(w/s) windows of L = s*s tokens, s = window.

    Window order is row-major over the window grid; token order inside a window is row-major.
    """
    check_windows(x.shape[1], x.shape[2], window)
    return rearrange(x, "b (nh wh) (nw ww) d -> b (nh nw) (wh ww) d", wh=window, ww=window)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """(B, n, L, D) -> (B, h, w, D): the inverse of `window_partition`."""
    return rearrange(
        windows, "b (nh nw) (wh ww) d -> b (nh wh) (nw ww) d", nh=h // window, wh=window
    )


def region_labels(h: int, w: int, window: int, shift: int, device=None) -> torch.Tensor:
    """(h, w) int64: which of the original image's pieces each token of the ROLLED image is.

    After rolling by -shift, rows [0, h - window) are interior, [h - window, h - shift) are
    the last original rows before the wrap, and [h - shift, h) wrapped round from the top;
    the same for columns. Tokens of one window may attend to each other only if they carry
    the same label (Swin's 3 x 3 slices; with shift = 0 every token has label 0).
    """
    row_piece = torch.zeros(h, dtype=torch.long, device=device)  # (h,)
    col_piece = torch.zeros(w, dtype=torch.long, device=device)  # (w,)
    if shift > 0:
        row_piece[h - window :] = 1
        row_piece[h - shift :] = 2
        col_piece[w - window :] = 1
        col_piece[w - shift :] = 2
    return row_piece[:, None] * 3 + col_piece[None, :]  # (h, w): one of 9 pieces


def shifted_window_mask(h: int, w: int, window: int, shift: int, device=None) -> torch.Tensor:
    """(n, L, L) bool, True = may attend: which pairs inside each window of the rolled image
    were neighbours (the same piece) before the roll. All True when shift = 0."""
    if not 0 <= shift < window:
        raise ValueError(f"shift must lie in [0, window={window}), got {shift}")
    labels = region_labels(h, w, window, shift, device)[None, :, :, None]  # (1, h, w, 1)
    labels = window_partition(labels, window)[0, :, :, 0]  # (n, L)
    return labels[:, :, None] == labels[:, None, :]  # (n, L, L)


def relative_position_index(window: int) -> torch.Tensor:
    """(L, L) int64 index into a table of (2s - 1)^2 relative offsets, s = window.

    Tokens q = (qr, qc) and k = (kr, kc) of one window are (qr - kr, qc - kc) apart, each in
    [-(s-1), s-1]; shifting both by s - 1 and reading them as two digits base 2s - 1 gives
    one index per offset, so every pair at the same offset reads the same learned bias.
    """
    rows, cols = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    position = torch.stack([rows.flatten(), cols.flatten()], dim=-1)  # (L, 2)
    offset = position[:, None, :] - position[None, :, :] + (window - 1)  # (L, L, 2) >= 0
    return offset[..., 0] * (2 * window - 1) + offset[..., 1]  # (L, L)
