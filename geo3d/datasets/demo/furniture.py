"""Per-class furniture builders of the demo generator (beds, chairs, tables, cabinets, ...)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .layout import _Layout, _Obj
from .primitives import _basin, _box, _cyl, _grid, _Prim, _v

# ------------------------------------------------------------------------------------------------
# Furniture builders: local frame, footprint centred at the origin, floor z = 0, back at +y.
# Each returns (objects, w, d, h, solid).

_Built = tuple[list[_Obj], float, float, float, bool]


def _b_bed(L: _Layout) -> _Built:
    r = L.rng
    w = float(r.choice([0.95, 1.4, 1.6, 1.8])) + r.uniform(-0.04, 0.04)
    d, hm, hb = r.uniform(1.95, 2.15), r.uniform(0.45, 0.62), r.uniform(0.85, 1.2)
    wood = L.color('cabinet')
    prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.07, hm)
    prims += _box(-w / 2 - 0.02, d / 2 - 0.07, 0, w / 2 + 0.02, d / 2, hb, color=wood)
    if r.random() < 0.4:
        prims += _box(-w / 2 - 0.02, -d / 2 - 0.05, 0, w / 2 + 0.02, -d / 2, hm + 0.12, color=wood)
    objs = [_Obj('bed', L.color('bed'), prims)]
    n_p = 1 if w < 1.2 else 2
    for k in range(n_p):
        cx = 0.0 if n_p == 1 else (-0.25 if k == 0 else 0.25) * w * 1.2
        pw = min(0.6, w / n_p - 0.08)
        objs.append(_Obj('pillow', L.color('pillow'),
                         _box(cx - pw / 2, d / 2 - 0.5, hm, cx + pw / 2, d / 2 - 0.12, hm + 0.13)))
    return objs, w, d, max(hm, hb), True


def _b_chair(L: _Layout, label: str = 'chair') -> _Built:
    r = L.rng
    if label == 'armchair':
        w, d = r.uniform(0.75, 0.95), r.uniform(0.75, 0.9)
        hs, hb = r.uniform(0.4, 0.45), r.uniform(0.8, 0.95)
        prims = _box(-w / 2 + 0.14, -d / 2, 0, w / 2 - 0.14, d / 2 - 0.18, hs)
        prims += _box(-w / 2, d / 2 - 0.18, 0, w / 2, d / 2, hb)
        prims += _box(-w / 2, -d / 2, 0, -w / 2 + 0.14, d / 2 - 0.18, hs + 0.2)
        prims += _box(w / 2 - 0.14, -d / 2, 0, w / 2, d / 2 - 0.18, hs + 0.2)
        return [_Obj(label, L.color('sofa'), prims)], w, d, hb, True
    w, d = r.uniform(0.42, 0.52), r.uniform(0.42, 0.52)
    hs, hb = r.uniform(0.42, 0.48), r.uniform(0.38, 0.5)
    leg = L.color('metal') if r.random() < 0.5 else None
    prims = _box(-w / 2, -d / 2, hs - 0.05, w / 2, d / 2, hs, bottom=True)
    prims += _box(-w / 2, d / 2 - 0.05, hs, w / 2, d / 2, hs + hb)
    if label == 'office chair':
        prims += _cyl(0, 0, 0.08, 0.03, hs - 0.13, color=leg, top=False)
        prims += _cyl(0, 0, 0.0, 0.3, 0.08, color=_v(50, 50, 52))
    else:
        t = 0.035
        for sx in (-1, 1):
            for sy in (-1, 1):
                x, y = sx * (w / 2 - t), sy * (d / 2 - t)
                prims += _box(x - t / 2, y - t / 2, 0, x + t / 2, y + t / 2, hs - 0.05,
                              color=leg, top=False)
    return [_Obj(label, L.color('chair'), prims)], w, d, hs + hb, False


def _b_table(L: _Layout, label: str = 'table') -> _Built:
    r = L.rng
    if label == 'coffee table':
        w, d, h = r.uniform(0.8, 1.2), r.uniform(0.5, 0.7), r.uniform(0.38, 0.48)
    elif label == 'end table':
        w = d = r.uniform(0.45, 0.6)
        h = r.uniform(0.5, 0.6)
    else:
        w, d, h = r.uniform(1.0, 1.8), r.uniform(0.7, 1.0), r.uniform(0.72, 0.77)
    th = r.uniform(0.03, 0.05)
    prims = _box(-w / 2, -d / 2, h - th, w / 2, d / 2, h, bottom=True)
    leg = L.color('metal') if r.random() < 0.4 else None
    t = 0.05
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (w / 2 - t), sy * (d / 2 - t)
            prims += _box(x - t / 2, y - t / 2, 0, x + t / 2, y + t / 2, h - th, color=leg,
                          top=False)
    return [_Obj(label, L.color('table'), prims)], w, d, h, False


def _b_desk(L: _Layout) -> _Built:
    r = L.rng
    w, d, h = r.uniform(1.1, 1.7), r.uniform(0.6, 0.8), r.uniform(0.72, 0.76)
    th = 0.03
    prims = _box(-w / 2, -d / 2, h - th, w / 2, d / 2, h, bottom=True)
    prims += _box(-w / 2, -d / 2, 0, -w / 2 + 0.03, d / 2, h - th, top=False)
    if r.random() < 0.6:  # drawer block
        prims += _box(w / 2 - 0.42, -d / 2, 0, w / 2, d / 2, h - th, top=False)
    else:
        prims += _box(w / 2 - 0.03, -d / 2, 0, w / 2, d / 2, h - th, top=False)
    prims += _box(-w / 2 + 0.03, d / 2 - 0.03, h - 0.45, w / 2 - 0.03, d / 2, h - th, top=False)
    objs = [_Obj('desk', L.color('desk'), prims)]
    if r.random() < 0.6:  # a monitor-ish unannotated object or a lamp on top
        objs.append(_Obj(None, L.color('object'),
                         _box(-0.25, d / 2 - 0.25, h, 0.25, d / 2 - 0.2, h + 0.35, bottom=True)))
    return objs, w, d, h, False


def _b_sofa(L: _Layout) -> _Built:
    r = L.rng
    w, d = r.uniform(1.6, 2.4), r.uniform(0.8, 0.95)
    hs, hb, ha, ta = r.uniform(0.38, 0.45), r.uniform(0.75, 0.9), r.uniform(0.55, 0.65), 0.16
    prims = _box(-w / 2 + ta, -d / 2, 0, w / 2 - ta, d / 2 - 0.2, hs)
    prims += _box(-w / 2, d / 2 - 0.2, 0, w / 2, d / 2, hb)
    prims += _box(-w / 2, -d / 2, 0, -w / 2 + ta, d / 2 - 0.2, ha)
    prims += _box(w / 2 - ta, -d / 2, 0, w / 2, d / 2 - 0.2, ha)
    objs = [_Obj('couch', L.color('sofa'), prims)]
    if r.random() < 0.5:
        objs.append(_Obj('pillow', L.color('pillow'),
                         _box(-w / 2 + ta + 0.05, d / 2 - 0.35, hs, -w / 2 + ta + 0.45,
                              d / 2 - 0.2, hs + 0.38)))
    return objs, w, d, hb, True


def _b_cabinet(L: _Layout, label: str = 'cabinet', h: float | None = None,
               d: float | None = None, w: float | None = None) -> _Built:
    r = L.rng
    w = r.uniform(0.5, 1.2) if w is None else w
    d = r.uniform(0.4, 0.6) if d is None else d
    h = float(r.choice([r.uniform(0.7, 1.0), r.uniform(1.6, 2.1)])) if h is None else h
    col = L.color('cabinet')
    prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2, h)
    # door gap + handles: thin slightly darker strips on the front
    prims += _box(-0.01, -d / 2 - 0.005, 0.05, 0.01, -d / 2, h - 0.05, color=col * 0.6, back=False)
    return [_Obj(label, col, prims)], w, d, h, True


def _b_bookshelf(L: _Layout) -> _Built:
    r = L.rng
    w, d, h = r.uniform(0.7, 1.3), r.uniform(0.28, 0.38), r.uniform(1.6, 2.1)
    t = 0.02
    prims = _box(-w / 2, -d / 2, 0, -w / 2 + t, d / 2, h, back=False)
    prims += _box(w / 2 - t, -d / 2, 0, w / 2, d / 2, h, back=False)
    prims += [_grid((-w / 2, d / 2 - t, 0), (w, 0, 0), (0, 0, h))]  # back panel (inner face)
    prims += [_grid((-w / 2, d / 2, 0), (w, 0, 0), (0, 0, h))]      # back panel (outer face)
    n_sh = int(round(h / 0.38))
    levels = np.linspace(0, h - t, n_sh + 1)
    objs: list[_Obj] = []
    for z in levels:
        prims += _box(-w / 2 + t, -d / 2, z, w / 2 - t, d / 2 - t, z + t, bottom=z > 0, back=False)
    for z in levels[:-1]:  # books on some shelves
        if r.random() < 0.55:
            x = -w / 2 + t + 0.02
            books = []
            while x < w / 2 - 0.1 and r.random() < 0.93:
                bw, bh = r.uniform(0.02, 0.05), r.uniform(0.18, min(0.3, h / n_sh - 0.06))
                bd = r.uniform(0.15, d - 0.06)
                books += _box(x, d / 2 - t - bd, z + t, x + bw, d / 2 - t, z + t + bh,
                              color=L.color('book'), back=False)
                x += bw + 0.002
            if books:
                objs.append(_Obj('book', L.color('book'), books))
    return [_Obj('bookshelf', L.color('bookshelf'), prims)] + objs, w, d, h, True


def _b_fridge(L: _Layout) -> _Built:
    r = L.rng
    w, d, h = r.uniform(0.6, 0.9), r.uniform(0.65, 0.75), r.uniform(1.6, 1.95)
    col = L.color('refrigerator')
    prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2, h)
    hz = h * r.uniform(0.6, 0.7)
    prims += _box(-w / 2, -d / 2 - 0.01, hz - 0.01, w / 2, -d / 2, hz + 0.01, color=col * 0.5,
                  back=False)
    prims += _box(w / 2 - 0.08, -d / 2 - 0.05, hz + 0.1, w / 2 - 0.05, -d / 2, hz + 0.45,
                  color=L.color('metal'), back=False)
    return [_Obj('refrigerator', col, prims)], w, d, h, True


def _b_toilet(L: _Layout) -> _Built:
    r = L.rng
    w, d = r.uniform(0.36, 0.42), r.uniform(0.62, 0.72)
    col = L.color('toilet', 6)
    prims = _box(-w / 2 + 0.02, d / 2 - 0.2, 0.38, w / 2 - 0.02, d / 2, 0.8)   # tank
    prims += _cyl(0, d / 2 - 0.2 - w / 2, 0.0, w / 2, 0.4)                     # bowl + seat
    prims += _box(-0.1, d / 2 - 0.22, 0, 0.1, d / 2 - 0.1, 0.38, top=False)     # foot
    return [_Obj('toilet', col, prims)], w, d, 0.8, False


def _b_sink(L: _Layout) -> _Built:
    r = L.rng
    w, d = r.uniform(0.45, 0.6), r.uniform(0.38, 0.48)
    col = L.color('sink', 6)
    prims = _box(-w / 2, -d / 2, 0.72, w / 2, d / 2, 0.88, bottom=True, top=False)
    prims += _basin(-w / 2 + 0.04, -d / 2 + 0.04, w / 2 - 0.04, d / 2 - 0.04, 0.88, 0.13)
    prims += [_grid((-w / 2, -d / 2, 0.88), (w, 0, 0), (0, 0.04, 0)),
              _grid((-w / 2, d / 2 - 0.04, 0.88), (w, 0, 0), (0, 0.04, 0)),
              _grid((-w / 2, -d / 2 + 0.04, 0.88), (0.04, 0, 0), (0, d - 0.08, 0)),
              _grid((w / 2 - 0.04, -d / 2 + 0.04, 0.88), (0.04, 0, 0), (0, d - 0.08, 0))]
    prims += _cyl(0, 0.02, 0.0, 0.08, 0.72, top=False)
    return [_Obj('sink', col, prims)], w, d, 0.88, False


def _b_bathtub(L: _Layout) -> _Built:
    r = L.rng
    w, d, h = r.uniform(1.5, 1.75), r.uniform(0.7, 0.8), r.uniform(0.5, 0.6)
    rim = 0.08
    prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2, h, top=False)
    prims += [_grid((-w / 2, -d / 2, h), (w, 0, 0), (0, rim, 0)),
              _grid((-w / 2, d / 2 - rim, h), (w, 0, 0), (0, rim, 0)),
              _grid((-w / 2, -d / 2 + rim, h), (rim, 0, 0), (0, d - 2 * rim, 0)),
              _grid((w / 2 - rim, -d / 2 + rim, h), (rim, 0, 0), (0, d - 2 * rim, 0))]
    prims += _basin(-w / 2 + rim, -d / 2 + rim, w / 2 - rim, d / 2 - rim, h, h - 0.08)
    objs = [_Obj('bathtub', L.color('bathtub', 6), prims)]
    if r.random() < 0.9:  # shower curtain along the open (front) side
        frac = r.uniform(0.35, 1.0)
        cw = w * frac
        x0 = -w / 2 if r.random() < 0.5 else w / 2 - cw
        objs.append(_Obj('shower curtain', L.color('shower curtain'),
                         [_grid((x0, -d / 2 + 0.03, h + 0.15), (cw, 0, 0), (0, 0, 1.9 - h - 0.15),
                                wave=(r.uniform(0.02, 0.04), r.uniform(0.12, 0.2),
                                      r.uniform(0, 6.28)))]))
    return objs, w, d, h, True


def _b_counter(L: _Layout, w: float) -> _Built:
    r = L.rng
    d, h = r.uniform(0.58, 0.66), r.uniform(0.88, 0.94)
    top_th = 0.04
    objs = [_Obj('kitchen counter' if r.random() < 0.6 else 'counter', L.color('counter'),
                 _box(-w / 2, -d / 2 - 0.03, h - top_th, w / 2, d / 2, h, bottom=True))]
    cab = L.color('cabinet')
    objs.append(_Obj('kitchen cabinet', cab, _box(-w / 2 + 0.02, -d / 2 + 0.03, 0.0, w / 2 - 0.02,
                                                  d / 2, h - top_th, top=False)))
    return objs, w, d, h, True


def _b_trash(L: _Layout) -> _Built:
    r = L.rng
    if r.random() < 0.6:
        rad, h = r.uniform(0.12, 0.2), r.uniform(0.3, 0.6)
        prims = _cyl(0, 0, 0, rad, h, top=False) + _cyl(0, 0, 0.05, rad - 0.015, h - 0.05,
                                                        top=False, inward=True)
        w = d = 2 * rad
    else:
        w, d, h = r.uniform(0.25, 0.4), r.uniform(0.2, 0.35), r.uniform(0.35, 0.65)
        prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2, h, top=False)
        prims += _basin(-w / 2 + 0.01, -d / 2 + 0.01, w / 2 - 0.01, d / 2 - 0.01, h, h - 0.05)
    return [_Obj('trash can', L.color('trash can'), prims)], w, d, h, False


def _b_simple(label: str, palette: str, size: tuple[tuple[float, float], ...],
              solid: bool = True) -> Callable[[_Layout], _Built]:
    def build(L: _Layout) -> _Built:
        w, d, h = (float(L.rng.uniform(a, b)) for a, b in size)
        return [_Obj(label, L.color(palette), _box(-w / 2, -d / 2, 0, w / 2, d / 2, h))], w, d, h, \
            solid
    return build


_b_nightstand = _b_simple('nightstand', 'nightstand', ((0.4, 0.55), (0.35, 0.45), (0.45, 0.62)))
_b_ottoman = _b_simple('ottoman', 'ottoman', ((0.45, 0.7), (0.45, 0.7), (0.35, 0.45)))
_b_box = _b_simple('box', 'box', ((0.25, 0.6), (0.25, 0.5), (0.2, 0.5)))
_b_clutter = _b_simple(None, 'object', ((0.15, 0.45), (0.15, 0.45), (0.1, 0.6)))  # type: ignore


def _b_radiator(L: _Layout) -> _Built:
    r = L.rng
    w, h = r.uniform(0.6, 1.2), r.uniform(0.45, 0.6)
    prims: list[_Prim] = []
    n_fin = int(w / 0.07)
    for k in range(n_fin):  # vertical fins give it a distinctive comb shape
        x = -w / 2 + (k + 0.5) * w / n_fin
        prims += _box(x - 0.015, -0.05, 0.12, x + 0.015, 0.05, 0.12 + h, back=False)
    return [_Obj('radiator', L.color('radiator', 6), prims)], w, 0.1, 0.12 + h, False


def _lamp(L: _Layout, x: float, y: float, z: float) -> _Obj:
    r = L.rng
    rs, hs = r.uniform(0.1, 0.18), r.uniform(0.15, 0.25)
    stem = r.uniform(0.2, 0.35)
    prims = _cyl(x, y, z, 0.07, 0.03) + _cyl(x, y, z + 0.03, 0.012, stem, top=False)
    prims += _cyl(x, y, z + 0.03 + stem, rs, hs)
    return _Obj('lamp', L.color('lamp'), prims)
