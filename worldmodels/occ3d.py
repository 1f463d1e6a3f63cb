"""The Occ3D-nuScenes semantic classes and grid layout, shared by every driving source.

Occ3D stores a frame as `semantics[x, y, z]` (uint8, 200 x 200 x 16) over
x, y in [-40, 40] m and z in [-1, 5.4] m with 0.4 m voxels, in the ego frame
(x forward, y left, z up). Class 17 is free space; 0-16 are the occupied classes.
"""

CLASS_NAMES = (
    "others",  # 0
    "barrier",  # 1
    "bicycle",  # 2
    "bus",  # 3
    "car",  # 4
    "construction_vehicle",  # 5
    "motorcycle",  # 6
    "pedestrian",  # 7
    "traffic_cone",  # 8
    "trailer",  # 9
    "truck",  # 10
    "driveable_surface",  # 11
    "other_flat",  # 12
    "sidewalk",  # 13
    "terrain",  # 14
    "manmade",  # 15
    "vegetation",  # 16
    "free",  # 17
)
CLASS_ID = {name: i for i, name in enumerate(CLASS_NAMES)}
FREE = CLASS_ID["free"]
NUM_CLASSES = len(CLASS_NAMES)  # 18, free included
OCCUPIED_CLASSES = tuple(range(FREE))  # 0..16, the classes mIoU averages over

# RGB in 0..255, one fixed colour per class so every figure in the repository agrees.
PALETTE = (
    (0, 0, 0),  # others
    (255, 120, 50),  # barrier
    (255, 192, 203),  # bicycle
    (255, 255, 0),  # bus
    (0, 150, 245),  # car
    (0, 255, 255),  # construction_vehicle
    (255, 127, 0),  # motorcycle
    (255, 0, 0),  # pedestrian
    (255, 240, 150),  # traffic_cone
    (135, 60, 0),  # trailer
    (160, 32, 240),  # truck
    (255, 0, 255),  # driveable_surface
    (139, 137, 137),  # other_flat
    (75, 0, 75),  # sidewalk
    (150, 240, 80),  # terrain
    (230, 230, 250),  # manmade
    (0, 175, 0),  # vegetation
    (255, 255, 255),  # free
)

# The paper layout: metres and voxel size of the Occ3D-nuScenes grid.
PAPER_RANGE_XY = (-40.0, 40.0)
PAPER_RANGE_Z = (-1.0, 5.4)
PAPER_VOXEL_SIZE = 0.4
PAPER_GRID = (200, 200, 16)  # (X, Y, Z)
