"""Procedural street scene: the geometry the renderer and the lidar ray-cast.

Road frame: ``x`` along the road (the ego drives towards +x), ``y`` to the left, ``z`` up,
ground at ``z = 0``. The road occupies ``|y| < road_half_width``; raised sidewalks (kerb face
towards the road) run beside it; building facades stand behind them at varying set-backs;
parked cars, poles with signs and trees line the street; a building across the road closes
each end, so every ray below the roof line hits something at a finite depth.

Geometry is a set of yaw-rotated boxes plus spheres (tree crowns) over the infinite ground
plane; textures live in each primitive's local frame, so they stay glued to moving objects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ['Material', 'BoxSet', 'SphereSet', 'MovingCar', 'StreetScene', 'make_street_scene',
           'car_boxes']


class Material:
    """Material codes (``BoxSet.material`` / ``SphereSet.material``; the ground plane is
    ``GROUND``). ``SKY`` marks rays that hit nothing."""
    SKY = -1
    GROUND = 0
    SIDEWALK = 1
    FACADE = 2
    CAR_BODY = 3
    CAR_CABIN = 4
    POLE = 5
    SIGN = 6
    TRUNK = 7
    CROWN = 8


@dataclass
class BoxSet:
    """B yaw-rotated boxes.

    Attributes:
        center: (B, 3) box centres (road frame, metres).
        half: (B, 3) half extents along the box's local x, y, z.
        yaw: (B,) rotation about +z (radians), local -> road.
        material: (B,) int ``Material`` codes.
        color: (B, 3) float base albedo in [0, 1].
        seed: (B,) int64 texture seed.
        param: (B, 4) float material parameters (facade: floor height, window spacing,
            window width, style; car: wheel radius, body length; others unused).
        dynamic: (B,) bool, part of an independently moving object.
    """
    center: np.ndarray
    half: np.ndarray
    yaw: np.ndarray
    material: np.ndarray
    color: np.ndarray
    seed: np.ndarray
    param: np.ndarray
    dynamic: np.ndarray

    def __len__(self) -> int:
        return len(self.center)

    @staticmethod
    def empty() -> 'BoxSet':
        return BoxSet(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, np.int64),
                      np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros((0, 4)),
                      np.zeros(0, bool))

    @staticmethod
    def concat(sets: list['BoxSet']) -> 'BoxSet':
        if not sets:
            return BoxSet.empty()
        return BoxSet(*(np.concatenate([getattr(s, f) for s in sets])
                        for f in ('center', 'half', 'yaw', 'material', 'color', 'seed', 'param',
                                  'dynamic')))

    def bounding_radius(self) -> np.ndarray:
        """(B,) radius of each box's bounding sphere (centred on ``center``)."""
        return np.linalg.norm(self.half, axis=1)


@dataclass
class SphereSet:
    """S spheres: ``center`` (S, 3), ``radius`` (S,), ``material`` (S,), ``color`` (S, 3),
    ``seed`` (S,)."""
    center: np.ndarray
    radius: np.ndarray
    material: np.ndarray
    color: np.ndarray
    seed: np.ndarray

    def __len__(self) -> int:
        return len(self.center)


@dataclass
class MovingCar:
    """A car driving along the road at constant speed: at time ``t`` its centre is
    ``(x0 + speed * cos(yaw) * t, y, 0)``; ``boxes`` are in the car's own frame."""
    x0: float
    y: float
    speed: float
    yaw: float
    boxes: BoxSet

    def at(self, t: float) -> BoxSet:
        """The car's boxes in the road frame at time ``t`` (seconds), flagged dynamic."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        origin = np.array([self.x0 + self.speed * c * t, self.y + self.speed * s * t, 0.0])
        b = self.boxes
        return BoxSet(b.center @ rot.T + origin, b.half.copy(), b.yaw + self.yaw,
                      b.material.copy(), b.color.copy(), b.seed.copy(), b.param.copy(),
                      np.ones(len(b), bool))


@dataclass
class StreetScene:
    """One street. ``boxes``/``spheres`` are static; ``movers`` move with time.

    Attributes:
        road_half_width: metres from the road centre line to the kerb.
        sidewalk_width, sidewalk_height: metres.
        sun: (3,) unit vector towards the sun (road frame).
        seed: texture seed of the ground.
    """
    boxes: BoxSet
    spheres: SphereSet
    movers: list[MovingCar] = field(default_factory=list)
    road_half_width: float = 5.0
    sidewalk_width: float = 3.0
    sidewalk_height: float = 0.15
    sun: np.ndarray = field(default_factory=lambda: np.array([0.35, -0.55, 0.76]))
    seed: int = 0

    def boxes_at(self, t: float) -> BoxSet:
        """Static boxes followed by the moving cars' boxes at time ``t`` (seconds)."""
        return BoxSet.concat([self.boxes] + [m.at(t) for m in self.movers])


