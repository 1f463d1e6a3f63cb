"""Rays from points, samples along them, and the sensor pattern."""

import pytest
import torch
from lidar_tokenizer.rays import (
    Rays,
    points_at,
    rays_from_points,
    sample_depths,
    sensor_directions,
    sensor_rays,
    subsample_rays,
)

from worldmodels.data.driving.config import KITTI_HDL64, LidarConfig


@pytest.mark.parametrize("origin", [(0.0, 0.0, 0.0), (1.5, -2.0, 1.84)])
def test_rays_have_unit_directions_and_the_points_distances(origin):
    points = torch.randn(200, 3, dtype=torch.float64) * 20
    rays = rays_from_points(points, origin)
    offset = points - torch.tensor(origin, dtype=torch.float64)
    assert torch.allclose(rays.dirs.norm(dim=-1), torch.ones(200, dtype=torch.float64))
    assert torch.allclose(rays.depths, offset.norm(dim=-1))
    assert torch.allclose(points_at(rays.origins, rays.dirs, rays.depths), points)  # o + D d = p
    assert rays.origins.shape == points.shape


def test_rays_keep_leading_axes_and_per_ray_origins():
    points = torch.randn(2, 5, 3) * 10
    origins = torch.randn(2, 5, 3)
    rays = rays_from_points(points, origins)
    assert rays.dirs.shape == (2, 5, 3) and rays.depths.shape == (2, 5)
    assert torch.allclose(rays.origins + rays.depths[..., None] * rays.dirs, points, atol=1e-5)


def test_bad_points_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        rays_from_points(torch.tensor([[1.0, float("nan"), 0.0]]), (0, 0, 0))
    with pytest.raises(ValueError, match="zero-length"):
        rays_from_points(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]), (0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        rays_from_points(torch.zeros(4, 2), (0, 0, 0))
    with pytest.raises(ValueError, match="floating"):
        rays_from_points(torch.ones(4, 3, dtype=torch.int64), (0, 0, 0))


def test_uniform_samples_are_bin_middles():
    depths = sample_depths(1.0, 5.0, 4, (3,))
    assert depths.shape == (3, 4)
    assert torch.allclose(depths, torch.tensor([1.5, 2.5, 3.5, 4.5]).expand(3, 4))


def test_stratified_samples_fall_one_in_each_bin_and_stay_sorted():
    near = torch.tensor([0.0, 2.0])
    generator = torch.Generator().manual_seed(0)
    depths = sample_depths(near, 10.0, 8, (2,), stratified=True, generator=generator)
    step = (10.0 - near) / 8  # (R,)
    bins = ((depths - near[:, None]) / step[:, None]).floor()
    assert torch.equal(bins, torch.arange(8.0).expand(2, 8))
    assert (depths.diff(dim=-1) > 0).all()


def test_sample_depths_refuses_empty_ranges():
    with pytest.raises(ValueError, match="far > near"):
        sample_depths(5.0, 5.0, 4)
    with pytest.raises(ValueError, match="at least one"):
        sample_depths(0.0, 1.0, 0)


def test_subsampling_picks_distinct_matching_rays():
    points = torch.randn(50, 3) + 5
    rays = rays_from_points(points, (0.0, 0.0, 0.0))
    chosen, index = subsample_rays(rays, 20, torch.Generator().manual_seed(1))
    assert len(index) == 20 and len(index.unique()) == 20
    assert torch.equal(chosen.depths, rays.depths[index])
    assert torch.equal(chosen.dirs, rays.dirs[index])
    everything, index = subsample_rays(rays, 500)  # fewer rays than asked: all of them
    assert sorted(index.tolist()) == list(range(50)) and isinstance(everything, Rays)


@pytest.mark.parametrize("lidar", [LidarConfig(), KITTI_HDL64], ids=["hdl32", "hdl64"])
def test_sensor_pattern_matches_the_driving_worlds_lidar(lidar):
    dirs = sensor_directions(
        lidar.beams, lidar.azimuths, lidar.elevation_up, lidar.elevation_down, torch.float64
    )
    assert dirs.shape == (lidar.beams, lidar.azimuths, 3)
    assert torch.allclose(dirs, torch.from_numpy(lidar.ray_directions()), atol=1e-12)
    origins, flat = sensor_rays(dirs, (0.0, 0.0, lidar.sensor_height))
    assert torch.equal(flat[lidar.azimuths + 3], dirs[1, 3])  # row by row
    assert torch.equal(
        origins[7], torch.tensor([0.0, 0.0, lidar.sensor_height], dtype=torch.float64)
    )
