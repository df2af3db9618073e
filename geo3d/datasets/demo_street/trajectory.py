"""Ego trajectory: smooth forward motion along the road with gentle weaving (small yaw
changes), a slowly varying speed and a little body pitch / roll.

Road frame as in :mod:`.scene`. The pose is that of the IMU (KITTI's GPS/IMU frame: x forward,
y left, z up); ``R = Rz(yaw) Ry(pitch) Rx(roll)`` as in the OXTS convention (pykitti's
``pose_from_oxts_packet``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ['StreetTrajectory', 'rotation_rpy', 'random_trajectory']


def rotation_rpy(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(..., 3, 3) ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    r = np.empty(np.shape(roll) + (3, 3))
    r[..., 0, 0] = cy * cp
    r[..., 0, 1] = cy * sp * sr - sy * cr
    r[..., 0, 2] = cy * sp * cr + sy * sr
    r[..., 1, 0] = sy * cp
    r[..., 1, 1] = sy * sp * sr + cy * cr
    r[..., 1, 2] = sy * sp * cr - cy * sr
    r[..., 2, 0] = -sp
    r[..., 2, 1] = cp * sr
    r[..., 2, 2] = cp * cr
    return r


@dataclass(frozen=True)
class StreetTrajectory:
    """IMU pose as a smooth function of time ``t`` (seconds).

    ``x(t) = x0 + speed t + speed_amp P / (2 pi) (1 - cos(2 pi t / P))`` (so the speed is
    ``speed + speed_amp sin(2 pi t / P)``), ``y = lane_y + weave_amp sin(2 pi x / weave_length
    + weave_phase)``, ``z = height``; yaw follows the path's tangent, pitch and roll are small
    sinusoids (suspension).
    """
    speed: float = 10.0
    speed_amp: float = 0.6
    speed_period: float = 7.0
    lane_y: float = -1.5
    weave_amp: float = 0.3
    weave_length: float = 45.0
    weave_phase: float = 0.0
    height: float = 0.93
    pitch_amp: float = 0.004
    roll_amp: float = 0.003
    sway_phase: float = 0.0
    x0: float = 0.0

    def x(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, np.float64)
        w = 2.0 * math.pi / self.speed_period
        return self.x0 + self.speed * t + self.speed_amp / w * (1.0 - np.cos(w * t))

    def position(self, t: np.ndarray) -> np.ndarray:
        """(..., 3) IMU position in the road frame."""
        x = self.x(t)
        y = self.lane_y + self.weave_amp * np.sin(2.0 * math.pi * x / self.weave_length
                                                  + self.weave_phase)
        return np.stack([x, y, np.full_like(x, self.height)], -1)

    def rpy(self, t: np.ndarray) -> np.ndarray:
        """(..., 3) roll, pitch, yaw (radians) in the road frame."""
        t = np.asarray(t, np.float64)
        x = self.x(t)
        k = 2.0 * math.pi / self.weave_length
        yaw = np.arctan(self.weave_amp * k * np.cos(k * x + self.weave_phase))
        roll = self.roll_amp * np.sin(2.0 * math.pi * t / 3.1 + self.sway_phase)
        pitch = self.pitch_amp * np.sin(2.0 * math.pi * t / 2.3 + 1.7 * self.sway_phase)
        return np.stack([roll, pitch, yaw], -1)

    def pose(self, t: np.ndarray | float) -> np.ndarray:
        """(..., 4, 4) ``T_road_imu`` (IMU -> road frame) at time(s) ``t``."""
        p = self.position(t)
        a = self.rpy(t)
        m = np.zeros(p.shape[:-1] + (4, 4))
        m[..., :3, :3] = rotation_rpy(a[..., 0], a[..., 1], a[..., 2])
        m[..., :3, 3] = p
        m[..., 3, 3] = 1.0
        return m


def random_trajectory(rng: np.random.Generator, imu_height: float) -> StreetTrajectory:
    """A trajectory with per-drive random speed (8.5-11.5 m/s, i.e. about 1 m per frame at
    10 Hz), weaving (0.15-0.45 m over 35-70 m, at most about 4 degrees of yaw) and phases."""
    return StreetTrajectory(speed=float(rng.uniform(8.5, 11.5)),
                            speed_amp=float(rng.uniform(0.2, 0.9)),
                            speed_period=float(rng.uniform(5.0, 9.0)),
                            lane_y=-1.5,
                            weave_amp=float(rng.uniform(0.15, 0.45)),
                            weave_length=float(rng.uniform(35.0, 70.0)),
                            weave_phase=float(rng.uniform(0.0, 2.0 * math.pi)),
                            height=imu_height,
                            sway_phase=float(rng.uniform(0.0, 2.0 * math.pi)))