_FACADE_COLORS = np.array([[0.86, 0.78, 0.64], [0.74, 0.74, 0.72], [0.90, 0.83, 0.58],
                           [0.84, 0.60, 0.50], [0.88, 0.88, 0.85], [0.60, 0.66, 0.72],
                           [0.62, 0.32, 0.24], [0.55, 0.27, 0.20]])
_BRICK_FROM = 6  # facade colours from this index get a brick texture
_CAR_COLORS = np.array([[0.72, 0.08, 0.06], [0.10, 0.20, 0.56], [0.70, 0.72, 0.74],
                        [0.08, 0.08, 0.09], [0.90, 0.90, 0.90], [0.10, 0.32, 0.16],
                        [0.86, 0.70, 0.10], [0.45, 0.47, 0.50]])
_SIGN_COLORS = np.array([[0.85, 0.10, 0.08], [0.08, 0.25, 0.70], [0.95, 0.80, 0.10],
                         [0.92, 0.92, 0.92]])


def _box(center, half, yaw, material, color, seed, param=(0.0, 0.0, 0.0, 0.0)) -> BoxSet:
    return BoxSet(np.asarray([center], np.float64), np.asarray([half], np.float64),
                  np.asarray([yaw], np.float64), np.asarray([material], np.int64),
                  np.asarray([color], np.float64), np.asarray([seed], np.int64),
                  np.asarray([param], np.float64), np.zeros(1, bool))


def car_boxes(rng: np.random.Generator, color: np.ndarray, seed: int) -> BoxSet:
    """A car in its own frame (x forward, centre of the footprint at the origin, on z = 0):
    a body box (with wheels painted on its sides) and a cabin box with windows on top."""
    length = rng.uniform(3.9, 4.8)
    width = rng.uniform(1.7, 1.9)
    body_h = rng.uniform(0.65, 0.8)
    clearance = 0.18
    cab_len = length * rng.uniform(0.45, 0.55)
    cab_h = rng.uniform(0.45, 0.6)
    cab_off = rng.uniform(-0.35, -0.1)
    wheel_r = 0.32
    body = _box((0.0, 0.0, clearance + body_h / 2), (length / 2, width / 2, body_h / 2), 0.0,
                Material.CAR_BODY, color, seed, (wheel_r, length, clearance, 0.0))
    cabin = _box((cab_off, 0.0, clearance + body_h + cab_h / 2),
                 (cab_len / 2, width / 2 - 0.08, cab_h / 2), 0.0, Material.CAR_CABIN, color,
                 seed + 1, (0.0, cab_len, 0.0, 0.0))
    return BoxSet.concat([body, cabin])


def _place(boxes: BoxSet, x: float, y: float, yaw: float) -> BoxSet:
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return BoxSet(boxes.center @ rot.T + np.array([x, y, 0.0]), boxes.half, boxes.yaw + yaw,
                  boxes.material, boxes.color, boxes.seed, boxes.param, boxes.dynamic)


