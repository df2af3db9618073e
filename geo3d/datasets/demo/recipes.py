"""Room recipes of the demo generator: which furniture each room kind gets and where."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .furniture import (_b_bathtub, _b_bed, _b_bookshelf, _b_box, _b_cabinet, _b_chair,
                        _b_clutter, _b_counter, _b_desk, _b_fridge, _b_nightstand, _b_ottoman,
                        _b_radiator, _b_sink, _b_sofa, _b_table, _b_toilet, _b_trash, _Built,
                        _lamp)
from .layout import _Layout, _obb_corners, _Obj, _Occluder, _rotz
from .primitives import _basin, _box, _cyl, _v
from .shell import _add_pictures

# ------------------------------------------------------------------------------------------------
# Room recipes


def _try_wall(L: _Layout, built: _Built, **kw: Any) -> tuple[float, float, float] | None:
    objs, w, d, h, solid = built
    pose = L.place_wall(w, d, h, **kw)
    if pose is None:
        return None
    x, y, yaw, wall, u = pose
    L.commit(objs, x, y, yaw, w, d, h, solid, wall=wall, u=u)
    return x, y, yaw


def _try_free(L: _Layout, built: _Built, snap: bool = False) -> tuple[float, float, float] | None:
    objs, w, d, h, solid = built
    pose = L.place_free(w, d, snap=snap)
    if pose is None:
        return None
    L.commit(objs, *pose, w, d, h, solid)
    return pose


def _chairs_around(L: _Layout, tx: float, ty: float, tyaw: float, tw: float, td: float,
                   n: int, label: str = 'chair', front_only: bool = False) -> None:
    """Up to n chairs facing the table/desk just placed (its footprint is the last one)."""
    table_fp = len(L.footprints) - 1
    sides = [(0, -1), (0, 1), (-1, 0), (1, 0)]
    if front_only:
        sides = sides[:1]
    else:
        L.rng.shuffle(sides)
    for sx, sy in sides[:n]:
        objs, w, d, h, solid = _b_chair(L, label)
        tuck = float(L.rng.uniform(-0.05, 0.15))
        off = _v(sx * (tw / 2 + d / 2 - tuck), sy * (td / 2 + d / 2 - tuck))
        # chair faces the table: its back (+y local) points away from the table
        yaw = tyaw + math.atan2(-sx, sy) + L.rng.normal(0, 0.15)
        p = _rotz(tyaw)[:2, :2] @ off + (tx, ty)
        corners = _obb_corners(p[0], p[1], w / 2, d / 2, yaw)
        if L.fits(corners, margin=0.03, ignore=table_fp):
            L.commit(objs, float(p[0]), float(p[1]), yaw, w, d, h, solid)


def _recipe_bedroom(L: _Layout) -> None:
    r = L.rng
    bed = _b_bed(L)
    pose = _try_wall(L, bed)
    if pose is not None:
        w = bed[1]
        for side in (-1, 1):
            if r.random() < 0.75:
                ns = _b_nightstand(L)
                nw, nd, nh = ns[1], ns[2], ns[3]
                x, y, yaw = pose
                off = _rotz(yaw)[:2, :2] @ _v(side * (w / 2 + nw / 2 + 0.05), bed[2] / 2 - nd / 2)
                cx, cy = x + off[0], y + off[1]
                if L.fits(_obb_corners(cx, cy, nw / 2, nd / 2, yaw)):
                    L.commit(ns[0], cx, cy, yaw, nw, nd, nh, True)
                    if r.random() < 0.6:
                        L.add(_lamp(L, cx, cy, nh))
    for _ in range(int(r.integers(1, 3))):
        _try_wall(L, _b_cabinet(L, 'cabinet'))
    if r.random() < 0.5:
        desk = _b_desk(L)
        dp = _try_wall(L, desk)
        if dp is not None:
            _chairs_around(L, *dp, desk[1], desk[2], 1, 'chair', front_only=True)
    if r.random() < 0.5:
        _try_free(L, _b_ottoman(L))
    _try_wall(L, _b_trash(L))
    _add_pictures(L, int(r.integers(1, 4)))


def _recipe_living(L: _Layout) -> None:
    r = L.rng
    sofa = _b_sofa(L)
    sp = _try_wall(L, sofa)
    if sp is not None:
        ct = _b_table(L, 'coffee table')
        x, y, yaw = sp
        off = _rotz(yaw)[:2, :2] @ _v(0, -(sofa[2] / 2 + 0.35 + ct[2] / 2))
        cx, cy = x + off[0], y + off[1]
        if L.fits(_obb_corners(cx, cy, ct[1] / 2, ct[2] / 2, yaw)):
            L.commit(ct[0], cx, cy, yaw, ct[1], ct[2], ct[3], False)
    for _ in range(int(r.integers(1, 3))):
        _try_free(L, _b_chair(L, 'armchair' if r.random() < 0.6 else 'chair'))
    if r.random() < 0.8:
        _try_wall(L, _b_bookshelf(L))
    cab = _b_cabinet(L, 'cabinet', h=float(r.uniform(0.45, 0.8)))
    cp = _try_wall(L, cab)
    if cp is not None and r.random() < 0.7:
        tw = min(cab[1] - 0.05, 1.1)
        tv = _Obj('tv', L.color('tv', 4), _box(-tw / 2, -0.03, cab[3], tw / 2, 0.03,
                                               cab[3] + tw * 0.58))
        L.commit([tv], *cp, tw, 0.06, 0.6, False, footprint=False)
    if r.random() < 0.5:
        _try_free(L, _b_table(L, 'end table'))
    if r.random() < 0.5:
        _try_wall(L, _b_radiator(L), gap=0.04)
    _try_wall(L, _b_trash(L))
    _add_pictures(L, int(r.integers(1, 4)))


def _recipe_kitchen(L: _Layout) -> None:
    r = L.rng
    pose, want = None, float(r.uniform(1.6, 3.2))
    for wall in sorted(L.walls, key=lambda wl: -wl.length):
        for frac in (1.0, 0.75, 0.5):
            run = min(wall.length - 0.3, want) * frac
            if run < 0.9:
                continue
            counter = _b_counter(L, run)
            pose = L.place_wall(counter[1], counter[2], counter[3], wall=wall, tries=10)
            if pose is not None:
                break
        if pose is not None:
            break
    if pose is not None:
        x, y, yaw, wl, u = pose
        ids = L.commit(counter[0], x, y, yaw, counter[1], counter[2], counter[3], True,
                       wall=wl, u=u)
        # sink recessed into the counter
        sw, sd, zt = r.uniform(0.45, 0.7), r.uniform(0.35, 0.42), counter[3]
        sx = float(r.uniform(-run / 2 + sw / 2 + 0.1, run / 2 - sw / 2 - 0.1))
        sprims = _basin(sx - sw / 2, -sd / 2, sx + sw / 2, sd / 2, zt + 0.003, 0.2)
        sprims += _cyl(sx, sd / 2 + 0.05, zt, 0.02, 0.3, color=L.color('metal'))
        sink = _Obj('sink', L.color('sink', 6), sprims)
        L.commit([sink], x, y, yaw, sw, sd, 0.2, False, footprint=False)
        c = _rotz(yaw)[:2, :2] @ _v(sx, 0) + (x, y)
        L.occluders.append(_Occluder(float(c[0]), float(c[1]), sw / 2, sd / 2, yaw, zt - 0.5,
                                     zt + 0.1, tuple(ids)))
        if r.random() < 0.8:   # upper cabinets
            uw = min(run, float(r.uniform(1.0, 2.4)))
            up = _b_cabinet(L, 'kitchen cabinet', h=0.7, d=0.35, w=uw)
            uu = u + float(r.uniform(-(run - uw) / 2, (run - uw) / 2))
            c2 = wl.point(uu, 0.02 + 0.175)
            zc = float(r.uniform(1.45, 1.6))
            if wl.free(uu - uw / 2, uu + uw / 2, zc, zc + 0.7):
                L.commit(up[0], float(c2[0]), float(c2[1]), yaw, uw, 0.35, 0.7, True, wall=wl, u=uu,
                         z=zc, footprint=False)
    _try_wall(L, _b_fridge(L))
    if r.random() < 0.5:
        _try_wall(L, _b_cabinet(L, 'cabinet', h=float(r.uniform(1.8, 2.1))))
    table = _b_table(L, 'table')
    tp = _try_free(L, table, snap=True)
    if tp is not None:
        _chairs_around(L, *tp, table[1], table[2], int(r.integers(2, 5)))
    _try_wall(L, _b_trash(L))
    if r.random() < 0.5:
        _try_free(L, _b_box(L))
    _add_pictures(L, int(r.integers(0, 2)))


def _recipe_bathroom(L: _Layout) -> None:
    r = L.rng
    _try_wall(L, _b_bathtub(L), gap=0.005)
    _try_wall(L, _b_toilet(L), gap=0.03)
    if r.random() < 0.5:
        _try_wall(L, _b_sink(L), gap=0.02)
    else:   # vanity cabinet with a sink basin on top
        vw = float(r.uniform(0.6, 1.0))
        van = _b_cabinet(L, 'bathroom vanity', h=0.82, d=0.5, w=vw)
        pose = L.place_wall(vw, 0.5, 0.82)
        if pose is not None:
            x, y, yaw, wl, u = pose
            ids = L.commit(van[0], x, y, yaw, vw, 0.5, 0.82, True, wall=wl, u=u)
            sprims = _basin(-0.22, -0.16, 0.22, 0.16, 0.823, 0.15)
            sprims += _cyl(0, 0.2, 0.82, 0.02, 0.25, color=L.color('metal'))
            L.commit([_Obj('sink', L.color('sink', 6), sprims)], x, y, yaw, 0.44, 0.32, 0.2,
                     False, footprint=False)
            L.occluders.append(_Occluder(x, y, 0.22, 0.16, yaw, 0.5, 0.9, tuple(ids)))
    if r.random() < 0.5:
        _try_wall(L, _b_cabinet(L, 'cabinet', h=float(r.uniform(0.8, 1.8)), d=0.35))
    _try_wall(L, _b_trash(L))
    if r.random() < 0.5:
        _try_wall(L, _b_radiator(L), gap=0.04)


def _recipe_office(L: _Layout) -> None:
    r = L.rng
    for _ in range(int(r.integers(1, 4))):
        desk = _b_desk(L)
        dp = _try_wall(L, desk) if r.random() < 0.7 else _try_free(L, desk, snap=True)
        if dp is not None:
            _chairs_around(L, *dp, desk[1], desk[2], 1, 'office chair', front_only=True)
    for _ in range(int(r.integers(1, 3))):
        _try_wall(L, _b_bookshelf(L))
    _try_wall(L, _b_cabinet(L, 'cabinet'))
    if r.random() < 0.6:
        table = _b_table(L, 'table')
        tp = _try_free(L, table, snap=True)
        if tp is not None:
            _chairs_around(L, *tp, table[1], table[2], int(r.integers(1, 4)))
    for _ in range(int(r.integers(1, 3))):
        _try_wall(L, _b_trash(L))
    if r.random() < 0.5:
        _try_wall(L, _b_radiator(L), gap=0.04)
    _add_pictures(L, int(r.integers(0, 3)))


_RECIPES: dict[str, Callable[[_Layout], None]] = {
    'bedroom': _recipe_bedroom, 'living': _recipe_living, 'kitchen': _recipe_kitchen,
    'bathroom': _recipe_bathroom, 'office': _recipe_office}


def _x_desk(L: _Layout, chair: str = 'office chair') -> None:
    desk = _b_desk(L)
    dp = _try_wall(L, desk)
    if dp is not None:
        _chairs_around(L, *dp, desk[1], desk[2], 1, chair, front_only=True)


def _x_table(L: _Layout) -> None:
    table = _b_table(L, 'table')
    tp = _try_free(L, table, snap=True)
    if tp is not None:
        _chairs_around(L, *tp, table[1], table[2], int(L.rng.integers(1, 5)))


_EXTRAS: dict[str, list[Callable[[_Layout], Any]]] = {
    'bedroom': [lambda L: _try_wall(L, _b_cabinet(L)), lambda L: _try_wall(L, _b_bookshelf(L)),
                lambda L: _try_free(L, _b_chair(L)), lambda L: _x_desk(L, 'chair'),
                lambda L: _try_free(L, _b_ottoman(L))],
    'living': [lambda L: _try_free(L, _b_chair(L, 'armchair')),
               lambda L: _try_wall(L, _b_bookshelf(L)), lambda L: _try_wall(L, _b_cabinet(L)),
               _x_table, lambda L: _try_wall(L, _b_sofa(L)),
               lambda L: _try_free(L, _b_ottoman(L))],
    'kitchen': [lambda L: _try_wall(L, _b_cabinet(L)), lambda L: _try_free(L, _b_chair(L)),
                lambda L: _try_wall(L, _b_trash(L)), lambda L: _try_free(L, _b_box(L))],
    'bathroom': [lambda L: _try_wall(L, _b_cabinet(L, h=float(L.rng.uniform(0.8, 1.8)), d=0.35)),
                 lambda L: _try_free(L, _b_box(L))],
    'office': [_x_desk, lambda L: _try_wall(L, _b_bookshelf(L)),
               lambda L: _try_wall(L, _b_cabinet(L)), _x_table,
               lambda L: _try_free(L, _b_chair(L, 'office chair')),
               lambda L: _try_wall(L, _b_trash(L))],
}


def _add_extras(L: _Layout) -> None:
    """More furniture in bigger rooms (about one extra piece per 7 m2 of floor)."""
    pool = _EXTRAS[L.kind]
    area = L.W * L.D - (0.0 if L.notch is None else float(np.prod(np.ptp(L.notch, 0))))
    for _ in range(int(area / 7.0 * L.rng.uniform(0.7, 1.3))):
        pool[int(L.rng.integers(len(pool)))](L)


def _add_clutter(L: _Layout) -> None:
    r = L.rng
    for _ in range(int(r.integers(1, 4))):
        if r.random() < 0.5:
            _try_free(L, _b_box(L))
        else:
            _try_free(L, _b_clutter(L))
