"""The six cardiac landmarks: a small container of world positions, confidences and sources.

Positions are world millimetres, RAS+ (the NIfTI world of the image they belong to), in the
order of :data:`conventions.LANDMARK_NAMES`. A landmark that is not known is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .conventions import LANDMARK_NAMES, LANDMARK_SOURCES


@dataclass(eq=False)
class Landmarks:
    """Six landmarks in world mm.

    Parameters
    ----------
    positions : (6, 3) array
        World ``(x, y, z)`` RAS+ mm, rows in the order of ``LANDMARK_NAMES``; NaN rows are
        landmarks that are not known.
    confidence : (6,) array
        In [0, 1]; NaN where unknown.
    source : sequence of 6 str
        Where each landmark comes from: ``model``, ``user``, ``phantom``, ``derived``, ``file``.
    """

    positions: np.ndarray
    confidence: np.ndarray = None
    source: tuple = None
    names: tuple = field(default=LANDMARK_NAMES, init=False)

    def __post_init__(self):
        p = np.asarray(self.positions, dtype=np.float64)
        n = len(LANDMARK_NAMES)
        if p.shape != (n, 3):
            raise ValueError(f"positions must have shape ({n}, 3) in the order {LANDMARK_NAMES}, got {p.shape}")
        if np.isinf(p).any():
            raise ValueError("landmark positions hold Inf")
        c = np.ones(n) if self.confidence is None else np.asarray(self.confidence, dtype=np.float64).reshape(-1)
        if c.shape != (n,):
            raise ValueError(f"confidence must have {n} values, got {c.shape}")
        s = ("file",) * n if self.source is None else tuple(str(v) for v in self.source)
        if len(s) != n:
            raise ValueError(f"source must have {n} values, got {len(s)}")
        bad = sorted(set(s) - set(LANDMARK_SOURCES))
        if bad:
            raise ValueError(f"unknown landmark source {bad[0]!r}; use one of {LANDMARK_SOURCES}")
        self.positions, self.confidence, self.source = p, c, s

    @classmethod
    def from_dict(cls, points: dict, *, source: str = "file") -> "Landmarks":
        """Build from ``{name: (x, y, z)}``; names not given are NaN."""
        unknown = sorted(set(points) - set(LANDMARK_NAMES))
        if unknown:
            raise ValueError(f"unknown landmark name {unknown[0]!r}; the names are {', '.join(LANDMARK_NAMES)}")
        pos = np.full((len(LANDMARK_NAMES), 3), np.nan)
        for i, name in enumerate(LANDMARK_NAMES):
            if name in points:
                pos[i] = points[name]
        return cls(pos, source=(source,) * len(LANDMARK_NAMES))

    @property
    def valid(self) -> np.ndarray:
        """(6,) bool: rows with a finite position."""
        return np.all(np.isfinite(self.positions), axis=1)

    def as_dict(self) -> dict:
        """``{name: (x, y, z)}`` of the valid landmarks."""
        return {n: tuple(p) for n, p, ok in zip(self.names, self.positions, self.valid) if ok}

    def transformed(self, matrix) -> "Landmarks":
        """Landmarks moved by a 4x4 world-to-world matrix."""
        m = np.asarray(matrix, dtype=np.float64)
        p = self.positions @ m[:3, :3].T + m[:3, 3]
        return Landmarks(p, self.confidence.copy(), self.source)

    def __repr__(self) -> str:
        rows = ", ".join(
            f"{n}=({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f})" if ok else f"{n}=NaN"
            for n, p, ok in zip(self.names, self.positions, self.valid)
        )
        return f"Landmarks({rows})"
