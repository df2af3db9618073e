"""Surface appearance of the street: albedo per material, sky colour, lidar reflectance.

All patterns are functions of the hit point in the primitive's own frame and are box-filtered
with the pixel footprint (see :mod:`.textures`), so a surface point has the same colour in
every frame it is seen from (Lambertian shading, no view-dependent terms): photometric
matching between frames is well posed, and the patterns (asphalt grain, lane markings, paving
tiles, brick courses, windows and their frames, wheels, signs, leaves) give SSIM/L1 something to
lock onto at every scale.
"""
from __future__ import annotations

import numpy as np

from .raycast import Hits
from .scene import Material, StreetScene
from .textures import (cell_index, detail_fade, fbm, filtered_box, filtered_pulse_train,
                       hash_unit, smoothstep, value_noise)

__all__ = ['surface_albedo', 'sky_color', 'lidar_reflectance', 'shade']

A = np.ndarray


def _rgb(*v: float) -> np.ndarray:
    """A float32 colour constant (the texture maths runs in float32, about 1.35x faster
    than float64 here)."""
    return np.array(v, np.float32)


_WHITE_PAINT = _rgb(0.88, 0.88, 0.84)
_GLASS = _rgb(0.09, 0.11, 0.15)


def _mix(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-row blend ``a * (1 - w) + b * w``; a, b (n, 3) or (3,), w (n,)."""
    w = w[:, None]
    return a * (1.0 - w) + b * w


def _ground(loc: A, fp: A, scene: StreetScene) -> A:
    """Road (asphalt grain, repaired patches, dashed centre line, parking-strip lines) and the
    verge beyond the kerb (grass / gravel)."""
    x, y = loc[:, 0], loc[:, 1]
    fx, fy = fp[:, 0], fp[:, 1]
    fm = np.sqrt(fx * fy)  # between the two axes: keeps grain on the foreshortened road
    s = scene.seed
    ay = np.abs(y)
    asph = 0.36 + 0.4 * fbm(x, y, s, (6.0, 1.7, 0.5, 0.15, 0.045), fm, gain=0.75)
    asph *= 1.0 - 0.12 * smoothstep(0.55, 0.8, value_noise(x / 9.0, y / 4.0, s + 5))
    lane_edge = scene.road_half_width - 2.1
    asph *= 1.0 + 0.07 * filtered_box(ay, lane_edge, 1e3, fy)  # lighter parking strips
    dash = filtered_box(y, -0.07, 0.07, fy) * filtered_pulse_train(x, 9.0, 0.0, 3.0, fx)
    edge = filtered_box(ay, lane_edge - 0.06, lane_edge + 0.06, fy)
    wear = 0.75 + 0.5 * value_noise(x / 0.7, y / 0.7, s + 11) * detail_fade(0.7, fm)
    paint = np.clip((dash + edge) * np.minimum(wear, 1.0), 0.0, 1.0)
    road = _mix(asph[:, None] * _rgb(1.0, 1.0, 1.04), _WHITE_PAINT, paint)
    g = value_noise(x / 3.0, y / 3.0, s + 17)
    grass = _mix(np.broadcast_to(_rgb(0.27, 0.37, 0.15), (len(x), 3)),
                 _rgb(0.42, 0.37, 0.27), g)
    grass *= (1.0 + 0.6 * fbm(x, y, s + 23, (0.8, 0.25, 0.07), fm))[:, None]
    w_road = filtered_box(ay, -1.0, scene.road_half_width, fy)
    return _mix(grass, road, w_road)


def _sidewalk(loc: A, fp: A, axis: A, color: A, seed: A) -> A:
    """Top: paving tiles with joints and per-tile brightness; sides: kerb stones."""
    n = len(loc)
    out = np.empty((n, 3), np.float32)
    top = axis == 2
    if top.any():
        x, y = loc[top, 0], loc[top, 1]
        fx, fy = fp[top, 0], fp[top, 1]
        fm = np.sqrt(fx * fy)
        tile = 0.45
        joint = 1.0 - ((1.0 - filtered_pulse_train(x, tile, 0.0, 0.03, fx))
                       * (1.0 - filtered_pulse_train(y, tile, 0.0, 0.03, fy)))
        tv = hash_unit(seed[top], cell_index(x, tile), cell_index(y, tile)) - 0.5
        bright = 1.0 + 0.3 * tv * detail_fade(tile, fm)
        bright *= 1.0 + 0.3 * fbm(x, y, seed[top], (2.0, 0.6, 0.15, 0.04), fm)
        out[top] = color[top] * (bright * (1.0 - 0.45 * joint))[:, None]
    side = ~top
    if side.any():
        h = np.where(axis[side] == 1, loc[side, 0], loc[side, 1])
        fh = np.where(axis[side] == 1, fp[side, 0], fp[side, 1])
        fm = np.maximum(fh, fp[side, 2])
        joint = filtered_pulse_train(h, 1.0, 0.0, 0.02, fh)
        b = 1.05 * (1.0 + 0.3 * fbm(h, loc[side, 2], seed[side] + 3, (0.5, 0.12, 0.03), fm))
        out[side] = _rgb(0.74, 0.74, 0.72) * (b * (1.0 - 0.5 * joint))[:, None]
    return out


def _facade(loc: A, fp: A, axis: A, half: A, color: A, seed: A, param: A) -> A:
    """Walls: plaster or brick, window grid with frames and glass (some lit), shop windows on
    the ground floor, floor bands, plinth; roof: gravel."""
    n = len(loc)
    out = np.empty((n, 3), np.float32)
    wall = axis != 2
    if (~wall).any():
        r = ~wall
        fm = np.maximum(fp[r, 0], fp[r, 1])
        v = 0.32 * (1.0 + 0.5 * fbm(loc[r, 0], loc[r, 1], seed[r] + 7, (1.0, 0.3, 0.08), fm))
        out[r] = v[:, None] * _rgb(1.0, 0.97, 0.95)
    if not wall.any():
        return out
    lw, fw, hw, cw, sw, pw = loc[wall], fp[wall], half[wall], color[wall], seed[wall], param[wall]
    ax = axis[wall]
    along = np.where(ax == 1, 0, 1)
    rows = np.arange(len(lw))
    h = lw[rows, along] + hw[rows, along]  # 0 at one end of the face
    fh = fw[rows, along]
    length = 2.0 * hw[rows, along]
    z = lw[:, 2] + hw[:, 2]  # height above the box bottom
    fz = fw[:, 2]
    height = 2.0 * hw[:, 2]
    fm = np.maximum(fh, fz)
    floor_h, win_sp, win_w, style = pw[:, 0], pw[:, 1], pw[:, 2], pw[:, 3]

    base = cw * (1.0 + 0.35 * fbm(h, z, sw, (2.5, 0.7, 0.2, 0.05), fm))[:, None]
    brick = style > 0.5
    if brick.any():
        bz, bh = z[brick], h[brick]
        course, blen = 0.16, 0.32
        row = cell_index(bz, course)
        hh = bh + 0.5 * blen * (row % 2)
        mortar = 1.0 - ((1.0 - filtered_pulse_train(bz, course, 0.0, 0.02, fz[brick]))
                        * (1.0 - filtered_pulse_train(hh, blen, 0.0, 0.02, fh[brick])))
        bv = 1.0 + 0.35 * (hash_unit(sw[brick], cell_index(hh, blen), row) - 0.5) \
            * detail_fade(course, fm[brick])
        col = cw[brick] * bv[:, None]
        base[brick] = _mix(col, _rgb(0.72, 0.70, 0.66), mortar)

    bays = np.maximum(np.floor((length - 1.0) / win_sp), 1.0)
    h_off = 0.5 * (length - bays * win_sp)
    hx = h - h_off
    in_row = filtered_box(h, h_off, length - h_off, fh)
    win_h = np.clip(floor_h - 1.4, 0.9, 1.7)
    upper = filtered_box(z, floor_h, height - 0.9, fz)
    lo, hi = 0.5 * (win_sp - win_w), 0.5 * (win_sp + win_w)
    hwin = filtered_pulse_train(hx, win_sp, lo, hi, fh) * in_row
    vwin = filtered_pulse_train(z, floor_h, 0.9, 0.9 + win_h, fz) * upper
    win = hwin * vwin
    hfr = filtered_pulse_train(hx, win_sp, np.maximum(lo - 0.12, 0.0),
                               np.minimum(hi + 0.12, win_sp), fh) * in_row
    vfr = filtered_pulse_train(z, floor_h, 0.75, 1.05 + win_h, fz) * upper
    frame = np.clip(hfr * vfr - win, 0.0, 1.0)
    shop = (filtered_pulse_train(hx, 2.0 * win_sp, 0.35, 2.0 * win_sp - 0.35, fh) * in_row
            * filtered_box(z, 0.55, floor_h - 0.6, fz))
    band = (filtered_pulse_train(z, floor_h, 0.0, 0.2, fz) * filtered_box(z, 0.5 * floor_h,
                                                                        height, fz)
            + filtered_box(z, height - 0.45, height + 1.0, fz))
    plinth = filtered_box(z, -1.0, 0.45, fz)

    col = base * (1.0 - 0.2 * np.clip(band, 0.0, 1.0))[:, None]
    col = _mix(col, _rgb(0.42, 0.41, 0.40), plinth)
    cell = hash_unit(sw, cell_index(hx, win_sp), cell_index(z, floor_h))
    lit = (cell > 0.7) * detail_fade(win_sp, fm)
    refl = (z % floor_h) / floor_h
    glass = (_GLASS[None] * (1.0 + 0.8 * refl * detail_fade(floor_h, fm))[:, None]
             + lit[:, None] * _rgb(0.40, 0.34, 0.22))
    frame_col = np.where(brick[:, None], _rgb(0.90, 0.90, 0.88)[None],
                         _rgb(0.30, 0.30, 0.32)[None])
    col = _mix(col, frame_col, frame)
    col = _mix(col, glass, np.clip(win + shop, 0.0, 1.0))
    out[wall] = col
    return out


def _car_body(loc: A, fp: A, axis: A, half: A, color: A, seed: A, param: A) -> A:
    """Paint with a vertical gradient; sides: wheels, rocker, door seams; ends: lamps and a
    number plate."""
    n = len(loc)
    out = color * (1.0 + 0.15 * fbm(loc[:, 0], loc[:, 1] + loc[:, 2], seed, (0.6, 0.15),
                                    fp.max(1)))[:, None]
    hz = half[:, 2]
    shade_z = 0.88 + 0.24 * (loc[:, 2] + hz) / (2.0 * hz)
    out *= shade_z[:, None]
    side = axis == 1
    if side.any():
        x, zl = loc[side, 0], loc[side, 2]
        hx, hzs = half[side, 0], hz[side]
        r, clear = param[side, 0], param[side, 2]
        zg = zl + hzs + clear  # height above the ground
        fm = np.maximum(fp[side, 0], fp[side, 2]) + 1e-4
        col = out[side]
        rocker = filtered_box(zl, -hzs - 1.0, -hzs + 0.1, fp[side, 2])
        col = _mix(col, _rgb(0.10, 0.10, 0.11), rocker)
        seam = (filtered_box(x, 0.12, 0.14, fp[side, 0]) + filtered_box(x, -0.95, -0.93,
                                                                         fp[side, 0]))
        col = _mix(col, _rgb(0.05, 0.05, 0.05), np.clip(seam, 0.0, 1.0) * 0.8)
        for sgn in (-1.0, 1.0):
            d = np.hypot(x - sgn * (hx - 0.8), zg - r)
            tyre = np.clip((r - d) / fm + 0.5, 0.0, 1.0)
            rim = np.clip((0.55 * r - d) / fm + 0.5, 0.0, 1.0)
            col = _mix(col, _rgb(0.05, 0.05, 0.05), tyre)
            col = _mix(col, _rgb(0.65, 0.66, 0.68), rim)
        out[side] = col
    end = axis == 0
    if end.any():
        y, zl = loc[end, 1], loc[end, 2]
        hy, hzs = half[end, 1], hz[end]
        fy, fz = fp[end, 1], fp[end, 2]
        front = loc[end, 0] > 0
        lamp_c = np.where(front[:, None], _rgb(0.92, 0.92, 0.85)[None],
                          _rgb(0.75, 0.08, 0.06)[None])
        lamp_v = filtered_box(zl, hzs - 0.25, hzs - 0.07, fz)
        lamp = lamp_v * (filtered_box(y, -hy + 0.08, -hy + 0.4, fy)
                         + filtered_box(y, hy - 0.4, hy - 0.08, fy))
        plate = filtered_box(y, -0.26, 0.26, fy) * filtered_box(zl, -hzs + 0.12, -hzs + 0.24, fz)
        col = _mix(out[end], lamp_c, np.clip(lamp, 0.0, 1.0))
        col = _mix(col, _rgb(0.9, 0.9, 0.86), plate)
        out[end] = col
    return out


def _car_cabin(loc: A, fp: A, axis: A, half: A, color: A, seed: A) -> A:
    """Glass between pillars on the sides and ends, painted roof."""
    out = color.copy()
    side = axis != 2
    if side.any():
        a = np.where(axis[side] == 1, 0, 1)
        rows = np.arange(int(side.sum()))
        h = loc[side][rows, a]
        fh = fp[side][rows, a]
        hh = half[side][rows, a]
        zl, hz, fz = loc[side, 2], half[side, 2], fp[side, 2]
        vert = filtered_box(zl, -hz + 0.06, hz - 0.05, fz)
        is_side = axis[side] == 1
        glass_side = (filtered_box(h, -hh + 0.12, -0.06, fh) + filtered_box(h, 0.06, hh - 0.12, fh))
        glass_end = filtered_box(h, -hh + 0.1, hh - 0.1, fh)
        cov = vert * np.where(is_side, glass_side, glass_end)
        refl = 1.0 + 1.2 * (zl + hz) / (2.0 * hz)
        glass = _GLASS[None] * refl[:, None]
        out[side] = _mix(color[side], glass, np.clip(cov, 0.0, 1.0))
    return out


def _sign(loc: A, fp: A, axis: A, half: A, color: A) -> A:
    """Traffic sign: white border and bar on a coloured plate (both x faces)."""
    out = np.broadcast_to(_rgb(0.5, 0.5, 0.52), (len(loc), 3)).copy()
    face = axis == 0
    if face.any():
        y, z = loc[face, 1], loc[face, 2]
        hy, hz = half[face, 1], half[face, 2]
        fy, fz = fp[face, 1], fp[face, 2]
        inner = filtered_box(y, -hy + 0.05, hy - 0.05, fy) * filtered_box(z, -hz + 0.05,
                                                                          hz - 0.05, fz)
        bar = filtered_box(y, -0.6 * hy, 0.6 * hy, fy) * filtered_box(z, -0.07, 0.07, fz)
        white = _rgb(0.95, 0.95, 0.95)
        col = _mix(color[face], white, bar)
        out[face] = _mix(np.broadcast_to(white, col.shape), col, inner)
    return out


def _trunk(loc: A, fp: A, axis: A, color: A, seed: A) -> A:
    """Bark: vertically stretched noise."""
    h = np.where(axis == 1, loc[:, 0], loc[:, 1])
    fm = np.maximum(np.where(axis == 1, fp[:, 0], fp[:, 1]), fp[:, 2])
    v = 1.0 + 0.6 * fbm(h / 0.25, loc[:, 2], seed, (1.0, 0.3, 0.1), fm / 0.25)
    return color * v[:, None]


def _crown(loc: A, fp: A, color: A, seed: A) -> A:
    """Leaves: tri-planar noise, darker underneath."""
    fm = fp.max(1)
    x, y, z = loc[:, 0], loc[:, 1], loc[:, 2]
    wl = (0.9, 0.3, 0.1, 0.035)
    leaf = (fbm(x, y, seed, wl, fm) + fbm(y, z, seed + 1, wl, fm)
            + fbm(x, z, seed + 2, wl, fm)) / 3.0
    r = np.linalg.norm(loc, axis=1)
    up = 0.7 + 0.3 * (z / np.maximum(r, 1e-6) + 1.0) / 2.0
    return color * ((1.0 + 2.2 * leaf) * up)[:, None]


def surface_albedo(hits: Hits, footprint: np.ndarray, scene: StreetScene) -> np.ndarray:
    """(N, 3) albedo in [0, 1] of every hit (0 for misses); patterns are evaluated in float32
    (texture coordinates of a street are well within its precision).

    Args:
        hits: nearest hits of N rays.
        footprint: (N, 3) metres per pixel along the primitive's local x, y, z axes.
        scene: the scene (ground texture seed, road width).
    """
    n = len(hits.t)
    out = np.zeros((n, 3))
    m = hits.material
    order = np.argsort(m, kind='stable')
    codes, starts = np.unique(m[order], return_index=True)
    ends = np.append(starts[1:], n)
    for code, a, b in zip(codes, starts, ends):
        sel = order[a:b]
        f32 = np.float32
        loc, fp, ax = hits.local[sel].astype(f32), footprint[sel].astype(f32), hits.axis[sel]
        half, col = hits.half[sel].astype(f32), hits.color[sel].astype(f32)
        sd, par = hits.seed[sel], hits.param[sel].astype(f32)
        if code == Material.GROUND:
            out[sel] = _ground(loc, fp, scene)
        elif code == Material.SIDEWALK:
            out[sel] = _sidewalk(loc, fp, ax, col, sd)
        elif code == Material.FACADE:
            out[sel] = _facade(loc, fp, ax, half, col, sd, par)
        elif code == Material.CAR_BODY:
            out[sel] = _car_body(loc, fp, ax, half, col, sd, par)
        elif code == Material.CAR_CABIN:
            out[sel] = _car_cabin(loc, fp, ax, half, col, sd)
        elif code == Material.POLE:
            out[sel] = col * (1.0 + 0.3 * fbm(loc[:, 2], loc[:, 0] + loc[:, 1], sd,
                                              (0.8, 0.2), fp.max(1)))[:, None]
        elif code == Material.SIGN:
            out[sel] = _sign(loc, fp, ax, half, col)
        elif code == Material.TRUNK:
            out[sel] = _trunk(loc, fp, ax, col, sd)
        elif code == Material.CROWN:
            out[sel] = _crown(loc, fp, col, sd)
    return np.clip(out, 0.0, 1.0)


def sky_color(dirs: np.ndarray, seed: int, pixel_angle: float) -> np.ndarray:
    """(N, 3) sky radiance for ray directions (N, 3) (any length): horizon-to-zenith gradient
    plus clouds that depend on direction only (at infinity, as the real sky)."""
    d = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    dz = d[:, 2]
    tz = np.clip(dz * 2.5, 0.0, 1.0) ** 0.7
    col = _mix(np.broadcast_to(_rgb(0.80, 0.86, 0.93), d.shape),
               _rgb(0.36, 0.56, 0.86), tz)
    k = 1.0 / (np.maximum(dz, 0.0) + 0.12)
    cx, cy = 6.0 * d[:, 0] * k, 6.0 * d[:, 1] * k
    fp = 6.0 * pixel_angle * k * k
    cloud = smoothstep(0.02, 0.22, fbm(cx, cy, seed + 99, (3.0, 1.2, 0.4, 0.13), fp) + 0.05)
    return _mix(col, _rgb(0.95, 0.95, 0.96), cloud * (dz > -0.05))


def shade(albedo: np.ndarray, normal: np.ndarray, sun: np.ndarray,
          lit: np.ndarray) -> np.ndarray:
    """Lambertian shading (view independent): ``albedo * (ambient + sun)``.

    Args:
        albedo: (N, 3); normal: (N, 3) unit; sun: (3,) unit towards the sun;
        lit: (N,) 1 where the sun is visible from the point, 0 in shadow.
    """
    ambient = 0.36 + 0.14 * normal[:, 2]
    direct = 0.7 * np.clip(normal @ sun, 0.0, None) * lit
    return albedo * (ambient + direct)[:, None]


_REFLECTANCE = {Material.GROUND: 0.18, Material.SIDEWALK: 0.30, Material.FACADE: 0.28,
                Material.CAR_BODY: 0.45, Material.CAR_CABIN: 0.12, Material.POLE: 0.35,
                Material.SIGN: 0.95, Material.TRUNK: 0.15, Material.CROWN: 0.10}


def lidar_reflectance(hits: Hits, dirs: np.ndarray) -> np.ndarray:
    """(N,) reflectance in [0, 1]: a value per material (retro-reflective signs brightest,
    glass and leaves darkest) with a cosine fall-off with the incidence angle and a small
    deterministic per-point texture (hash of the hit position on a 5 cm grid)."""
    base = np.zeros(len(hits.t))
    for code, r in _REFLECTANCE.items():
        base[hits.material == code] = r
    d = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    cos = np.abs((hits.normal * d).sum(1))
    grain = hash_unit(hits.seed, cell_index(hits.pos[:, 0], 0.05), cell_index(hits.pos[:, 1], 0.05),
                      cell_index(hits.pos[:, 2], 0.05))
    r = base * (0.4 + 0.6 * cos) * (0.85 + 0.3 * grain)
    return np.clip(r, 0.0, 1.0)
