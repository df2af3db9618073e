"""OXTS GPS/IMU packets (KITTI raw ``oxts/data/%010d.txt``) for a trajectory.

The world frame is East-North-Up; the road frame is rotated by ``heading`` about up. Latitude /
longitude invert pykitti's Mercator projection exactly (``scale = cos(lat of the first
packet)``, ``tx = scale * lon * pi * R / 180``, ``ty = scale * R * log(tan((90 + lat) pi /
360))``, ``R = 6378137``), with the first packet at ``(lat0, lon0, alt0)``, so the poses pykitti
computes from the files are the trajectory's poses relative to the first frame, rotated by
``heading``. Velocities, accelerations (specific force, gravity included as an accelerometer
measures it) and angular rates come from central differences of the analytic trajectory.
"""
from __future__ import annotations

import math

import numpy as np

from .trajectory import StreetTrajectory, rotation_rpy

__all__ = ['OXTS_FIELDS', 'OXTS_DATAFORMAT', 'EARTH_RADIUS', 'oxts_packets', 'format_oxts',
           'latlon_from_enu']

EARTH_RADIUS = 6378137.0
GRAVITY = 9.80665

OXTS_FIELDS = ('lat', 'lon', 'alt', 'roll', 'pitch', 'yaw', 'vn', 've', 'vf', 'vl', 'vu', 'ax',
               'ay', 'az', 'af', 'al', 'au', 'wx', 'wy', 'wz', 'wf', 'wl', 'wu', 'pos_accuracy',
               'vel_accuracy', 'navstat', 'numsats', 'posmode', 'velmode', 'orimode')

OXTS_DATAFORMAT = """lat:   latitude of the oxts-unit (deg)
lon:   longitude of the oxts-unit (deg)
alt:   altitude of the oxts-unit (m)
roll:  roll angle (rad),    0 = level, positive = left side up,      range: -pi   .. +pi
pitch: pitch angle (rad),   0 = level, positive = front down,        range: -pi/2 .. +pi/2
yaw:   heading (rad),       0 = east,  positive = counter clockwise, range: -pi   .. +pi
vn:    velocity towards north (m/s)
ve:    velocity towards east (m/s)
vf:    forward velocity, i.e. parallel to earth-surface (m/s)
vl:    leftward velocity, i.e. parallel to earth-surface (m/s)
vu:    upward velocity, i.e. perpendicular to earth-surface (m/s)
ax:    acceleration in x, i.e. in direction of vehicle front (m/s^2)
ay:    acceleration in y, i.e. in direction of vehicle left (m/s^2)
az:    acceleration in z, i.e. in direction of vehicle top (m/s^2)
af:    forward acceleration (m/s^2)
al:    leftward acceleration (m/s^2)
au:    upward acceleration (m/s^2)
wx:    angular rate around x (rad/s)
wy:    angular rate around y (rad/s)
wz:    angular rate around z (rad/s)
wf:    angular rate around forward axis (rad/s)
wl:    angular rate around leftward axis (rad/s)
wu:    angular rate around upward axis (rad/s)
pos_accuracy:  velocity accuracy (north/east in m)
vel_accuracy:  velocity accuracy (north/east in m/s)
navstat:       navigation status (see navstat_to_string)
numsats:       number of satellites tracked by primary GPS receiver
posmode:       position mode of primary GPS receiver (see gps_mode_to_string)
velmode:       velocity mode of primary GPS receiver (see gps_mode_to_string)
orimode:       orientation mode of primary GPS receiver (see gps_mode_to_string)
"""


