"""Every quantizer returns the same Quantized tuple, so a model never asks which one it has."""

import pytest
import torch
from video_tokenizer import FSQ, Quantized, TokenizerConfig, VectorQuantizer, VideoTokenizer


@pytest.mark.parametrize("make", [lambda: FSQ((8, 5, 5, 5)), lambda: VectorQuantizer(64, 4)])
def test_one_return_type_and_codes_from_indices(make):
    torch.manual_seed(0)
    quantizer = make()
    z = torch.randn(2, 3, 4, quantizer.dim)  # (..., E)
    out = quantizer(z)
    assert isinstance(out, Quantized)
    assert out.codes.shape == z.shape and out.codes.dtype == z.dtype
    assert out.indices.shape == z.shape[:-1] and out.indices.dtype == torch.int64
    assert out.aux_loss.shape == () and out.aux_loss.dtype == torch.float32
    assert 0 <= out.indices.min() and out.indices.max() < quantizer.codebook_size
    # Equal up to float rounding: VQ's straight-through z + (e - z) is e to within an ulp.
    assert torch.allclose(quantizer.indices_to_codes(out.indices), out.codes, atol=1e-6)


def test_fsq_adds_no_loss_and_vq_does():
    z = torch.randn(5, 4)
    assert FSQ((8, 5, 5, 5))(z).aux_loss.item() == 0.0
    assert VectorQuantizer(16, 4)(z).aux_loss.item() > 0.0


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_the_model_reads_the_tuple_by_name(quantizer):
    config = TokenizerConfig(image_size=16, patch=4, dim=16, heads=2, encoder_depth=1,
                             decoder_depth=1, quantizer=quantizer, vq_codebook_size=32)  # fmt: skip
    torch.manual_seed(0)
    model = VideoTokenizer(config).eval()
    frames = torch.rand(1, 2, 3, 16, 16)
    q = model.quantize(model.encode_latents(frames))
    assert isinstance(q, Quantized)
    assert torch.equal(q.indices, model.encode(frames))
    assert torch.equal(model(frames).aux_loss, q.aux_loss)
