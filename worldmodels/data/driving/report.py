"""The stats command's report: the measured figures beside Occ3D-nuScenes', and the targets the
driving world is held to (issue 11), each met or not, with its figure.

`report(stats)` is what `python -m worldmodels.data.driving.stats` prints; the data README's
tables are copied from it.
"""

from __future__ import annotations

import numpy as np

from worldmodels.occ3d import CLASS_NAMES, FREE

# Occ3D-nuScenes training-set voxel counts per class (the `nusc_class_frequencies` array of
# RenderOcc and FB-OCC), classes 0-16 and free (17).
OCC3D_COUNTS = (
    944004, 1897170, 152386, 2391677, 16957802, 724139, 189027, 2074468, 413451, 2384460,
    5916653, 175883646, 4275424, 51393615, 61411620, 105975596, 116424404, 1892500630,
)  # fmt: skip
# OccWorld's copy-and-paste baseline on Occ3D-nuScenes: geometry IoU at 1 / 2 / 3 s.
OCCWORLD_COPY_IOU = (24.47, 19.77, 17.31)
COPY_BAND = (0.6, 1.6)  # the copy baseline's IoU must lie within these multiples of OccWorld's
SHARE_FACTOR = 2.0  # the large classes' shares within this factor of Occ3D's
LARGE_CLASSES = ("driveable_surface", "manmade", "vegetation", "terrain", "sidewalk")
HORIZONS = (2, 4, 6)  # frames at 2 Hz: 1, 2, 3 s


def occ3d_shares() -> dict[str, float]:
    """Occ3D-nuScenes' occupied voxels per class, % of all occupied voxels."""
    counts = np.array(OCC3D_COUNTS[:FREE], dtype=np.float64)
    return {CLASS_NAMES[c]: 100 * counts[c] / counts.sum() for c in range(FREE)}


def table(stats: dict) -> str:
    """The README's tables: this data beside Occ3D-nuScenes."""
    occ3d = occ3d_shares()
    frames = stats.get("frames_with_class")  # absent from figures measured before it existed
    extra = (" frames with it |", "---|") if frames else ("", "")
    rows = ["| occupied share (%) | here | Occ3D-nuScenes |" + extra[0], "|---|---|---|" + extra[1]]
    for name in sorted(occ3d, key=lambda n: -occ3d[n]):
        cell = f" {frames[name]} of {stats['frames']} |" if frames else ""
        rows.append(f"| {name} | {stats['share_%'][name]:.2f} | {occ3d[name]:.2f} |{cell}")
    rows.append(f"| free (% of all voxels) | {stats['free_%']:.1f} | |" + (" |" if frames else ""))
    lines = ["\n".join(rows), ""]
    p10, p50, p90 = stats["ego_speed_p10_p50_p90"]
    lines.append(f"- ego speed p10 / p50 / p90: {p10:.1f} / {p50:.1f} / {p90:.1f} m/s")
    for scope in ("all", "urban"):
        if f"{scope}_agents_per_frame" in stats:
            lines.append(
                f"- {scope} scenes: {stats[f'{scope}_agents_per_frame']:.1f} agents per frame, "
                f"{stats[f'{scope}_parked_per_frame']:.1f} parked, "
                f"{stats.get(f'{scope}_crossing_per_frame', 0.0):.1f} pedestrians of the "
                f"crossings; {stats[f'{scope}_vehicles_parked_or_stopped_%']:.0f}% of vehicles "
                "parked or stopped"
            )
    lines.append(f"- label change per 0.5 s: {stats['label_change_per_step_%']:.1f}%")
    lines += ["", "| baseline | where | 1 s mIoU / IoU | 2 s | 3 s |", "|---|---|---|---|---|"]
    for name in ("copy", "warp"):
        for where in ("all", "visible"):
            cells = [stats[f"{name}_{k / 2:g}s_{where}"] for k in HORIZONS]
            text = " | ".join(f"{c['mIoU']:.1f} / {c['IoU']:.1f}" for c in cells)
            lines.append(f"| {name} | {where} | {text} |")
    lines += [
        "",
        f"- LiDAR returns per sweep: {stats['returns_per_sweep']:.0f}; stored returns inside an "
        f"occupied voxel: {stats['stored_returns_in_occupied_voxel_%']:.2f}%",
        f"- noise-free returns more than 1 cm off a surface: "
        f"{stats['noise_free_off_surface_over_1cm_%']:.3f}% of {stats['checked_returns']}; "
        f"sampled rays through solid before their return: "
        f"{stats['rays_through_solid_before_return_%']:.2f}%",
    ]
    return "\n".join(lines)


def targets(stats: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of issue 11 that one run can check. The agents
    per urban frame are meant at `paper`; the others at every preset."""
    occ3d, share = occ3d_shares(), stats["share_%"]
    out = []
    for name in LARGE_CLASSES:
        ratio = share[name] / occ3d[name]
        met = 1 / SHARE_FACTOR <= ratio <= SHARE_FACTOR
        out.append((f"{name} within 2x of {occ3d[name]:.1f}%", f"{share[name]:.1f}% "
                    f"({ratio:.2f}x)", met))  # fmt: skip
    out.append(("car >= 1.5%", f"{share['car']:.2f}%", share["car"] >= 1.5))
    out.append(("pedestrian >= 0.1%", f"{share['pedestrian']:.2f}%", share["pedestrian"] >= 0.1))
    for k, reference in zip(HORIZONS, OCCWORLD_COPY_IOU, strict=True):
        iou = stats[f"copy_{k / 2:g}s_all"]["IoU"]
        low, high = (f * reference for f in COPY_BAND)
        out.append((f"copy IoU at {k / 2:g} s in [{low:.1f}, {high:.1f}]",
                    f"{iou:.1f} ({iou / reference:.2f}x)", low <= iou <= high))  # fmt: skip
    median = stats["ego_speed_p10_p50_p90"][1]
    out.append(("median ego speed <= 10 m/s", f"{median:.1f} m/s", median <= 10.0))
    if "urban_agents_per_frame" in stats:
        agents = stats["urban_agents_per_frame"]
        out.append(("urban agents per frame >= 15 (at paper)", f"{agents:.1f}", agents >= 15))
    still = stats["all_vehicles_parked_or_stopped_%"]
    out.append(("vehicles parked or stopped >= 20%", f"{still:.0f}%", still >= 20))
    off = stats["noise_free_off_surface_over_1cm_%"]
    out.append(("no noise-free return > 1 cm off a surface", f"{off:.3f}%", off == 0))
    inside = stats["stored_returns_in_occupied_voxel_%"]
    out.append(("stored returns in an occupied voxel >= 99%", f"{inside:.2f}%", inside >= 99))
    return out


def report(stats: dict) -> str:
    """The tables, the targets (met or not), and what was measured at what cost."""
    rows = ["| target (issue 11) | here | met |", "|---|---|---|"]
    rows += [f"| {t} | {m} | {'yes' if ok else 'NO'} |" for t, m, ok in targets(stats)]
    footer = (f"{stats['sequences']} sequences, {stats['frames']} frames "
              f"({stats['preset']}, {stats['split']}), {stats['cpu_s']:.0f} CPU-s")  # fmt: skip
    return "\n".join([table(stats), "", "\n".join(rows), "", footer])
