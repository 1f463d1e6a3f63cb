"""The tokenizer: shapes, causality in time, clear errors, and it learns."""

import pytest
import torch
import torch.nn.functional as F
from video_tokenizer import TokenizerConfig, VideoTokenizer

TINY = dict(image_size=16, patch=4, dim=32, heads=2, encoder_depth=1, decoder_depth=1)


def tiny(**overrides) -> VideoTokenizer:
    torch.manual_seed(0)
    return VideoTokenizer(TokenizerConfig(**(TINY | overrides))).eval()


def latent_of_frame(frame: int, factor: int) -> int:
    """The latent frame that covers `frame`: 0 for frame 0, then one per group of `factor`."""
    return 0 if frame == 0 else 1 + (frame - 1) // factor


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
@pytest.mark.parametrize("factor, T", [(1, 1), (1, 4), (2, 1), (2, 5), (4, 9)])
def test_encode_decode_shapes(quantizer, factor, T):
    model = tiny(quantizer=quantizer, temporal_compression=factor, vq_codebook_size=64)
    frames = torch.rand(2, T, 3, 16, 16)
    T_latent = 1 + (T - 1) // factor
    assert model.tokens_shape(T) == (T_latent, 4, 4)
    indices = model.encode(frames)
    assert indices.shape == (2, T_latent, 4, 4)
    assert indices.dtype == torch.int64
    assert 0 <= indices.min() and indices.max() < model.codebook_size
    decoded = model.decode(indices)
    assert decoded.shape == frames.shape
    assert 0 <= decoded.min() and decoded.max() <= 1
    # The two paths agree: decode(encode(x)) is forward's reconstruction, clamped.
    output = model(frames)
    assert torch.equal(output.indices, indices)
    assert torch.allclose(decoded, output.recon.clamp(0, 1), atol=1e-6)


def test_codebook_size():
    assert tiny().codebook_size == 8 * 5 * 5 * 5
    assert tiny(quantizer="vq", vq_codebook_size=64).codebook_size == 64


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
@pytest.mark.parametrize("factor, T", [(1, 4), (2, 5), (3, 7)])
def test_changing_a_frame_never_changes_the_past(quantizer, factor, T):
    model = tiny(quantizer=quantizer, temporal_compression=factor, vq_codebook_size=64)
    torch.nn.init.normal_(model.head.proj.weight)  # the zero-initialised head would hide
    frames = torch.rand(1, T, 3, 16, 16)  # every change of the decoder's output
    for changed in range(1, T):
        edited = frames.clone()
        edited[:, changed] = torch.rand(3, 16, 16)  # a different frame at time `changed`
        j = latent_of_frame(changed, factor)  # the first latent frame that sees it
        z, z_edit = model.encode_latents(frames), model.encode_latents(edited)
        # Latent frames covering only frames < changed: bit-for-bit the same ...
        assert torch.equal(z[:, :j], z_edit[:, :j])
        assert torch.equal(model.encode(frames)[:, :j], model.encode(edited)[:, :j])
        # ... while the latent frame that covers the change does move (so this can fail).
        assert not torch.allclose(z[:, j], z_edit[:, j])
        # The decoder is causal too: reconstructed frames before the changed group stay put.
        first_frame_of_group = 0 if j == 0 else 1 + (j - 1) * factor
        recon, recon_edit = model(frames).recon, model(edited).recon
        assert torch.equal(recon[:, :first_frame_of_group], recon_edit[:, :first_frame_of_group])
        assert not torch.allclose(recon[:, changed], recon_edit[:, changed])


def test_a_compressed_latent_sees_all_frames_of_its_group():
    model = tiny(temporal_compression=4)
    frames = torch.rand(1, 9, 3, 16, 16)  # latents: {0}, {1..4}, {5..8}
    z = model.encode_latents(frames)
    for changed in (1, 4):  # first and last frame of latent 1's group
        edited = frames.clone()
        edited[:, changed] = torch.rand(3, 16, 16)
        z_edit = model.encode_latents(edited)
        assert torch.equal(z[:, 0], z_edit[:, 0])
        assert not torch.allclose(z[:, 1], z_edit[:, 1])


def test_frame_count_errors():
    with pytest.raises(ValueError, match=r"must be 1 \+ 4\*k"):
        tiny(temporal_compression=4).encode(torch.rand(1, 4, 3, 16, 16))
    with pytest.raises(ValueError, match="max_frames=16"):
        tiny().encode(torch.rand(1, 17, 3, 16, 16))


def test_config_errors():
    with pytest.raises(ValueError, match="unknown quantizer 'rvq'"):
        TokenizerConfig(quantizer="rvq")
    with pytest.raises(ValueError, match="dim=30 is not divisible by heads=4"):
        TokenizerConfig(dim=30)
    with pytest.raises(ValueError, match="frame size 60x60 is not divisible by patch 8"):
        TokenizerConfig(image_size=60)
    with pytest.raises(ValueError, match="temporal_compression must be >= 1"):
        TokenizerConfig(temporal_compression=0)
    with pytest.raises(ValueError, match="fsq_levels"):
        TokenizerConfig(fsq_levels=(8, 1))
    assert TokenizerConfig(fsq_levels=[8, 5]).fsq_levels == (8, 5)  # lists from JSON


def test_wrong_frame_size_for_the_model_raises():
    with pytest.raises(ValueError, match="frame size 15x16 is not divisible by patch 4"):
        tiny().encode(torch.rand(1, 1, 3, 15, 16))


def test_runs_under_bf16_autocast():
    model = tiny()
    frames = torch.rand(2, 3, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(frames)
    assert output.indices.dtype == torch.int64
    assert torch.isfinite(output.recon.float()).all()


def moving_squares(B: int = 8, T: int = 3, size: int = 16) -> torch.Tensor:
    """A batch of clips (B, T, 3, size, size): a coloured 6x6 square sliding right by one
    pixel per frame over a plain background of another random colour."""
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(B, 1, 3, 1, 1, generator=g).expand(B, T, 3, size, size).clone()
    for b in range(B):
        colour = torch.rand(3, 1, 1, generator=g)
        row, col = torch.randint(0, size - 8, (2,), generator=g).tolist()
        for t in range(T):
            frames[b, t, :, row : row + 6, col + t : col + t + 6] = colour
    return frames


@pytest.mark.parametrize("quantizer, factor", [("fsq", 4), ("vq", 1.5)])
def test_tiny_model_overfits_one_batch(quantizer, factor):
    model = tiny(quantizer=quantizer, fsq_levels=(5, 5, 5), vq_codebook_size=64, vq_dim=8)
    model.train()
    frames = moving_squares()
    # The best reconstruction that ignores the codes: each pixel's mean over the batch.
    # Beating it means per-clip content passes through the discrete bottleneck.
    blind = F.mse_loss(frames, frames.mean(0, keepdim=True).expand_as(frames)).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        output = model(frames)
        mse = F.mse_loss(output.recon, frames)
        optimizer.zero_grad()
        (mse + output.aux_loss).backward()
        optimizer.step()
        losses.append(mse.item())
    assert losses[-1] < losses[0] / factor
    assert losses[-1] < 0.75 * blind
