"""Procedural driving sequences written in the real KITTI raw format (demo / test data).

:func:`make_demo_kitti` renders a few short drives through procedural streets (textured road
with lane markings, kerbs and paved sidewalks, building facades with windows at varying
set-backs, parked cars, poles with signs, trees, a sky with clouds; optionally cars that drive
independently) and writes them exactly as the official download lays them out::

    OUT/2011_09_26/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    OUT/2011_09_26/2011_09_26_drive_9001_sync/
        image_02/data/%010d.png, image_03/data/%010d.png      left / right colour camera
        image_02/timestamps.txt, image_03/timestamps.txt
        velodyne_points/data/%010d.bin + timestamps{,_start,_end}.txt
        oxts/data/%010d.txt (30 values) + timestamps.txt + dataformat.txt
        proj_depth_demo/image_0{2,3}/%010d.png                rendered dense depth (uint16 m*256)
        dynamic_mask_demo/image_0{2,3}/%010d.png              moving-object masks (if any)
    OUT/demo_video.mp4                                        a held-out drive's camera 2
    OUT/demo_kitti.json                                       what was generated

so ``pykitti.raw(OUT, '2011_09_26', '9001')`` and the KITTI converter read it like real data.
The calibration is KITTI's real 2011_09_26 rig rescaled to the image size (:mod:`.calib`);
images (:mod:`.renderer`), the 64-ring velodyne (:mod:`.lidar`) and the OXTS poses
(:mod:`.oxts`) all come from one exact ray-cast scene (:mod:`.scene`, :mod:`.raycast`,
:mod:`.materials`, :mod:`.textures`), so velodyne points projected with the calibration land
on pixels whose rendered depth is the point's depth, and consecutive OXTS poses are the
trajectory's motion (:mod:`.trajectory`). :mod:`.writer` and :mod:`.video` write the files,
:mod:`.generate` ties it together. Same seed -> byte-identical files.
"""
from .calib import KittiRig, kitti_calib_texts, make_rig, parse_calib_text
from .generate import (DEMO_DATE, MANIFEST, VIDEO_NAME, DemoDrive, DemoKittiSummary,
                       demo_drive_ids, make_demo_drive, make_demo_kitti, render_demo_frame)
from .lidar import scan_velodyne, velodyne_directions
from .oxts import format_oxts, latlon_from_enu, oxts_packets
from .renderer import RenderedView, render_view
from .scene import BoxSet, Material, MovingCar, SphereSet, StreetScene, make_street_scene
from .trajectory import StreetTrajectory, random_trajectory, rotation_rpy
from .video import write_video
from .writer import (DEPTH_DIR, DYNAMIC_DIR, KittiDriveWriter, decode_depth_png,
                     encode_depth_png, format_timestamp, write_calib)

__all__ = [
    'make_demo_kitti', 'make_demo_drive', 'render_demo_frame', 'demo_drive_ids', 'DemoDrive',
    'DemoKittiSummary', 'DEMO_DATE', 'MANIFEST', 'VIDEO_NAME', 'KittiRig', 'kitti_calib_texts',
    'make_rig', 'parse_calib_text', 'scan_velodyne', 'velodyne_directions', 'format_oxts',
    'latlon_from_enu', 'oxts_packets', 'RenderedView', 'render_view', 'BoxSet', 'Material',
    'MovingCar', 'SphereSet', 'StreetScene', 'make_street_scene', 'StreetTrajectory',
    'random_trajectory', 'rotation_rpy', 'write_video', 'KittiDriveWriter', 'write_calib',
    'format_timestamp', 'encode_depth_png', 'decode_depth_png', 'DEPTH_DIR', 'DYNAMIC_DIR',
]
