"""Procedural, anti-aliased texture functions (vectorised numpy, deterministic).

Every function takes texture coordinates in metres plus the *footprint* of one pixel along
that coordinate (metres per pixel, from the renderer's screen-space derivatives) and returns
the box-filtered value, so distant detail fades to its mean instead of aliasing into flicker
(which would break photometric matching between frames). The filtered pulse train is the
classic analytic box filter of a periodic step (Ebert et al., *Texturing & Modeling*, "filtered
pulse train"); value noise is lattice noise with a smoothstep blend and octaves faded out once
their wavelength drops under two footprints.
"""
from __future__ import annotations

import numpy as np

__all__ = ['hash_u32', 'hash_unit', 'value_noise', 'fbm', 'filtered_box', 'filtered_pulse_train',
           'cell_index', 'smoothstep', 'detail_fade']

_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)
_KEY_MULS = (np.uint32(0x9E3779B1), np.uint32(0x85EBCA77), np.uint32(0xC2B2AE3D),
             np.uint32(0x27D4EB2F))


def _mix32(h: np.ndarray) -> np.ndarray:
    """lowbias32 finaliser (Chris Wellons' hash prospector); uint32 in, uint32 out."""
    h = h ^ (h >> np.uint32(16))
    h = h * _M1
    h = h ^ (h >> np.uint32(15))
    h = h * _M2
    return h ^ (h >> np.uint32(16))


def _u32(a: int | np.ndarray) -> np.ndarray:
    return np.asarray(np.asarray(a, np.int64) & 0xFFFFFFFF, np.uint32)


def _key(k: np.ndarray, i: int) -> np.ndarray:
    return _u32(k) * _KEY_MULS[i % len(_KEY_MULS)]


def hash_u32(seed: int | np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Deterministic uint32 hash of integer arrays (broadcast together) under ``seed``: the
    keys times distinct odd constants, xor-ed with the mixed seed, then one lowbias32 round."""
    with np.errstate(over='ignore'):
        h = _mix32(_u32(seed) + np.uint32(0x632BE5AB))
        for i, k in enumerate(keys):
            h = h ^ _key(k, i)
        return _mix32(h)


def hash_unit(seed: int | np.ndarray, *keys: np.ndarray, dtype: type = np.float32
              ) -> np.ndarray:
    """Hash of integer keys mapped to floats in [0, 1] (``dtype``, float32 by default)."""
    return (hash_u32(seed, *keys) >> np.uint32(8)).astype(dtype) * dtype(1.0 / 16777216.0)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at ``e0`` to 1 at ``e1``."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def detail_fade(period: float | np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Weight of a detail of size ``period`` seen through a pixel of ``footprint``: 1 while the
    detail spans >= 4 pixels, 0 below 2 pixels (linear in between)."""
    return np.clip(period / (2.0 * np.maximum(footprint, 1e-9)) - 1.0, 0.0, 1.0)


def value_noise(x: np.ndarray, y: np.ndarray, seed: int | np.ndarray) -> np.ndarray:
    """2D lattice value noise in [0, 1) with unit cell size (smoothstep-blended corners;
    corner values are :func:`hash_unit` of the lattice point; float32 unless x/y are
    float64)."""
    xf, yf = np.floor(x), np.floor(y)
    tx, ty = x - xf, y - yf
    tx = tx * tx * (3.0 - 2.0 * tx)
    ty = ty * ty * (3.0 - 2.0 * ty)
    with np.errstate(over='ignore'):
        s = _mix32(_u32(seed) + np.uint32(0x632BE5AB))
        a0 = s ^ _key(xf.astype(np.int64), 0)
        a1 = s ^ _key(xf.astype(np.int64) + 1, 0)
        b0 = _key(yf.astype(np.int64), 1)
        b1 = _key(yf.astype(np.int64) + 1, 1)
        ft = np.result_type(x, y, np.float32)
        scale = ft.type(1.0 / 16777216.0)
        v00 = (_mix32(a0 ^ b0) >> np.uint32(8)).astype(ft) * scale
        v10 = (_mix32(a1 ^ b0) >> np.uint32(8)).astype(ft) * scale
        v01 = (_mix32(a0 ^ b1) >> np.uint32(8)).astype(ft) * scale
        v11 = (_mix32(a1 ^ b1) >> np.uint32(8)).astype(ft) * scale
    a = v00 + (v10 - v00) * tx
    b = v01 + (v11 - v01) * tx
    return a + (b - a) * ty


def fbm(x: np.ndarray, y: np.ndarray, seed: int | np.ndarray,
        wavelengths: tuple[float, ...], footprint: np.ndarray,
        gain: float = 0.6) -> np.ndarray:
    """Sum of value-noise octaves, zero mean, roughly in [-0.5, 0.5].

    Args:
        x, y: (N,) texture coordinates in metres.
        seed: scalar or (N,) per-point seed (e.g. the primitive's seed).
        wavelengths: octave cell sizes in metres, coarsest first.
        footprint: (N,) metres per pixel; an octave fades to 0 once its wavelength spans fewer
            than 4 pixels (fully gone at 2).
        gain: amplitude ratio between consecutive octaves.
    """
    out = np.zeros(np.broadcast(x, y).shape, np.result_type(x, y, np.float32))
    amp, norm = 1.0, 0.0
    seed = np.asarray(seed, np.int64)
    for k, lam in enumerate(wavelengths):
        w = detail_fade(lam, footprint)
        if np.any(w > 0):
            out += amp * w * (value_noise(x / lam, y / lam, seed * 31 + k + 1) - 0.5)
        norm += amp
        amp *= gain
    return out / norm


def filtered_box(x: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray,
                 width: np.ndarray) -> np.ndarray:
    """Fraction of the window ``[x - width/2, x + width/2]`` that lies inside ``[lo, hi]``."""
    w = np.maximum(width, 1e-9)
    return (np.clip(x + 0.5 * w, lo, hi) - np.clip(x - 0.5 * w, lo, hi)) / w


def _pulse_integral(s: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    fl = np.floor(s)
    return fl * (hi - lo) + np.clip(s - fl - lo, 0.0, hi - lo)


def filtered_pulse_train(x: np.ndarray, period: float | np.ndarray, lo: float | np.ndarray,
                         hi: float | np.ndarray, width: np.ndarray) -> np.ndarray:
    """Box-filtered periodic pulse: 1 where ``(x mod period)`` is in ``[lo, hi)``, else 0.

    Args:
        x: (N,) coordinate in metres; period, lo, hi: metres (``0 <= lo <= hi <= period``).
        width: (N,) filter width (the pixel footprint along ``x``) in metres.

    Returns:
        (N,) coverage in [0, 1]; tends to the duty cycle ``(hi - lo) / period`` for wide filters.
    """
    p = np.asarray(period)
    s, w = x / p, np.maximum(width, 1e-9) / p
    l, h = np.asarray(lo) / p, np.asarray(hi) / p
    return (_pulse_integral(s + 0.5 * w, l, h) - _pulse_integral(s - 0.5 * w, l, h)) / w


def cell_index(x: np.ndarray, period: float | np.ndarray) -> np.ndarray:
    """Integer cell of ``x`` in a grid of ``period`` (for per-cell random values)."""
    return np.floor(x / period).astype(np.int64)
