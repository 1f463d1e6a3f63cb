"""The scene tokenizer (OccWorld) and the 4D tokenizer (OccSora): shapes, ids that decode,
a few optimisation steps that lower the loss on a tiny synthetic grid, configs that refuse
bad values."""

import pytest
import torch
from occupancy_tokenizer.fourd import FourDTokenizer, FourDTokenizerConfig
from occupancy_tokenizer.losses import reconstruction_loss
from occupancy_tokenizer.scene import SceneTokenizer, SceneTokenizerConfig

from worldmodels.config import ConfigError
from worldmodels.occ3d import CLASS_ID, FREE

TINY_SCENE = dict(
    grid=(16, 16, 4), embed_dim=4, channels=8, channel_mults=(1, 2), latent_dim=16,
    codebook_size=32, scales=(1, 2, 4, 8), fsq_levels=(5, 5, 5),
)  # fmt: skip
TINY_4D = dict(
    grid=(8, 8, 4), frames=4, embed_dim=4, channels=16, temporal_compression=2,
    spatial_downsample=2, latent_dim=8, codebook_size=32,
)  # fmt: skip


def scenes(B: int, X: int = 16, Z: int = 4, seed: int = 0) -> torch.Tensor:
    """(B, X, X, Z) uint8: a road on the ground, sidewalks beside it, cars on the road."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.full((B, X, X, Z), FREE, dtype=torch.uint8)
    grid[..., 0] = CLASS_ID["sidewalk"]
    grid[:, :, X // 4 : 3 * X // 4, 0] = CLASS_ID["driveable_surface"]
    for b in range(B):
        for _ in range(2):
            x = int(torch.randint(0, X - 4, (1,), generator=g))
            y = int(torch.randint(X // 4, 3 * X // 4 - 2, (1,), generator=g))
            grid[b, x : x + 4, y : y + 2, 1:3] = CLASS_ID["car"]
    return grid


@pytest.mark.parametrize("quantizer", ["vq", "fsq", "multiscale"])
def test_scene_tokenizer_shapes(quantizer):
    torch.manual_seed(0)
    model = SceneTokenizer(SceneTokenizerConfig(quantizer=quantizer, **TINY_SCENE))
    grid = scenes(2)
    logits, ids, aux = model(grid)
    assert logits.shape == (2, 16, 16, 4, 18)
    assert ids.shape == ((2, 1 + 4 + 16 + 64) if quantizer == "multiscale" else (2, 8, 8))
    assert ids.dtype == torch.int64 and 0 <= int(ids.min()) and int(ids.max()) < model.codebook_size
    assert aux.shape == () and torch.isfinite(aux)
    assert torch.equal(model.encode(grid), ids)
    decoded = model.decode(ids)  # the tokens alone rebuild the forward pass's prediction
    assert decoded.shape == grid.shape and torch.equal(decoded, logits.argmax(-1))


def gradless(model, loss) -> list[str]:
    """Names of the parameters that one backward pass leaves without any gradient."""
    loss.backward()
    return [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]


@pytest.mark.parametrize("quantizer", ["vq", "fsq", "multiscale"])
def test_every_parameter_of_the_scene_tokenizer_gets_a_gradient(quantizer):
    torch.manual_seed(0)
    model = SceneTokenizer(SceneTokenizerConfig(quantizer=quantizer, **TINY_SCENE))
    grid = scenes(2)
    out = model(grid)
    assert gradless(model, reconstruction_loss(out.logits, grid, out.aux_loss)[0]) == []


def test_every_parameter_of_the_4d_tokenizer_gets_a_gradient():
    torch.manual_seed(0)
    model = FourDTokenizer(FourDTokenizerConfig(**TINY_4D))
    clips = torch.stack([scenes(4, X=8, seed=s) for s in range(2)])
    out = model(clips)
    assert gradless(model, reconstruction_loss(out.logits, clips, out.aux_loss)[0]) == []


@pytest.mark.parametrize("quantizer", ["vq", "multiscale"])
def test_scene_tokenizer_learns_a_tiny_grid(quantizer):
    torch.manual_seed(0)
    model = SceneTokenizer(SceneTokenizerConfig(quantizer=quantizer, **TINY_SCENE))
    grid = scenes(4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        out = model(grid)
        loss, _ = reconstruction_loss(out.logits, grid, out.aux_loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_fourd_tokenizer_shapes_and_learning():
    torch.manual_seed(0)
    config = FourDTokenizerConfig(**TINY_4D)
    model = FourDTokenizer(config)
    clips = torch.stack([scenes(4, X=8, seed=s) for s in range(2)])  # (B, T, X, Y, Z)
    logits, ids, aux = model(clips)
    assert logits.shape == (2, 4, 8, 8, 4, 18)
    assert ids.shape == (2, *config.token_shape) == (2, 2, 4, 4)
    assert torch.equal(model.decode(ids), logits.argmax(-1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        out = model(clips)
        loss, _ = reconstruction_loss(out.logits, clips, out.aux_loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("compression", [1, 2, 4])
def test_fourd_temporal_compression_sets_the_latent_frames(compression):
    config = FourDTokenizerConfig(**{**TINY_4D, "temporal_compression": compression})
    model = FourDTokenizer(config)
    ids = model.encode(torch.zeros(1, 4, 8, 8, 4, dtype=torch.long))
    assert ids.shape == (1, 4 // compression, 4, 4)


def test_the_debug_sizes_run_on_a_cpu():
    scene = SceneTokenizer(SceneTokenizerConfig())
    assert scene.encode(torch.zeros(1, 64, 64, 8, dtype=torch.uint8)).shape == (1, 16, 16)
    fourd = FourDTokenizer(FourDTokenizerConfig())
    assert fourd.encode(torch.zeros(1, 8, 32, 32, 8, dtype=torch.uint8)).shape == (1, 2, 8, 8)


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: SceneTokenizerConfig(quantizer="rvq"), "quantizer"),
        (lambda: SceneTokenizerConfig(grid=(62, 64, 8)), "grid"),
        (lambda: SceneTokenizerConfig(quantizer="multiscale", scales=(1, 2, 8)), "scales"),
        (lambda: SceneTokenizerConfig(codebook_size=0), "codebook_size"),
        (lambda: SceneTokenizerConfig(phi_ratio=1.5), "phi_ratio"),
        (lambda: SceneTokenizerConfig(upsample="nearest"), "upsample"),
        (lambda: SceneTokenizerConfig(multiscale_beta=-1.0), "multiscale_beta"),
        (lambda: FourDTokenizerConfig(temporal_compression=3), "temporal_compression"),
        (lambda: FourDTokenizerConfig(frames=6), "frames"),
        (lambda: FourDTokenizerConfig(grid=(30, 32, 8)), "grid"),
    ],
)
def test_configs_refuse_bad_values(make, named):
    with pytest.raises(ConfigError, match=rf"\.{named}="):
        make()


def test_models_name_a_bad_grid():
    scene = SceneTokenizer(SceneTokenizerConfig(**TINY_SCENE))
    with pytest.raises(ValueError, match=r"\(B, \*\(16, 16, 4\)\)"):
        scene(torch.zeros(1, 16, 16, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 18\)"):
        scene(torch.full((1, 16, 16, 4), 18, dtype=torch.long))
    with pytest.raises(ValueError, match="float32"):
        scene(torch.zeros(1, 16, 16, 4))
    fourd = FourDTokenizer(FourDTokenizerConfig(**TINY_4D))
    with pytest.raises(ValueError, match=r"\(B, T, X, Y, Z\)"):
        fourd(torch.zeros(4, 8, 8, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="expected clips"):
        fourd(torch.zeros(1, 3, 8, 8, 4, dtype=torch.long))


def test_the_package_exports_the_chapters_pieces():
    import occupancy_tokenizer  # a real package (an __init__), not a namespace

    assert occupancy_tokenizer.__file__ is not None
    for name in ("SceneTokenizer", "FourDTokenizer", "MultiScaleQuantizer", "EgoMotionTokenizer"):
        assert hasattr(occupancy_tokenizer, name)


@pytest.mark.parametrize("quantizer", ["vq", "multiscale"])
def test_scene_tokenizer_runs_under_bf16_autocast(quantizer):
    torch.manual_seed(0)
    model = SceneTokenizer(SceneTokenizerConfig(quantizer=quantizer, **TINY_SCENE))
    grid = scenes(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(grid)
        loss, _ = reconstruction_loss(out.logits, grid, out.aux_loss)
    assert out.logits.dtype == torch.bfloat16 and out.aux_loss.dtype == torch.float32
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    loss.backward()


def test_the_runs_loss_weights_reach_the_loss():
    from occupancy_tokenizer.build import make_loss
    from occupancy_tokenizer.config import Config, override

    torch.manual_seed(0)
    model = SceneTokenizer(SceneTokenizerConfig(**TINY_SCENE, quantizer="fsq"))
    batch = {"occupancy": scenes(2)}
    config = override(Config(), {"loss.ce_weight": 3.0, "loss.lovasz_weight": 7.0})
    loss, metrics = make_loss(config)(model, batch)
    expected = 3.0 * metrics["ce"] + 7.0 * metrics["lovasz"] + metrics["aux"]
    torch.testing.assert_close(loss.detach(), expected)
    with pytest.raises(ConfigError, match="lovasz_weight"):
        override(Config(), {"loss.lovasz_weight": -1.0})
