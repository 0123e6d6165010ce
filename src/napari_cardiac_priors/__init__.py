"""napari-cardiac-priors: cardiac MR analysis with anatomical priors.

The core (everything but ``_napari``) imports neither napari nor Qt, and heavy libraries
(torch, SimpleITK, dask) are imported inside the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .conventions import LABELS, LANDMARK_NAMES
from .errors import InputError
from .landmarks import Landmarks
from .volume import Volume

__all__ = ["LABELS", "LANDMARK_NAMES", "InputError", "Landmarks", "Volume", "__version__"]
