from worldmodels.viz.driving import (  # noqa: F401  (BEV maps, voxels, points, range images)
    bev_classes,
    bev_semantic_image,
    plot_bev,
    plot_points_bev,
    plot_range_image,
    plot_voxels_3d,
    range_image,
    sequence_gif,
    surface_voxels,
    trajectory_in_frame,
)
from worldmodels.viz.frames import (  # noqa: F401  (frame grids, GIFs)
    frame_grid,
    save_gif,
    show_frames,
    side_by_side_gif,
)
