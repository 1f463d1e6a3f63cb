"""Chamfer distance and per-ray depth errors against hand-computed cases."""

import time

import pytest
import torch

from worldmodels.metrics import lidar
from worldmodels.metrics.lidar import (
    COPILOT4D_REGION,
    chamfer_distance,
    depth_errors,
    nearest_neighbor_distances,
)


def test_chamfer_hand_cases():
    origin = torch.zeros(1, 3)
    # A = {0, (2,0,0)}, B = {0}: A->B mean (0 + 2) / 2 = 1, B->A 0 -> CD = (1 + 0) / 2.
    two = torch.tensor([[0.0, 0, 0], [2, 0, 0]])
    assert chamfer_distance(two, origin) == pytest.approx(0.5)
    assert chamfer_distance(origin, two) == pytest.approx(0.5)  # symmetric
    # squared: A->B mean (0 + 4) / 2 = 2 -> CD = 1 (m^2)
    assert chamfer_distance(two, origin, squared=True) == pytest.approx(1.0)
    # 3-4-5: one point each, distance 5 both ways.
    assert chamfer_distance(torch.tensor([[3.0, 4, 0]]), origin) == pytest.approx(5.0)
    assert chamfer_distance(two, two) == 0.0


def test_inner_region_crops_both_clouds_inclusively():
    pred = torch.tensor([[0.0, 0, 0], [100, 0, 0]])
    target = torch.tensor([[0.0, 0, 0], [70, 0, 4.5]])  # on the region's boundary: kept
    # Full: (100, 0, 0) and (70, 0, 4.5) are each other's nearest, 30.34 m apart, the
    # origins match: both directions average (0 + 30.34) / 2, so CD = 30.34 / 2.
    far = (30**2 + 4.5**2) ** 0.5
    assert chamfer_distance(pred, target) == pytest.approx(far / 2)
    # Inner: pred keeps the origin only; target keeps both -> (0 + (0 + 70.144) / 2) / 2.
    edge = (70**2 + 4.5**2) ** 0.5
    assert chamfer_distance(pred, target, COPILOT4D_REGION) == pytest.approx(edge / 4)


def test_empty_clouds_raise():
    cloud = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="pred has no points"):
        chamfer_distance(torch.zeros(0, 3), cloud)
    with pytest.raises(ValueError, match="target has no points inside region"):
        chamfer_distance(cloud, torch.tensor([[0.0, 0, 50]]), region=COPILOT4D_REGION)
    with pytest.raises(ValueError, match=r"\(P, 3\+\)"):
        chamfer_distance(torch.zeros(4, 2), cloud)
    with pytest.raises(ValueError, match="NaN"):
        chamfer_distance(torch.full((1, 3), float("nan")), cloud)


@pytest.mark.parametrize("sizes", [(1, 1), (1, 300), (257, 3), (2000, 1500)])
def test_nearest_neighbours_are_exact(sizes):
    generator = torch.Generator().manual_seed(sum(sizes))
    query = torch.randn(sizes[0], 3, generator=generator) * 30 + 50  # far from the origin
    reference = torch.randn(sizes[1], 3, generator=generator) * 30 + 50
    reference[:, 2] *= 0.05  # flat, LiDAR-like
    expected = torch.cdist(query.double(), reference.double()).min(dim=1).values
    found = nearest_neighbor_distances(query, reference, leaf_size=16)
    assert torch.allclose(found.double(), expected, atol=1e-4)


def test_100k_chamfer_runs_in_blocks(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    size = torch.tensor([80.0, 80.0, 6.0])
    pred = torch.rand(100_000, 3, generator=generator) * size
    target = torch.rand(100_000, 3, generator=generator) * size
    largest = [0]
    blocks = lidar._nearest_in_blocks

    def recording(query, candidates):
        largest[0] = max(largest[0], query.shape[0] * query.shape[1] * candidates.shape[1])
        return blocks(query, candidates)

    monkeypatch.setattr(lidar, "_nearest_in_blocks", recording)
    start = time.perf_counter()
    distance = chamfer_distance(pred, target)
    seconds = time.perf_counter() - start
    # 2 uniform clouds of 1e5 points in 38,400 m^3: NN distance ~ 0.554 (V / P)^(1/3) ~ 0.40.
    assert 0.3 < distance < 0.5
    # At most (2^19 box pairs / 2048 leaves) = 256 query leaves x 64 x 64 distances at once,
    # against 1e10 for a full 100k x 100k matrix (40 GB in float32).
    assert largest[0] <= 256 * 64 * 64
    assert seconds < 30.0, f"100k x 100k Chamfer took {seconds:.1f} s"


def test_depth_errors_hand_case():
    pred = torch.tensor([1.0, 2.0, 5.0, 0.5, 9.0])
    true = torch.tensor([1.0, 4.0, 0.0, 1.0, float("nan")])  # rays 2, 4: no return
    errors = depth_errors(pred, true)
    # valid rays 0, 1, 3: |errors| = 0, 2, 0.5; relative 0, 0.5, 0.5
    assert errors["rays"] == 3
    assert errors["depth_l1"] == pytest.approx(2.5 / 3)
    assert errors["depth_absrel"] == pytest.approx(1.0 / 3)
    only_first_two = torch.tensor([True, True, True, False, True])
    masked = depth_errors(pred, true, valid=only_first_two)
    assert masked["depth_l1"] == pytest.approx(1.0) and masked["rays"] == 2


def test_depth_errors_reject_bad_input():
    with pytest.raises(ValueError, match="no valid rays"):
        depth_errors(torch.ones(3), torch.zeros(3))
    with pytest.raises(ValueError, match="differ"):
        depth_errors(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="pred_depth is NaN"):
        depth_errors(torch.tensor([float("nan")]), torch.tensor([2.0]))
