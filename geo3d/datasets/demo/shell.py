"""Room shell of the demo generator: floor, walls, ceiling patch, doors, windows, curtains and
pictures."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .layout import _Layout, _obb_corners, _Obj, _Occluder, _Wall
from .primitives import _grid, _Prim, _v

# ------------------------------------------------------------------------------------------------
# Room shell: floor, walls, doors, windows, pictures, curtains


def _build_shell(L: _Layout) -> None:
    r = L.rng
    wall_col = L.color('wall', 8)
    floor_col = L.color('floor', 10)
    W, D = L.W, L.D
    if L.notch is None:
        rects = [(0.0, 0.0, W, D)]
    else:
        nx0, ny0 = L.notch.min(0)
        nx1, ny1 = L.notch.max(0)
        rects = [(0.0, 0.0, W, D)]
        # split the bounding rectangle into two rectangles avoiding the notch
        if ny0 <= 1e-9:     # notch at the bottom
            rects = [(0.0, ny1, W, D), (0.0 if nx0 > 1e-9 else nx1, 0.0,
                                         nx0 if nx0 > 1e-9 else W, ny1)]
        else:               # notch at the top
            rects = [(0.0, 0.0, W, ny0), (0.0 if nx0 > 1e-9 else nx1, ny0,
                                          nx0 if nx0 > 1e-9 else W, D)]
    floor = _Obj('floor', floor_col, [_grid((x0, y0, 0), (x1 - x0, 0, 0), (0, y1 - y0, 0))
                                      for x0, y0, x1, y1 in rects], structural=True)
    L.floor_ids.append(L.add(floor))
    if r.random() < 0.3:  # partial ceiling scan (an ignored class)
        x0, y0, x1, y1 = rects[0]
        cw = (x1 - x0) * r.uniform(0.3, 0.7)
        L.add(_Obj('ceiling', L.color('ceiling', 6),
                   [_grid((x0, y0, L.H), (0, y1 - y0, 0), (cw, 0, 0))], structural=True))
    n = len(L.poly)
    for k in range(n):
        p0, p1 = L.poly[k], L.poly[(k + 1) % n]
        o3 = np.r_[p1, 0.0]
        prim = _grid(o3, np.r_[p0 - p1, 0.0], (0, 0, L.H))
        idx = L.add(_Obj('wall', wall_col + r.normal(0, 3, 3), [prim], structural=True))
        L.walls.append(_Wall(p0.copy(), p1.copy(), idx))

    # one door (sometimes two), windows, pictures
    order = r.permutation(len(L.walls))
    n_doors = 1 + int(r.random() < 0.25)
    for wi in order[:n_doors]:
        _add_door(L, L.walls[int(wi)])
    n_win = 0 if L.kind == 'bathroom' and r.random() < 0.4 else int(r.integers(1, 4))
    for _ in range(n_win):
        _add_window(L, L.walls[int(r.integers(len(L.walls)))])


def _wall_cut(L: _Layout, wall: _Wall, u0: float, u1: float, z0: float, z1: float) -> None:
    c = (wall.point(u0) + wall.point(u1)) / 2
    yaw = math.atan2(wall.e[1], wall.e[0])
    L.occluders.append(_Occluder(float(c[0]), float(c[1]), (u1 - u0) / 2, 0.2, yaw, z0, z1,
                                 (wall.index,)))


def _wall_prims(wall: _Wall, pts: list[tuple[float, float, float]],
                color: Any = None) -> _Prim:
    """Grid from wall-frame (u, off, z) triples: origin, u-end, v-end."""
    def p(u: float, off: float, z: float) -> np.ndarray:
        return np.r_[wall.point(u, off), z]
    o, a, b = (p(*q) for q in pts)
    return _Prim('grid', (o, a - o, b - o), None if color is None else _v(*color))


def _add_door(L: _Layout, wall: _Wall) -> None:
    r = L.rng
    dw, dh = r.uniform(0.8, 0.95), r.uniform(2.0, 2.1)
    for _ in range(20):
        u0 = float(r.uniform(0.1, wall.length - dw - 0.1)) if wall.length > dw + 0.2 else -1
        if u0 < 0:
            return
        if wall.free(u0 - 0.05, u0 + dw + 0.05, 0, dh):
            break
    else:
        return
    u1 = u0 + dw
    wall.items.append((u0 - 0.05, u1 + 0.05, 0.0, dh + 0.1))
    _wall_cut(L, wall, u0, u1, 0.01, dh)
    col = L.color('door')
    prims = []
    fc = col * 0.85
    # frame: jambs and head protruding 2 cm, reveal surfaces into the wall
    for uu in (u0 - 0.06, u1):
        prims.append(_wall_prims(wall, [(uu + 0.06, 0.02, 0), (uu, 0.02, 0),
                                        (uu + 0.06, 0.02, dh + 0.06)], fc))
    prims.append(_wall_prims(wall, [(u1, 0.02, dh), (u0, 0.02, dh), (u1, 0.02, dh + 0.06)], fc))
    prims.append(_wall_prims(wall, [(u0, 0.0, 0), (u0, 0.0, dh), (u0, -0.12, 0)], fc))
    prims.append(_wall_prims(wall, [(u1, -0.12, 0), (u1, -0.12, dh), (u1, 0.0, 0)], fc))
    prims.append(_wall_prims(wall, [(u0, 0.0, dh), (u1, 0.0, dh), (u0, -0.12, dh)], fc))
    if r.random() < 0.5:   # closed: panel recessed in the opening
        prims.append(_wall_prims(wall, [(u1, -0.05, 0), (u0, -0.05, 0), (u1, -0.05, dh)]))
        prims.append(_wall_prims(wall, [(u1 - 0.1, -0.03, 0.95), (u1 - 0.22, -0.03, 0.95),
                                        (u1 - 0.1, -0.03, 1.0)], L.color('metal')))
        L.footprints.append(_obb_corners(*wall.point((u0 + u1) / 2, 0.45), dw / 2, 0.45,
                                         math.atan2(wall.e[1], wall.e[0])))
    else:                  # open into the room, hinged at u0
        ang = float(r.uniform(0.5, 1.5))
        e, n = wall.e, wall.n
        dirv = math.cos(ang) * e + math.sin(ang) * n
        hinge = np.r_[wall.point(u0, 0.0), 0.0]
        du = np.r_[dirv * dw, 0.0]
        thick = np.r_[(-math.sin(ang) * e + math.cos(ang) * n) * 0.04, 0.0]
        up = _v(0, 0, dh)
        prims.append(_Prim('grid', (hinge, du, up)))
        prims.append(_Prim('grid', (hinge + thick + du, -du, up)))
        prims.append(_Prim('grid', (hinge + du, thick, up)))
        swing = wall.point(u0 + dw / 2, dw / 2)
        L.footprints.append(_obb_corners(swing[0], swing[1], dw / 2 + 0.05, dw / 2 + 0.05,
                                         math.atan2(e[1], e[0])))
    L.add(_Obj('door', col, prims))


def _add_window(L: _Layout, wall: _Wall) -> None:
    r = L.rng
    ww, wh = r.uniform(0.7, min(2.0, wall.length - 0.6)), r.uniform(0.9, 1.5)
    sill = r.uniform(0.7, 1.0)
    if ww < 0.5 or sill + wh > L.H - 0.15:
        return
    for _ in range(20):
        u0 = float(r.uniform(0.2, wall.length - ww - 0.2))
        if wall.free(u0 - 0.35, u0 + ww + 0.35, sill - 0.3, sill + wh + 0.2):
            break
    else:
        return
    u1, z0, z1 = u0 + ww, sill, sill + wh
    wall.items.append((u0 - 0.05, u1 + 0.05, z0 - 0.05, z1 + 0.05))
    _wall_cut(L, wall, u0, u1, z0, z1)
    depth = r.uniform(0.08, 0.2)
    glass, frame = L.color('window'), L.color('wall', 6) * r.uniform(0.9, 1.05)
    glass_prims = [_wall_prims(wall, [(u1, -depth, z0), (u0, -depth, z0), (u1, -depth, z1)])]
    mull = int(r.integers(0, 3))
    for k in range(1, mull + 1):   # mullions
        uu = u0 + ww * k / (mull + 1)
        glass_prims.append(_wall_prims(wall, [(uu + 0.03, -depth + 0.02, z0),
                                              (uu - 0.03, -depth + 0.02, z0),
                                              (uu + 0.03, -depth + 0.02, z1)], frame))
    reveal = [_wall_prims(wall, [(u0, 0.0, z0), (u0, 0.0, z1), (u0, -depth, z0)], frame),
              _wall_prims(wall, [(u1, -depth, z0), (u1, -depth, z1), (u1, 0.0, z0)], frame),
              _wall_prims(wall, [(u0, 0.0, z1), (u1, 0.0, z1), (u0, -depth, z1)], frame),
              _wall_prims(wall, [(u0 - 0.05, -depth, z0), (u1 + 0.05, -depth, z0),
                                 (u0 - 0.05, 0.06, z0)], frame),
              _wall_prims(wall, [(u1 + 0.05, 0.06, z0 - 0.04), (u0 - 0.05, 0.06, z0 - 0.04),
                                 (u1 + 0.05, 0.06, z0)], frame)]
    win_idx = L.add(_Obj('window', glass, glass_prims + reveal, hole_weight=4.0))
    if r.random() < 0.55 and L.kind != 'bathroom':  # curtains at both sides
        col = L.color('curtain')
        top = min(L.H - 0.05, z1 + r.uniform(0.1, 0.3))
        bot = float(r.choice([0.02, max(0.02, z0 - r.uniform(0.05, 0.2))]))
        cw = r.uniform(0.3, 0.55)
        for side in (0, 1):
            a = u0 - 0.15 if side == 0 else u1 + 0.15 - cw
            prim = _wall_prims(wall, [(a + cw, 0.1, bot), (a, 0.1, bot), (a + cw, 0.1, top)])
            prim.wave = (r.uniform(0.02, 0.045), r.uniform(0.12, 0.22), r.uniform(0, 6.28))
            L.add(_Obj('curtain', col, [prim]))
            c = wall.point(a + cw / 2, 0.0)
            L.occluders.append(_Occluder(float(c[0]), float(c[1]), cw / 2, 0.3,
                                         math.atan2(wall.e[1], wall.e[0]), bot, top,
                                         (wall.index, win_idx)))
        wall.items.append((u0 - 0.2, u1 + 0.2, bot, top))


def _add_pictures(L: _Layout, n: int) -> None:
    r = L.rng
    for _ in range(n):
        wall = L.walls[int(r.integers(len(L.walls)))]
        pw, ph = r.uniform(0.3, 1.2), r.uniform(0.3, 0.9)
        zc = r.uniform(1.35, min(1.8, L.H - ph / 2 - 0.2))
        if wall.length < pw + 0.4:
            continue
        u0 = float(r.uniform(0.2, wall.length - pw - 0.2))
        if not wall.free(u0, u0 + pw, zc - ph / 2, zc + ph / 2):
            continue
        wall.items.append((u0, u0 + pw, zc - ph / 2, zc + ph / 2))
        t = r.uniform(0.015, 0.04)
        z0, z1, u1 = zc - ph / 2, zc + ph / 2, u0 + pw
        # random saturated colour: overlaps with other classes' palettes
        col = np.clip(r.uniform(30, 230, 3) * r.uniform(0.6, 1.0), 0, 255)
        prims = [_wall_prims(wall, [(u1, t, z0), (u0, t, z0), (u1, t, z1)]),
                 _wall_prims(wall, [(u0, 0, z0), (u0, 0, z1), (u0, t, z0)]),
                 _wall_prims(wall, [(u1, t, z0), (u1, t, z1), (u1, 0, z0)]),
                 _wall_prims(wall, [(u0, t, z0), (u1, t, z0), (u0, 0, z0)]),
                 _wall_prims(wall, [(u0, 0, z1), (u1, 0, z1), (u0, t, z1)])]
        L.add(_Obj('picture', col, prims))
        _wall_cut(L, wall, u0, u1, z0, z1)
