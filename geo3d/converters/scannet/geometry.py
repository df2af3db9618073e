"""Mesh geometry for the ScanNet converter: area-weighted vertex normals."""
from __future__ import annotations

import numpy as np

def compute_vertex_normals(coord: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Each face's un-normalised cross product ``(v1 - v0) x (v2 - v0)`` (length = 2 * area) is added
    to its three vertices, then the sums are normalised. Vertices in no face, or whose sum
    vanishes, get (0, 0, 1).

    Args:
        coord: (N, 3) float vertex positions.
        faces: (F, 3) int vertex indices (counter-clockwise seen from outside -> outward).

    Returns:
        (N, 3) float32 unit normals.
    """
    n = len(coord)
    out = np.zeros((n, 3), np.float64)
    if len(faces):
        p = np.asarray(coord, np.float64)
        f = np.asarray(faces, np.int64)
        fn = np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])  # (F, 3)
        idx = f.reshape(-1)                                                 # (3F,)
        for c in range(3):
            out[:, c] = np.bincount(idx, weights=np.repeat(fn[:, c], 3), minlength=n)
    length = np.linalg.norm(out, axis=1)
    scale = np.where(length > 0, length, 1.0)
    ok = length > 1e-12 * max(1.0, float(np.abs(coord).max(initial=0.0))) ** 2
    out = np.where(ok[:, None], out / scale[:, None], np.array([0.0, 0.0, 1.0]))
    return out.astype(np.float32)
