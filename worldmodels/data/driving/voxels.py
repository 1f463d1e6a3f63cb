"""Occupancy labels like Occ3D's: the voxels that hold a surface, one voxel thick.

Occ3D labels what the sensors accumulated: surfaces. The inside of a building, the earth
under the road and the inside of a parked car are never seen, so they are not occupied (and
no ray crosses them, so they lie outside the visibility mask). Here, per voxel:

    solid(v)  <=> some raster column inside v holds solid at a height inside v (by > EPS)
    full(v)   <=> every raster column inside v is solid over v's whole height
    occupied  <=> solid and not full (a surface passes through v), or
                  full and a face of v is exposed: the solid does not continue across it
                  in every raster column next to that face (above, below or beside v)

Points scatter about the surfaces they sample (LiDAR range noise of about 2 cm), and Occ3D
voxelises accumulated points, so a surface within BAND (5 cm) of a voxel face also occupies
the voxel beyond the face (walls rasterised on a voxel face, a road just under a level face).

Occ3D labels only what the sensors saw over the scene: voxels whose raster columns were all
out of the LiDAR's sight during the whole sequence (`EgoRaster.observed`: behind buildings,
under roofs) stay free.

A raster column is solid below its ground height and inside its object's [bottom, top); the
two merge when the object reaches down into the ground. So the road, whose surface lies
inside a voxel level, is one layer; a building is a shell of walls and roof; a tree crown is
a shell. The class of an occupied voxel is the most frequent class among its raster columns
at its height (the object's where it overlaps the voxel, else the ground's; ties: the smaller
class id).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from einops import rearrange

from worldmodels.data.driving.config import Preset
from worldmodels.data.driving.scene import EgoRaster
from worldmodels.occ3d import FREE, NUM_CLASSES

EPS = 1e-3  # m: overlaps thinner than this do not count (float32 rounding of heights)
BAND = 0.05  # m: a surface this close to a voxel's face also occupies the voxel beyond it


@dataclass
class Voxels:
    """The voxelised frame: semantics (X, Y, Z) uint8 with FREE for empty voxels, and the same
    occupancy as a bit mask per voxel column, bits (X, Y) int64 (bit k set: level k occupied)."""

    semantics: np.ndarray
    bits: np.ndarray


@dataclass
class Columns:
    """Raster columns as two disjoint solid intervals each: the ground (-inf, ground_top] (with
    the object merged in when it reaches the ground) and a floating object [bottom, top)
    (empty: +inf, -inf). Arrays (M, N) of one block of the raster."""

    ground: np.ndarray  # ground class
    ground_z: np.ndarray  # the ground's own surface
    ground_top: np.ndarray  # top of the lower interval
    obj_class: np.ndarray
    merged: np.ndarray  # the object stands in the ground: it fills (ground_z, ground_top]
    bottom: np.ndarray  # floating object's interval
    top: np.ndarray

    @classmethod
    def of(cls, raster: EgoRaster, rows: slice, cols: slice) -> Columns:
        g = raster.ground_z[rows, cols].astype(np.float64)
        b = raster.bottom[rows, cols].astype(np.float64)
        t = raster.top[rows, cols].astype(np.float64)
        obj = raster.obj_class[rows, cols]
        has = obj != FREE
        merged = has & (b <= g + EPS)
        floating = has & ~merged
        return cls(
            ground=raster.ground[rows, cols],
            ground_z=g,
            ground_top=np.where(merged, np.maximum(g, t), g),
            obj_class=obj,
            merged=merged,
            bottom=np.where(floating, b, np.inf),
            top=np.where(floating, t, -np.inf),
        )


def level_tests(c: Columns, low: np.ndarray, high: np.ndarray) -> dict[str, np.ndarray]:
    """Per column and level (M, N, Z) bool: `covers` the level's whole height, `touches` it
    (overlap > EPS), the covering solid continues `above` / `below` the level's faces; and
    the class found there (`code`, FREE if none)."""
    gt = c.ground_top[..., None]
    b, t = c.bottom[..., None], c.top[..., None]
    covers_b = (b <= low + EPS) & (t >= high - EPS)
    overlap_b = np.minimum(t, high) - np.maximum(b, low) > EPS
    # Where the object is merged into the ground, it fills (ground_z, ground_top].
    g = c.ground_z[..., None]
    overlap_merged = c.merged[..., None] & (np.minimum(gt, high) - np.maximum(g, low) > EPS)
    ground_here = g > low + EPS
    code = np.where(
        overlap_b | overlap_merged,
        c.obj_class[..., None],
        np.where(ground_here, c.ground[..., None], FREE),
    )
    floating = np.isfinite(b)
    surface_code = np.where(c.merged[..., None], c.obj_class[..., None], c.ground[..., None])
    near = lambda h: (h > low - BAND) & (h <= high + BAND)  # noqa: E731
    near_ground, near_object = near(gt), floating & (near(t) | near(b))
    return {
        "near": near_ground | near_object,
        "near_code": np.where(near_object, c.obj_class[..., None], surface_code).astype(np.uint8),
        "covers": (gt >= high - EPS) | covers_b,
        "touches": (gt > low + EPS) | overlap_b,
        "above": (gt > high + EPS) | ((b <= low + EPS) & (t > high + EPS)),
        "below": (gt >= high - EPS) | ((b < low - EPS) & (t >= high - EPS)),
        "code": code.astype(np.uint8),
    }


def voxelize(raster: EgoRaster, preset: Preset) -> Voxels:
    """Semantic occupancy (X, Y, Z) uint8 of the raster, by the rule in the module docstring."""
    grid, r = preset.grid, preset.subdivision
    X, Y, Z = grid.size
    offset = round((preset.raster_half_extent - grid.half_extent[0]) / preset.fine_cell)
    if offset < 1:
        raise ValueError("the raster must reach at least one column beyond the voxel grid")
    low = grid.z_range[0] + np.arange(Z) * grid.voxel_z  # (Z,)
    high = low + grid.voxel_z
    block = slice(offset - 1, offset + X * r + 1)  # the grid plus one column around it
    tests = level_tests(Columns.of(raster, block, block), low, high)  # (X r + 2, Y r + 2, Z)
    per_voxel = (
        lambda a: rearrange(  # noqa: E731
            a[1:-1, 1:-1], "(X ra) (Y rb) Z -> X Y (ra rb) Z", ra=r, rb=r
        )
    )
    covers = tests["covers"]
    full = per_voxel(covers).all(axis=2)  # (X, Y, Z)
    solid = per_voxel(tests["touches"]).any(axis=2)
    exposed = ~per_voxel(tests["above"]).all(axis=2) | ~per_voxel(tests["below"]).all(axis=2)
    exposed |= ~_neighbours_cover(covers, r, X, Y)
    occupied = solid & (~full | exposed)
    near = per_voxel(tests["near"])  # (X, Y, columns, Z)
    beyond, beyond_code = _surfaces_on_side_faces(tests, r, X, Y)  # (X, Y, 4 r, Z)
    extra = ~occupied & (near.any(axis=2) | beyond.any(axis=2))
    observed = rearrange(
        raster.observed[block, block][1:-1, 1:-1], "(X ra) (Y rb) -> X Y (ra rb)", ra=r, rb=r
    ).any(axis=2)
    occupied = (occupied | extra) & observed[..., None]

    codes = per_voxel(tests["code"])  # (X, Y, columns, Z)
    codes = np.where(
        extra[:, :, None, :],
        np.concatenate([np.where(near, per_voxel(tests["near_code"]), FREE),
                        np.where(beyond, beyond_code, FREE)], axis=2),
        np.concatenate([codes, np.full_like(beyond_code, FREE)], axis=2),
    )  # fmt: skip
    voxel = np.arange(X * Y * Z).reshape(X, Y, 1, Z)
    valid = (codes != FREE) & occupied[:, :, None, :]
    index = np.broadcast_to(voxel, codes.shape)[valid] * NUM_CLASSES + codes[valid]
    counts = np.bincount(index, minlength=X * Y * Z * NUM_CLASSES)
    counts = counts.reshape(X, Y, Z, NUM_CLASSES)
    semantics = np.where(occupied, counts.argmax(axis=-1), FREE).astype(np.uint8)
    bits = (occupied.astype(np.int64) << np.arange(Z)).sum(axis=-1)
    return Voxels(semantics=semantics, bits=bits)


def _neighbours_cover(covers: np.ndarray, r: int, X: int, Y: int) -> np.ndarray:
    """(X, Y, Z) bool: the raster columns just beyond each of a voxel's four side faces all
    cover its level. covers: (X r + 2, Y r + 2, Z) with one column of margin."""
    inner = slice(1, 1 + Y * r)
    across_x = [covers[1 + (np.arange(X) + 1) * r, inner], covers[np.arange(X) * r, inner]]
    inner = slice(1, 1 + X * r)
    across_y = [covers[inner, 1 + (np.arange(Y) + 1) * r], covers[inner, np.arange(Y) * r]]
    ok = np.ones((X, Y, covers.shape[-1]), dtype=bool)
    for side in across_x:  # (X, Y r, Z)
        ok &= rearrange(side, "X (Y rb) Z -> X Y rb Z", rb=r).all(axis=2)
    for side in across_y:  # (X r, Y, Z)
        ok &= rearrange(side, "(X ra) Y Z -> X Y ra Z", ra=r).all(axis=2)
    return ok


def _surfaces_on_side_faces(tests: dict, r: int, X: int, Y: int):
    """Surfaces lying on a voxel's side faces, seen from the voxel: per voxel, level and raster
    column along its four faces, whether the column across the face has solid there while the
    voxel's own column next to it is not full (bool), and that solid's class. Returns two
    (X, Y, 4 r, Z) arrays."""
    touches, covers, code = tests["touches"], tests["covers"], tests["code"]
    xs, ys = np.arange(X), np.arange(Y)
    inner_y, inner_x = slice(1, 1 + Y * r), slice(1, 1 + X * r)
    pairs = [  # (own columns, columns across), +x, -x, +y, -y faces
        ((xs + 1) * r, 1 + (xs + 1) * r, "x"),
        (1 + xs * r, xs * r, "x"),
        ((ys + 1) * r, 1 + (ys + 1) * r, "y"),
        (1 + ys * r, ys * r, "y"),
    ]
    found, classes = [], []
    for own, across, axis in pairs:
        if axis == "x":
            take = lambda a, idx: rearrange(a[idx, inner_y], "X (Y rb) Z -> X Y rb Z", rb=r)  # noqa: E731
        else:
            take = lambda a, idx: rearrange(a[inner_x, idx], "(X ra) Y Z -> X Y ra Z", ra=r)  # noqa: E731
        found.append(take(touches, across) & ~take(covers, own))
        classes.append(take(code, across))
    return np.concatenate(found, axis=2), np.concatenate(classes, axis=2)
