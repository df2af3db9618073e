"""The demo rig: KITTI's real 2011_09_26 calibration, rescaled to the rendered image size.

The three calibration files keep the real key sets, value counts and numbers (velodyne ->
camera, IMU -> velodyne, rectifying rotations, distortion); only the image-size dependent
entries are rescaled: ``S_rect_xx = (W, H)``, rows 0 and 1 of ``P_rect_xx`` (and of the
unrectified ``K_xx``, with ``S_xx``) are multiplied by ``W / 1242`` and ``H / 375`` (what
Monodepth2 does when it resizes KITTI images). The :class:`KittiRig` used for rendering is
parsed back from the exact text written, so the files and the images agree to the last digit.

Camera ``k``'s rectified frame is the one ``P_rect_0k`` projects into: with
``P_rect_0k = K [I | t_k]`` (``t_k = K^-1 P[:, 3]``), a point ``X`` in the rectified camera-0
frame lands at pixel ``K (X + t_k)`` with depth ``z + t_k[2]``; this is exactly Monodepth2's
``P_rect_0k @ R_rect_00 @ [R|T]_velo->cam`` projection. (pykitti's ``T_camk_velo`` keeps only
``t_k[0] = P[0, 3] / P[0, 0]``; with these numbers that differs by a few millimetres.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ['KITTI_FULL_SIZE', 'KittiRig', 'kitti_calib_texts', 'parse_calib_text', 'make_rig']

KITTI_FULL_SIZE = (1242, 375)  # (W, H) of the rectified 2011_09_26 images

_CAM_TO_CAM = {
    'S': [1.392000e+03, 5.120000e+02],
    '00': dict(
        K=[9.842439e+02, 0, 6.900000e+02, 0, 9.808141e+02, 2.331966e+02, 0, 0, 1],
        D=[-3.728755e-01, 2.037299e-01, 2.219027e-03, 1.383707e-03, -7.233722e-02],
        R=[1, 0, 0, 0, 1, 0, 0, 0, 1],
        T=[2.573699e-16, -1.059758e-16, 1.614870e-16],
        R_rect=[9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01,
                -4.278459e-03, 7.402527e-03, 4.351614e-03, 9.999631e-01],
        P_rect=[7.215377e+02, 0, 6.095593e+02, 0, 0, 7.215377e+02, 1.728540e+02, 0, 0, 0, 1,
                0]),
    '01': dict(
        K=[9.895267e+02, 0, 7.020000e+02, 0, 9.878386e+02, 2.455590e+02, 0, 0, 1],
        D=[-3.644661e-01, 1.790019e-01, 1.148107e-03, -6.298563e-04, -5.314062e-02],
        R=[9.993513e-01, 1.860866e-02, -3.083487e-02, -1.887662e-02, 9.997863e-01,
           -8.421873e-03, 3.067156e-02, 8.998467e-03, 9.994890e-01],
        T=[-5.370000e-01, 4.822061e-03, -1.252488e-02],
        R_rect=[9.996878e-01, -8.976826e-03, 2.331651e-02, 8.876121e-03, 9.999508e-01,
                4.418952e-03, -2.335503e-02, -4.210612e-03, 9.997184e-01],
        P_rect=[7.215377e+02, 0, 6.095593e+02, -3.875744e+02, 0, 7.215377e+02, 1.728540e+02,
                0, 0, 0, 1, 0]),
    '02': dict(
        K=[9.597910e+02, 0, 6.960217e+02, 0, 9.569251e+02, 2.241806e+02, 0, 0, 1],
        D=[-3.691481e-01, 1.968681e-01, 1.353473e-03, 5.677587e-04, -6.770705e-02],
        R=[9.999758e-01, -5.267463e-03, -4.552439e-03, 5.251945e-03, 9.999804e-01,
           -3.413835e-03, 4.570332e-03, 3.389843e-03, 9.999838e-01],
        T=[5.956621e-02, 2.900141e-04, 2.577209e-03],
        R_rect=[9.998817e-01, 1.511453e-02, -2.841595e-03, -1.511724e-02, 9.998853e-01,
                -9.338510e-04, 2.827154e-03, 9.766976e-04, 9.999955e-01],
        P_rect=[7.215377e+02, 0, 6.095593e+02, 4.485728e+01, 0, 7.215377e+02, 1.728540e+02,
                2.163791e-01, 0, 0, 1, 2.745884e-03]),
    '03': dict(
        K=[9.037596e+02, 0, 6.957519e+02, 0, 9.019653e+02, 2.242509e+02, 0, 0, 1],
        D=[-3.639558e-01, 1.788651e-01, 6.029694e-04, -3.922424e-04, -5.382460e-02],
        R=[9.995599e-01, 1.699522e-02, -2.431313e-02, -1.704422e-02, 9.998531e-01,
           -1.809756e-03, 2.427880e-02, 2.223358e-03, 9.997028e-01],
        T=[-4.731050e-01, 5.551470e-03, -5.250882e-03],
        R_rect=[9.998321e-01, -7.193136e-03, 1.685599e-02, 7.232804e-03, 9.999712e-01,
                -2.293585e-03, -1.683901e-02, 2.415116e-03, 9.998553e-01],
        P_rect=[7.215377e+02, 0, 6.095593e+02, -3.395242e+02, 0, 7.215377e+02, 1.728540e+02,
                2.199936e+00, 0, 0, 1, 2.729905e-03]),
}
_VELO_TO_CAM = dict(
    R=[7.533745e-03, -9.999714e-01, -6.166020e-04, 1.480249e-02, 7.280733e-04, -9.998902e-01,
       9.998621e-01, 7.523790e-03, 1.480755e-02],
    T=[-4.069766e-03, -7.631618e-02, -2.717806e-01])
_IMU_TO_VELO = dict(
    R=[9.999976e-01, 7.553071e-04, -2.035826e-03, -7.854027e-04, 9.998898e-01, -1.482298e-02,
       2.024406e-03, 1.482454e-02, 9.998881e-01],
    T=[-8.086759e-01, 3.195559e-01, -7.997231e-01])


def _fmt(vals) -> str:
    return ' '.join(f'{float(v) + 0.0:.6e}' for v in vals)


def kitti_calib_texts(width: int, height: int) -> dict[str, str]:
    """Contents of ``calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt`` and
    ``calib_imu_to_velo.txt`` for a ``width`` x ``height`` rectified image (one space between
    numbers, no blank lines, trailing newline, as the real files)."""
    if width < 2 or height < 2:
        raise ValueError(f'kitti_calib_texts: image size must be >= 2x2, got {width}x{height}')
    sx, sy = width / KITTI_FULL_SIZE[0], height / KITTI_FULL_SIZE[1]
    scale = np.array([[sx], [sy], [1.0]])
    lines = ['calib_time: 09-Jan-2012 13:57:47', f'corner_dist: {_fmt([9.95e-02])}']
    for cam in ('00', '01', '02', '03'):
        c = _CAM_TO_CAM[cam]
        s = _CAM_TO_CAM['S']
        k = (np.reshape(c['K'], (3, 3)) * scale).ravel()
        p = (np.reshape(c['P_rect'], (3, 4)) * scale).ravel()
        lines += [f'S_{cam}: {_fmt([s[0] * sx, s[1] * sy])}', f'K_{cam}: {_fmt(k)}',
                  f'D_{cam}: {_fmt(c["D"])}', f'R_{cam}: {_fmt(c["R"])}',
                  f'T_{cam}: {_fmt(c["T"])}', f'S_rect_{cam}: {_fmt([width, height])}',
                  f'R_rect_{cam}: {_fmt(c["R_rect"])}', f'P_rect_{cam}: {_fmt(p)}']
    cam_to_cam = '\n'.join(lines) + '\n'
    velo_to_cam = '\n'.join(['calib_time: 15-Mar-2012 11:37:16', f'R: {_fmt(_VELO_TO_CAM["R"])}',
                             f'T: {_fmt(_VELO_TO_CAM["T"])}', f'delta_f: {_fmt([0, 0])}',
                             f'delta_c: {_fmt([0, 0])}']) + '\n'
    imu_to_velo = '\n'.join(['calib_time: 25-May-2012 16:47:16', f'R: {_fmt(_IMU_TO_VELO["R"])}',
                             f'T: {_fmt(_IMU_TO_VELO["T"])}']) + '\n'
    return {'calib_cam_to_cam.txt': cam_to_cam, 'calib_velo_to_cam.txt': velo_to_cam,
            'calib_imu_to_velo.txt': imu_to_velo}


def parse_calib_text(text: str, name: str = '<calib>') -> dict[str, np.ndarray]:
    """``key: v v v`` lines -> {key: float64 array}; non-numeric values (``calib_time``) are
    skipped. Raises ValueError naming ``name`` and the line for a line without ``:``."""
    out: dict[str, np.ndarray] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if ':' not in line:
            raise ValueError(f'{name}: line {i} has no "key:" ({line!r})')
        key, val = line.split(':', 1)
        try:
            out[key.strip()] = np.array([float(v) for v in val.split()], np.float64)
        except ValueError:
            continue
    return out


def _rigid(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = r.reshape(3, 3)
    m[:3, 3] = t
    return m


@dataclass(frozen=True)
class KittiRig:
    """Sensor geometry parsed from the calibration texts.

    Attributes:
        P_rect: (4, 3, 4) ``P_rect_00..03``.
        R_rect_00: (4, 4) rectifying rotation of camera 0 (homogeneous).
        T_cam0unrect_velo: (4, 4) velodyne -> unrectified camera 0 (``calib_velo_to_cam``).
        T_velo_imu: (4, 4) IMU -> velodyne (``calib_imu_to_velo``).
        width, height: rectified image size.
    """
    P_rect: np.ndarray
    R_rect_00: np.ndarray
    T_cam0unrect_velo: np.ndarray
    T_velo_imu: np.ndarray
    width: int
    height: int

    def K(self, cam: int) -> np.ndarray:
        """(3, 3) intrinsics of rectified camera ``cam`` (0-3)."""
        return self.P_rect[cam][:, :3].copy()

    def T_cam_velo(self, cam: int) -> np.ndarray:
        """(4, 4) velodyne -> rectified camera ``cam`` (full ``t_k = K^-1 P[:, 3]``)."""
        t = np.eye(4)
        t[:3, 3] = np.linalg.solve(self.P_rect[cam][:, :3], self.P_rect[cam][:, 3])
        return t @ self.R_rect_00 @ self.T_cam0unrect_velo

    def T_cam_imu(self, cam: int) -> np.ndarray:
        """(4, 4) IMU -> rectified camera ``cam``."""
        return self.T_cam_velo(cam) @ self.T_velo_imu

    def velo_to_image(self, cam: int) -> np.ndarray:
        """(3, 4) ``P_rect_0cam @ R_rect_00 @ T_cam0unrect_velo`` (Monodepth2's projection)."""
        return self.P_rect[cam] @ self.R_rect_00 @ self.T_cam0unrect_velo


def make_rig(texts: dict[str, str]) -> KittiRig:
    """Parse the three calibration texts (as :func:`kitti_calib_texts` returns) into a rig."""
    c2c = parse_calib_text(texts['calib_cam_to_cam.txt'], 'calib_cam_to_cam.txt')
    v2c = parse_calib_text(texts['calib_velo_to_cam.txt'], 'calib_velo_to_cam.txt')
    i2v = parse_calib_text(texts['calib_imu_to_velo.txt'], 'calib_imu_to_velo.txt')
    r_rect = np.eye(4)
    r_rect[:3, :3] = c2c['R_rect_00'].reshape(3, 3)
    size = c2c['S_rect_02']
    return KittiRig(np.stack([c2c[f'P_rect_0{k}'].reshape(3, 4) for k in range(4)]), r_rect,
                    _rigid(v2c['R'], v2c['T']), _rigid(i2v['R'], i2v['T']),
                    int(round(size[0])), int(round(size[1])))
