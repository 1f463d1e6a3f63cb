"""Chapter 3: occupancy tokenizers (OccWorld's scene VQ-VAE, OccSora's 4D tokenizer, VAR's
multi-scale residual quantizer, OccTENS's ego-motion tokens).

Usage (class-id grids uint8 or int64, Occ3D ids, 17 = free):

from occupancy_tokenizer import SceneTokenizer, SceneTokenizerConfig
tokenizer = SceneTokenizer(SceneTokenizerConfig())
ids = tokenizer.encode(grid)     # (B, 64, 64, 8) -> (B, 16, 16) int64
grid = tokenizer.decode(ids)     # -> (B, 64, 64, 8) int64
"""

from occupancy_tokenizer.ego import EgoMotionTokenizer, integrate, relative_motion
from occupancy_tokenizer.folding import HeightFolding, check_grid, fold_height, unfold_height
from occupancy_tokenizer.fourd import FourDOutput, FourDTokenizer, FourDTokenizerConfig
from occupancy_tokenizer.losses import reconstruction_loss
from occupancy_tokenizer.lovasz import lovasz_grad, lovasz_softmax
from occupancy_tokenizer.multiscale import MultiScaleQuantizer, Phi
from occupancy_tokenizer.scene import SceneOutput, SceneTokenizer, SceneTokenizerConfig
from occupancy_tokenizer.tied_head import TiedHead
