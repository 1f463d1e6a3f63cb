"""LiDAR forecasting metrics: Chamfer distance and per-ray depth errors (the 4D-Occ protocol
that CoPilot4D reports).

Chamfer distance between a predicted cloud A and a true cloud B (P_A and P_B points):

    CD(A, B) = 1/2 * ( mean_{a in A} min_{b in B} |a - b|  +  mean_{b in B} min_{a in A} |a - b| )

with plain Euclidean distances in metres (`squared=False`, the default). The 4D-Occ
evaluation code that CoPilot4D's table follows calls the `chamferdist` package, whose
nearest-neighbour search returns SQUARED distances; `squared=True` reproduces that
(units m^2). Say which one a number used.

"Inner" Chamfer: both clouds are first cropped to a region of interest, 4D-Occ's
[-70, 70] x [-70, 70] x [-4.5, 4.5] m (bounds inclusive, `COPILOT4D_REGION`).

Depth errors, per ray r with true depth d_r > min_depth (the ray "hit" something):

    L1     = mean_r |d_pred_r - d_true_r|              (metres)
    AbsRel = mean_r |d_pred_r - d_true_r| / d_true_r   (unitless)

Nearest neighbours are exact: points are split into compact leaves (a small k-d tree), and
each query leaf compares against reference leaves in order of box distance, in blocks of
at most `leaf_size`^2 distances (`torch.cdist`), stopping as soon as no unvisited leaf can
be nearer. Memory stays at a few MB for 100k x 100k points; work grows roughly like
P log P for spatially spread clouds instead of P_A * P_B.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from einops import repeat

# 4D-Occ / CoPilot4D inner region: ((x_min, x_max), (y_min, y_max), (z_min, z_max)) metres.
COPILOT4D_REGION = ((-70.0, 70.0), (-70.0, 70.0), (-4.5, 4.5))

Region = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]


def _as_points(points, name: str) -> torch.Tensor:
    cloud = torch.as_tensor(points)
    if cloud.ndim != 2 or cloud.shape[1] < 3:
        raise ValueError(f"{name} must be (P, 3+) with x, y, z first, got {tuple(cloud.shape)}")
    cloud = cloud[:, :3]
    if not cloud.is_floating_point():
        cloud = cloud.float()
    if not torch.isfinite(cloud).all():
        raise ValueError(f"{name} holds NaN or infinite coordinates")
    return cloud


def crop_to_region(points, region: Region = COPILOT4D_REGION) -> torch.Tensor:
    """The points (P, 3+) with lo <= coordinate <= hi on each of x, y, z; returns (P', 3+)."""
    cloud = torch.as_tensor(points)
    inside = torch.ones(len(cloud), dtype=torch.bool, device=cloud.device)
    for axis, (low, high) in enumerate(region):
        inside &= (cloud[:, axis] >= low) & (cloud[:, axis] <= high)
    return cloud[inside]


def _segment_ids(count: int, segments: int, device) -> torch.Tensor:
    """Segment j holds positions [floor(j * count / segments), floor((j+1) * count / segments))."""
    bounds = torch.arange(segments + 1, device=device) * count // segments  # (segments + 1,)
    positions = torch.arange(count, device=device)
    return torch.searchsorted(bounds, positions, right=True) - 1  # (count,)


def _kd_order(points: torch.Tensor, leaf_size: int) -> tuple[torch.Tensor, int]:
    """A permutation that groups points into 2^depth compact leaves of <= leaf_size points.

    A balanced k-d tree built level by level without Python recursion: every node is a
    contiguous run of the permutation; each level sorts every node along its longest box
    side at once (one argsort of node_id + position-in-node), so the median falls exactly
    at the run's middle. Returns (perm (P,), number of leaves).
    """
    count = len(points)
    depth = max(0, math.ceil(math.log2(max(count, 1) / leaf_size)))
    perm = torch.arange(count, device=points.device)
    for level in range(depth):
        nodes = 2**level
        node_of = _segment_ids(count, nodes, points.device)  # (P,)
        cloud = points[perm]  # (P, 3)
        node_index = repeat(node_of, "p -> p c", c=3)
        low = cloud.new_full((nodes, 3), math.inf).scatter_reduce(0, node_index, cloud, "amin")
        high = cloud.new_full((nodes, 3), -math.inf).scatter_reduce(0, node_index, cloud, "amax")
        axis = (high - low).argmax(dim=1)[node_of]  # (P,) longest side of each point's node
        key = cloud.gather(1, axis[:, None])[:, 0]  # (P,)
        node_low = low[node_of].gather(1, axis[:, None])[:, 0]
        node_side = (high - low)[node_of].gather(1, axis[:, None])[:, 0]
        within = (key - node_low).double() / (node_side.double() + 1e-30)  # in [0, 1]
        perm = perm[torch.argsort(node_of.double() + 0.5 * within, stable=True)]
    return perm, 2**depth


def _leaves(points: torch.Tensor, leaf_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points grouped into leaves: (index (L, m), coordinates (L, m, 3)).

    Leaves differ in size by at most one point; the short ones are padded by repeating
    their last point, which changes no minimum.
    """
    perm, num_leaves = _kd_order(points, leaf_size)
    count = len(points)
    bounds = torch.arange(num_leaves + 1, device=points.device) * count // num_leaves
    sizes = bounds[1:] - bounds[:-1]  # (L,)
    width = int(sizes.max())
    offset = torch.minimum(
        torch.arange(width, device=points.device)[None, :], (sizes - 1)[:, None]
    )  # (L, m)
    index = perm[bounds[:-1, None] + offset]  # (L, m)
    return index, points[index]


def _nearest_in_blocks(query: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Squared distance from each query point to its nearest candidate, block by block.

    query (A, n, 3), candidates (A, m, 3) -> (A, n). The search uses one batched matmul,
    |q - r|^2 = |q|^2 + |r|^2 - 2 q.r, on coordinates centred on each query block (so the
    terms stay small and float32 keeps sub-millimetre accuracy); the distance to the chosen
    candidate is then recomputed exactly from its coordinate differences.
    """
    centre = query.mean(dim=1, keepdim=True)  # (A, 1, 3)
    query, candidates = query - centre, candidates - centre
    query_norm = query.square().sum(dim=-1)  # (A, n)
    candidate_norm = candidates.square().sum(dim=-1)  # (A, m)
    approximate = torch.baddbmm(
        query_norm[:, :, None] + candidate_norm[:, None, :],
        query,
        candidates.transpose(1, 2),
        alpha=-2.0,
    )  # (A, n, m)
    choice = approximate.argmin(dim=2)  # (A, n)
    chosen = candidates.gather(1, repeat(choice, "a n -> a n c", c=3))  # (A, n, 3)
    return (query - chosen).square().sum(dim=-1)  # (A, n), exact for the chosen point


def _box_gap_squared(low_a, high_a, low_b, high_b) -> torch.Tensor:
    """Squared distance between boxes a (C, 3) and b (L, 3): per axis the gap, 0 if they
    overlap. No point of box a is nearer than this to any point of box b. -> (C, L)"""
    gap = (low_b[None] - high_a[:, None]).clamp(min=0) + (low_a[:, None] - high_b[None]).clamp(
        min=0
    )  # (C, L, 3)
    return gap.square().sum(dim=-1)


@contextmanager
def _one_cpu_thread(device: torch.device):
    """Run tiny CPU tensor ops with one intra-op thread, then restore the setting.

    The search below issues thousands of small ops (64 x 64 blocks). Threads buy nothing
    there, and on a CPU shared with other jobs OpenMP's waits for descheduled threads made
    a 100k-point Chamfer 10x slower (measured on the 2-core dev machine under load).
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _search_chunk(leaves, reference_leaves, box_squared) -> torch.Tensor:
    """Nearest squared distances for a chunk of query leaves, visiting reference leaves
    nearest box first and closing a query leaf as soon as the next box is farther than the
    worst nearest distance it has found (no point in that box or any later one can help).

    leaves (C, n, 3), reference_leaves (Lr, m, 3), box_squared (C, Lr) -> (C, n).
    """
    box_squared, visit_order = torch.sort(box_squared, dim=1)  # nearest boxes first
    nearest = torch.full(leaves.shape[:2], math.inf, dtype=leaves.dtype, device=leaves.device)
    open_leaves = torch.arange(len(leaves), device=leaves.device)  # (A,)
    for rank in range(len(reference_leaves)):
        candidates = reference_leaves[visit_order[open_leaves, rank]]  # (A, m, 3)
        block_nearest = _nearest_in_blocks(leaves[open_leaves], candidates)  # (A, n)
        improved = torch.minimum(nearest[open_leaves], block_nearest)  # (A, n)
        nearest[open_leaves] = improved
        if rank + 1 == len(reference_leaves):
            break
        worst = improved.amax(dim=1)  # (A,)
        open_leaves = open_leaves[box_squared[open_leaves, rank + 1] < worst]
        if len(open_leaves) == 0:
            break
    return nearest


def nearest_neighbor_distances(
    query, reference, leaf_size: int = 64, max_box_pairs: int = 1 << 19
) -> torch.Tensor:
    """Exact Euclidean distance from every query point to its nearest reference point.

    query: (P, 3+), reference: (P', 3+) metres (extra columns ignored), tensors or numpy.
    Returns (P,) in the query's float dtype, on its device.

    Both clouds are cut into k-d leaves of <= leaf_size points; query leaves are searched in
    chunks of C = max_box_pairs // (reference leaves) at once (see `_search_chunk`). Memory
    at any time: C x leaf_size^2 distances plus C x (reference leaves) box distances.
    """
    query, reference = _as_points(query, "query"), _as_points(reference, "reference")
    if len(reference) == 0:
        raise ValueError("reference is empty: no nearest neighbour exists")
    if len(query) == 0:
        return query.new_zeros(0)
    reference = reference.to(device=query.device, dtype=query.dtype)
    with _one_cpu_thread(query.device):
        query_index, query_leaves = _leaves(query, leaf_size)  # (Lq, n), (Lq, n, 3)
        _, reference_leaves = _leaves(reference, leaf_size)  # (Lr, m, 3)
        query_low, query_high = query_leaves.amin(dim=1), query_leaves.amax(dim=1)  # (Lq, 3)
        reference_low = reference_leaves.amin(dim=1)  # (Lr, 3)
        reference_high = reference_leaves.amax(dim=1)  # (Lr, 3)
        chunk_size = max(1, max_box_pairs // len(reference_leaves))
        best_squared = query.new_full((len(query),), math.inf)
        for start in range(0, len(query_leaves), chunk_size):
            chunk = slice(start, start + chunk_size)
            box_squared = _box_gap_squared(
                query_low[chunk], query_high[chunk], reference_low, reference_high
            )  # (C, Lr)
            nearest = _search_chunk(query_leaves[chunk], reference_leaves, box_squared)
            best_squared[query_index[chunk]] = nearest  # padding repeats write equal values
        return best_squared.sqrt()


def chamfer_distance(
    pred,
    target,
    region: Region | None = None,
    squared: bool = False,
    leaf_size: int = 64,
) -> float:
    """Symmetric Chamfer distance between two point clouds, see the module docstring.

    pred: (P, 3+), target: (P', 3+) metres, same frame. region: crop both clouds to
    ((x_min, x_max), (y_min, y_max), (z_min, z_max)) first (e.g. COPILOT4D_REGION for the
    "inner" score); None uses all points. squared: average squared distances (m^2, as the
    4D-Occ code does) instead of distances (m).
    Raises ValueError when either cloud is empty (after cropping): the score is undefined
    there. (The 4D-Occ code returns 0.0 in that case, which would flatter a model that
    predicts nothing inside the region; we refuse instead.)
    """
    pred, target = _as_points(pred, "pred"), _as_points(target, "target")
    where = ""
    if region is not None:
        pred, target = crop_to_region(pred, region), crop_to_region(target, region)
        where = f" inside region {region}"
    for name, cloud in (("pred", pred), ("target", target)):
        if len(cloud) == 0:
            raise ValueError(f"{name} has no points{where}: Chamfer distance is undefined")
    pred_to_target = nearest_neighbor_distances(pred, target, leaf_size)  # (P,)
    target_to_pred = nearest_neighbor_distances(target, pred, leaf_size)  # (P',)
    if squared:
        pred_to_target, target_to_pred = pred_to_target.square(), target_to_pred.square()
    # Compute the means in float64 so 100k-point sums do not lose digits.
    forward, backward = pred_to_target.double().mean(), target_to_pred.double().mean()
    return float(0.5 * (forward + backward))


def _valid_rays(pred_depth, true_depth, valid, min_depth: float):
    pred = torch.as_tensor(pred_depth)
    true = torch.as_tensor(true_depth).to(pred.device)
    if pred.shape != true.shape:
        raise ValueError(
            f"pred_depth {tuple(pred.shape)} and true_depth {tuple(true.shape)} differ"
        )
    keep = torch.isfinite(true) & (true > min_depth)  # rays that hit something
    if valid is not None:
        valid = torch.as_tensor(valid, device=pred.device)
        if valid.shape != true.shape:
            raise ValueError(f"valid {tuple(valid.shape)} must match depth {tuple(true.shape)}")
        keep &= valid.bool()
    if not keep.any():
        raise ValueError(f"no valid rays: every true depth is <= {min_depth} m, NaN or masked")
    pred, true = pred[keep].double(), true[keep].double()
    if not torch.isfinite(pred).all():
        raise ValueError("pred_depth is NaN or infinite on a valid ray")
    return pred, true


def depth_errors(
    pred_depth,
    true_depth,
    valid=None,
    min_depth: float = 0.01,
) -> dict[str, float]:
    """Per-ray depth L1 (metres) and AbsRel (unitless), averaged over valid rays.

    pred_depth, true_depth: same shape, e.g. (R,) or (B, R), metres along each ray
    (the predicted depth rendered along the TRUE ray). A ray counts when its true depth is
    finite and > min_depth (4D-Occ keeps rays longer than 1 cm) and `valid` (optional,
    same shape, bool) is true. Raises ValueError if no ray counts.
    Returns {"depth_l1": .., "depth_absrel": .., "rays": number of rays counted}.
    """
    pred, true = _valid_rays(pred_depth, true_depth, valid, min_depth)  # (R,), (R,)
    error = (pred - true).abs()  # |d_pred - d_true|
    return {
        "depth_l1": float(error.mean()),
        "depth_absrel": float((error / true).mean()),
        "rays": true.numel(),
    }


def depth_l1(pred_depth, true_depth, valid=None, min_depth: float = 0.01) -> float:
    """mean_r |d_pred_r - d_true_r| over valid rays, metres (see `depth_errors`)."""
    return depth_errors(pred_depth, true_depth, valid, min_depth)["depth_l1"]


def depth_absrel(pred_depth, true_depth, valid=None, min_depth: float = 0.01) -> float:
    """mean_r |d_pred_r - d_true_r| / d_true_r over valid rays (see `depth_errors`)."""
    return depth_errors(pred_depth, true_depth, valid, min_depth)["depth_absrel"]
