"""VQ with k-means restarts: dead codes come back, counters, the loss weights, k-means."""

import math

import torch
import torch.nn.functional as F
from lidar_tokenizer.restarts import RestartingVectorQuantizer, kmeans
from video_tokenizer.quantizer import Quantized
from video_tokenizer.vq import VectorQuantizer

K = 16
CENTRES = 5 * torch.stack(
    [torch.cos(torch.arange(K) * 2 * math.pi / K), torch.sin(torch.arange(K) * 2 * math.pi / K)],
    dim=-1,
)  # (K, 2): K clusters on a circle of radius 5, 2 apart


def latents(n: int = 256) -> torch.Tensor:
    """(4, n / 4, 2): points of all K clusters, spread 0.05."""
    which = torch.randint(K, (n,))
    return (CENTRES[which] + 0.05 * torch.randn(n, 2)).reshape(4, n // 4, 2)


def collapsed_quantizer(**overrides) -> RestartingVectorQuantizer:
    """Every code but code 0 far from every latent: code 0 takes everything, 15 are dead."""
    settings = dict(dead_after=4, min_steps_between=4, bank_size=10 * K, bank_steps=4)
    vq = RestartingVectorQuantizer(codebook_size=K, dim=2, **(settings | overrides))
    with torch.no_grad():
        vq.codebook.weight.fill_(100.0)
        vq.codebook.weight[0] = 0.0
    return vq


def test_a_restart_revives_dead_codes():
    torch.manual_seed(0)
    vq = collapsed_quantizer().train()
    for _ in range(4):  # 4 steps: codes 1..15 idle for 4 steps = dead, the bank full
        assert vq(latents()).indices.unique().tolist() == [0]
    assert vq.dead_fraction() == 15 / 16 and int(vq.restarts) == 0
    after = vq(latents())  # the 5th step restarts first, then quantizes
    assert int(vq.restarts) == 1
    assert after.indices.unique().numel() == K  # every code is picked again
    # k-means put the codebook where the latents are, on the circle of radius 5 (not each
    # code on its own cluster: on ~6% of seeds k-means stops with one code between two)
    assert (vq.codebook.weight.norm(dim=1) - 5).abs().max() < 0.5
    assert vq.dead_fraction() == 0.0 and vq.usage_fraction() == 1.0


def test_plain_vq_stays_collapsed():
    """The control: chapter 1's VQ on the same data never revives its codes."""
    torch.manual_seed(0)
    vq = VectorQuantizer(K, 2).train()
    with torch.no_grad():
        vq.codebook.weight.fill_(100.0)
        vq.codebook.weight[0] = 0.0
    for _ in range(6):
        assert vq(latents()).indices.unique().tolist() == [0]


def test_restarts_wait_min_steps_between():
    torch.manual_seed(0)
    vq = collapsed_quantizer(min_steps_between=8).train()
    for _ in range(8):  # codes dead from step 4 on, but a restart needs 8 recorded steps
        vq(latents())
    assert int(vq.restarts) == 0
    vq(latents())  # the 9th step
    assert int(vq.restarts) == 1


def test_no_restart_and_no_bank_write_in_eval():
    torch.manual_seed(0)
    vq = collapsed_quantizer().train()
    for _ in range(4):
        vq(latents())
    assert vq.restart_due()  # due now: the next training step would restart
    vq.eval()
    bank, idle = vq.bank.clone(), vq.idle_steps.clone()
    for _ in range(3):
        assert vq(latents()).indices.unique().tolist() == [0]
    assert int(vq.restarts) == 0
    assert torch.equal(vq.bank, bank) and torch.equal(vq.idle_steps, idle)
    vq.train()
    vq(latents())
    assert int(vq.restarts) == 1


def test_idle_counter_resets_on_use():
    vq = collapsed_quantizer().train()
    vq(torch.zeros(1, 2))  # picks code 0
    vq(torch.zeros(1, 2))
    assert vq.idle_steps[0] == 0 and (vq.idle_steps[1:] == 2).all()


def test_returns_chapter_one_quantized_with_copilot4d_loss_weights():
    torch.manual_seed(0)
    vq = RestartingVectorQuantizer(codebook_size=K, dim=2).eval()
    z = torch.randn(3, 5, 2, requires_grad=True)
    out = vq(z)
    assert isinstance(out, Quantized) and out.codes.shape == z.shape
    assert torch.equal(out.indices, vq.nearest(z.detach()))
    e = vq.indices_to_codes(out.indices).detach()  # (3, 5, 2)
    # 0.25 ||sg[z] - e||^2 + 1.0 ||z - sg[e]||^2: both terms equal in value
    torch.testing.assert_close(out.aux_loss, 1.25 * F.mse_loss(z.detach(), e))
    out.aux_loss.backward()  # the encoder's gradient comes from the 1.0 term alone
    torch.testing.assert_close(z.grad, 1.0 * 2 * (z.detach() - e) / z.numel())


def test_bank_is_a_ring_of_recent_latents():
    vq = RestartingVectorQuantizer(codebook_size=2, dim=2, bank_size=4, bank_steps=2).train()
    vq(torch.full((1, 3, 2), 1.0))  # 2 rows written
    assert int(vq.bank_filled) == 2 and (vq.bank[:2] == 1.0).all()
    vq(torch.full((1, 3, 2), 2.0))
    vq(torch.full((1, 3, 2), 3.0))  # the oldest rows are overwritten
    assert int(vq.bank_filled) == 4
    assert sorted(vq.bank[:, 0].tolist()) == [2.0, 2.0, 3.0, 3.0]


def test_kmeans_finds_separated_clusters():
    torch.manual_seed(0)
    truth = CENTRES[::4]  # (4, 2): 7 m apart
    points = torch.cat([c + 0.1 * torch.randn(50, 2) for c in truth])  # (200, 2)
    centres = kmeans(points, 4, iters=10)
    assert torch.cdist(truth, centres).min(dim=1).values.max() < 0.1  # one centre each
