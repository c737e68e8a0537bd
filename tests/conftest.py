"""Shared fixtures: real photos and small media made on the fly (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real public-domain portrait, (512, 512, 3) RGB uint8, one frontal face."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def no_face_image() -> np.ndarray:
    """A real photo with no face in it (a cup of coffee), RGB uint8."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.coffee())


@pytest.fixture(scope="session")
def astronaut_face(astronaut) -> np.ndarray:
    """The astronaut cropped to 256 x 256 around her face: cheap to track."""
    return np.ascontiguousarray(astronaut[0:256, 96:352])