def latlon_from_enu(east: np.ndarray, north: np.ndarray, lat0: float, lon0: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Latitude / longitude (degrees) of ENU offsets (metres) from ``(lat0, lon0)`` under
    pykitti's Mercator projection with ``scale = cos(lat0)``."""
    scale = math.cos(math.radians(lat0))
    lon = lon0 + np.asarray(east) * 180.0 / (scale * math.pi * EARTH_RADIUS)
    ty0 = scale * EARTH_RADIUS * math.log(math.tan((90.0 + lat0) * math.pi / 360.0))
    lat = np.degrees(2.0 * np.arctan(np.exp((ty0 + np.asarray(north))
                                            / (scale * EARTH_RADIUS)))) - 90.0
    return lat, lon


def _rot_z(a: np.ndarray) -> np.ndarray:
    return rotation_rpy(np.zeros_like(a), np.zeros_like(a), a)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def oxts_packets(traj: StreetTrajectory, times: np.ndarray, heading: float, lat0: float,
                 lon0: float, alt0: float) -> np.ndarray:
    """(T, 30) OXTS values at ``times`` (seconds), columns in :data:`OXTS_FIELDS` order.

    Args:
        traj: the ego (IMU) trajectory in the road frame.
        times: (T,) sample times; the first one is placed at ``(lat0, lon0, alt0)``.
        heading: rotation of the road frame about up in the ENU world (yaw of the road's +x
            axis, 0 = east).
    """
    times = np.asarray(times, np.float64)
    rz = _rot_z(np.asarray(heading))

    def world_pos(t):
        return traj.position(t) @ rz.T

    def world_rot(t):
        a = traj.rpy(t)
        return rz @ rotation_rpy(a[..., 0], a[..., 1], a[..., 2])

    h1, h2 = 1e-4, 1e-2
    p = world_pos(times)
    q = p - p[0]
    lat, lon = latlon_from_enu(q[:, 0], q[:, 1], lat0, lon0)
    alt = alt0 + q[:, 2]
    rpy = traj.rpy(times)
    yaw = _wrap(rpy[:, 2] + heading)
    vel = (world_pos(times + h1) - world_pos(times - h1)) / (2 * h1)
    acc = (world_pos(times + h2) - 2 * p + world_pos(times - h2)) / (h2 * h2)
    acc = acc + np.array([0.0, 0.0, GRAVITY])  # specific force
    r = world_rot(times)
    dr = (world_rot(times + h1) - world_rot(times - h1)) / (2 * h1)
    omega_skew = np.swapaxes(r, -1, -2) @ dr  # body angular rate, skew-symmetric
    w_body = np.stack([omega_skew[:, 2, 1], omega_skew[:, 0, 2], omega_skew[:, 1, 0]], -1)
    r_head = _rot_z(yaw)
    v_flu = np.einsum('nji,nj->ni', r_head, vel)
    a_body = np.einsum('nji,nj->ni', r, acc)
    a_flu = np.einsum('nji,nj->ni', r_head, acc)
    w_flu = np.einsum('nji,nj->ni', r_head, np.einsum('nij,nj->ni', r, w_body))
    n = len(times)
    out = np.zeros((n, 30))
    out[:, 0], out[:, 1], out[:, 2] = lat, lon, alt
    out[:, 3], out[:, 4], out[:, 5] = rpy[:, 0], rpy[:, 1], yaw
    out[:, 6], out[:, 7] = vel[:, 1], vel[:, 0]
    out[:, 8:11] = v_flu
    out[:, 11:14] = a_body
    out[:, 14:17] = a_flu
    out[:, 17:20] = w_body
    out[:, 20:23] = w_flu
    out[:, 23], out[:, 24] = 0.05, 0.02
    out[:, 25:30] = (4, 11, 4, 4, 6)
    return out


def format_oxts(packet: np.ndarray) -> str:
    """One OXTS line: 25 floats (shortest exact repr) then 5 integers, single spaces, LF."""
    if np.shape(packet) != (30,):
        raise ValueError(f'format_oxts: expected 30 values, got shape {np.shape(packet)}')
    vals = [repr(float(v) + 0.0) for v in packet[:25]] + [str(int(v)) for v in packet[25:]]
    return ' '.join(vals) + '\n'
