"""Chapter 4: the CoPilot4D LiDAR tokenizer (Zhang et al., ICLR 2024). A sweep of points is
voxelized (only its non-empty voxels are kept), each voxel's points are summarised by a
PointNet pooled by sum, the voxels of each (x, y) column are summed into a bird's-eye-view
image, a Swin transformer turns that image into a grid of latents, and a vector quantizer
with k-means restarts of its dead codes makes them tokens; a Swin decoder turns tokens back
into a neural feature grid that is rendered into depths along the LiDAR's rays.
"""
