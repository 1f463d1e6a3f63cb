"""What a stored sequence (a shard) holds, and the constants its readers need: importable
without highway-env, which only generate.py (making new shards) needs.

Shapes: T frames, X, Y, Z voxel-grid sizes, H, W range-image rows and columns.
"""

SPLIT_SEED_BASE = {"train": 0, "val": 10_000, "heldout": 20_000}
NO_RETURN = 255  # lidar_label of a ray without a return
RANGE_UNIT = 0.002  # m per step of the stored LiDAR range (noise is 2 cm; max 131 m)

# Arrays in a shard (T frames): shape, dtype, meaning. Frames: see config.py.
SHARD_KEYS = {
    "occupancy": "(T, X, Y, Z) uint8 Occ3D class per voxel, 17 = free; ego frame",
    "visibility": "(T, X, Y, Z) bool voxel crossed by a returned LiDAR ray (mask_lidar)",
    "ego_pose": "(T, 4, 4) float64 world-from-ego transform, metres",
    "ego_speed": "(T,) float32 m/s",
    "actions": "(T,) int64 meta-action applied after frame t: 0 LANE_LEFT, 1 IDLE, "
    "2 LANE_RIGHT, 3 FASTER, 4 SLOWER (the last frame's is IDLE)",
    "lidar_range": "(T, H, W) uint16 range from the sensor in RANGE_UNIT (2 mm), 0 = no return",
    "lidar_range_clean": "(T, H, W) uint16 the same returns without range noise (RANGE_UNIT)",
    "lidar_label": "(T, H, W) uint8 class of the return, 255 = no return",
    "box_count": "(T,) int32 boxes per frame; the box arrays hold the frames back to back",
    "boxes": "(sum count, 7) float32 x, y, z, length, width, height (m), yaw (rad); ego frame",
    "box_class": "(sum count,) uint8 Occ3D class",
    "box_id": "(sum count,) int32 track id, stable over the sequence; parked cars from "
    "200000, pedestrians from 100000",
    "box_speed": "(sum count,) float32 m/s (0 for parked cars)",
    "scenario": "() str",
    "seed": "() int64",
    "attempt": "() int64 how many re-simulations it took (the ego crashed before)",
    "crashed": "() bool the ego crashed even after generate.MAX_ATTEMPTS (then kept as is)",
}