def make_street_scene(seed: int | list[int], x_range: tuple[float, float],
                      ego_lane_y: float = -1.5, ego_speed: float = 10.0,
                      moving_objects: int = 0) -> StreetScene:
    """Generate a street covering the ego's drive.

    Args:
        seed: RNG seed (int or sequence of ints, as ``np.random.default_rng`` takes).
        x_range: (x_start, x_end) of the ego trajectory (road frame, metres); the street
            extends 40 m beyond both ends and is closed there by a building across the road.
        ego_lane_y: lateral position of the ego lane (moving cars in the ego lane use it).
        ego_speed: mean ego speed (m/s); a car in the ego lane drives at a similar speed.
        moving_objects: number of independently moving cars (0 = a static world). Even
            indices drive ahead of the ego in its lane at about its speed (the case that
            breaks static-scene self-supervision), odd ones come towards it in the other lane.

    Returns:
        The scene (static boxes and spheres, plus ``moving_objects`` movers).
    """
    if x_range[1] < x_range[0]:
        raise ValueError(f'make_street_scene: x_range must be (start, end) with start <= end, '
                         f'got {x_range}')
    if moving_objects < 0:
        raise ValueError(f'make_street_scene: moving_objects must be >= 0, got {moving_objects}')
    rng = np.random.default_rng(seed)
    road_half = float(rng.uniform(4.6, 5.4))
    sw_w = float(rng.uniform(2.5, 3.5))
    sw_h = 0.15
    x0, x1 = x_range[0] - 40.0, x_range[1] + 40.0
    parts: list[BoxSet] = []
    crowns: list[tuple[np.ndarray, float, np.ndarray, int]] = []
    sid = [int(rng.integers(1, 2**31 - 1))]

    def next_seed() -> int:
        sid[0] += 7919
        return sid[0]

    for side in (-1.0, 1.0):
        # sidewalk in 20 m segments (smaller bounding spheres for the ray culling)
        xs = np.arange(x0 - 10.0, x1 + 10.0, 20.0)
        for xa in xs:
            parts.append(_box((xa + 10.0, side * (road_half + sw_w / 2), sw_h / 2),
                              (10.0, sw_w / 2, sw_h / 2), 0.0, Material.SIDEWALK,
                              (0.70, 0.69, 0.66), next_seed()))
        # buildings
        x = x0 - 10.0
        while x < x1 + 10.0:
            length = float(rng.uniform(8.0, 22.0))
            depth = float(rng.uniform(8.0, 12.0))
            height = float(rng.uniform(6.0, 22.0))
            setback = float(rng.uniform(0.0, 4.0))
            ci = int(rng.integers(len(_FACADE_COLORS)))
            color = np.clip(_FACADE_COLORS[ci] * rng.uniform(0.9, 1.08), 0, 1)
            floor_h = float(rng.uniform(2.8, 3.6))
            win_sp = float(rng.uniform(1.6, 3.0))
            win_w = float(rng.uniform(0.45, 0.7)) * win_sp
            style = 1.0 if ci >= _BRICK_FROM else 0.0
            facade_y = road_half + sw_w + setback
            parts.append(_box((x + length / 2, side * (facade_y + depth / 2), height / 2),
                              (length / 2, depth / 2, height / 2), 0.0, Material.FACADE, color,
                              next_seed(), (floor_h, win_sp, win_w, style)))
            x += length + (float(rng.uniform(1.5, 5.0)) if rng.random() < 0.35 else 0.0)
        # parked cars
        x = x0 + float(rng.uniform(0.0, 6.0))
        while x < x1:
            if rng.random() < 0.55:
                color = _CAR_COLORS[int(rng.integers(len(_CAR_COLORS)))]
                car = car_boxes(rng, color, next_seed())
                yaw = (0.0 if side < 0 else math.pi) + float(rng.normal(0.0, 0.03))
                parts.append(_place(car, x, side * (road_half - 1.05), yaw))
                x += float(car.param[0, 1]) + float(rng.uniform(0.8, 3.0))
            else:
                x += float(rng.uniform(4.0, 9.0))
        # poles (street lamps / sign posts)
        pole_x = []
        x = x0 + float(rng.uniform(0.0, 10.0))
        while x < x1:
            h = float(rng.uniform(3.5, 7.0))
            y = side * (road_half + 0.4)
            parts.append(_box((x, y, h / 2), (0.07, 0.07, h / 2), 0.0, Material.POLE,
                              (0.45, 0.46, 0.48), next_seed()))
            if rng.random() < 0.6:
                sc = _SIGN_COLORS[int(rng.integers(len(_SIGN_COLORS)))]
                sz = float(rng.uniform(0.25, 0.4))
                parts.append(_box((x, y, min(h, 3.2) - sz), (0.03, sz, sz), 0.0,
                                  Material.SIGN, sc, next_seed()))
            pole_x.append(x)
            x += float(rng.uniform(12.0, 22.0))
        # trees: trunk box + crown sphere, kept away from poles
        x = x0 + float(rng.uniform(0.0, 8.0))
        while x < x1:
            if min((abs(x - p) for p in pole_x), default=9.0) > 2.0 and rng.random() < 0.7:
                y = side * (road_half + sw_w - 0.9)
                th = float(rng.uniform(2.2, 3.2))
                r = float(rng.uniform(1.3, 2.2))
                parts.append(_box((x, y, th / 2), (0.15, 0.15, th / 2), 0.0, Material.TRUNK,
                                  (0.36, 0.26, 0.18), next_seed()))
                green = np.array([0.22, 0.42, 0.16]) * rng.uniform(0.8, 1.2)
                crowns.append((np.array([x, y, th + r * 0.8]), r, green, next_seed()))
            x += float(rng.uniform(8.0, 18.0))
    # buildings across the road closing both ends
    span = road_half + sw_w + 14.0
    for xe, sgn in ((x1 + 8.0, 1.0), (x0 - 8.0, -1.0)):
        ci = int(rng.integers(len(_FACADE_COLORS)))
        win_sp = float(rng.uniform(1.6, 3.0))
        parts.append(_box((xe + sgn * 5.0, 0.0, 9.0), (5.0, span, 9.0), 0.0, Material.FACADE,
                          _FACADE_COLORS[ci], next_seed(),
                          (float(rng.uniform(2.8, 3.6)), win_sp, 0.55 * win_sp,
                           1.0 if ci >= _BRICK_FROM else 0.0)))
    movers = []
    for k in range(moving_objects):
        color = _CAR_COLORS[int(rng.integers(len(_CAR_COLORS)))]
        boxes = car_boxes(rng, color, next_seed())
        if k % 2 == 0:  # ahead in the ego lane, nearly co-moving
            speed = ego_speed + float(rng.uniform(-0.3, 1.2))
            gap = 9.0 + 9.0 * (k // 2) + float(rng.uniform(0.0, 4.0))
            movers.append(MovingCar(x_range[0] + gap, ego_lane_y, speed, 0.0, boxes))
        else:  # oncoming in the other lane, met around the middle of the drive
            speed = float(rng.uniform(7.0, 12.0))
            meet = x_range[0] + (x_range[1] - x_range[0]) * float(rng.uniform(0.4, 0.8))
            t_meet = (meet - x_range[0]) / max(ego_speed, 1e-3)
            movers.append(MovingCar(meet + speed * t_meet, -ego_lane_y, speed, math.pi, boxes))
    if crowns:
        spheres = SphereSet(np.stack([c[0] for c in crowns]), np.array([c[1] for c in crowns]),
                            np.full(len(crowns), Material.CROWN, np.int64),
                            np.stack([c[2] for c in crowns]),
                            np.array([c[3] for c in crowns], np.int64))
    else:
        spheres = SphereSet(np.zeros((0, 3)), np.zeros(0), np.zeros(0, np.int64),
                            np.zeros((0, 3)), np.zeros(0, np.int64))
    sun = np.array([rng.uniform(-0.5, 0.5), rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 0.7),
                    rng.uniform(0.6, 0.9)])
    return StreetScene(BoxSet.concat(parts), spheres, movers, road_half, sw_w, sw_h,
                       sun / np.linalg.norm(sun), int(rng.integers(1, 2**31 - 1)))
