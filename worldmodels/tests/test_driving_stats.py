"""The stats command's pieces: the Occ3D reference shares (its warp: test_ego_motion.py)."""

import pytest

from worldmodels.data.driving.report import OCC3D_COUNTS, occ3d_shares
from worldmodels.occ3d import CLASS_ID


def test_occ3d_reference_shares():
    shares = occ3d_shares()
    assert sum(shares.values()) == pytest.approx(100.0)
    assert shares["driveable_surface"] == pytest.approx(32.0, abs=0.1)
    assert shares["car"] == pytest.approx(3.09, abs=0.01)
    assert len(OCC3D_COUNTS) == 18 and CLASS_ID["free"] == 17
