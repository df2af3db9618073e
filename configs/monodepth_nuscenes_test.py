# Zero-shot evaluation of a KITTI-trained Monodepth2 (configs/monodepth_kitti.py, or the CPU
# demo configs/monodepth_kitti_demo.py: same networks) on nuScenes: CAM_FRONT key frames of the
# official val scenes, projected LIDAR_TOP ground truth (nuscenes-devkit chain, nearest point
# per pixel) at 1600x900, every pixel with a point within 80 m (DepthMetric eval_split='none'
# + gt_max_depth=80), predictions clamped to 80 m, per-image median scaling (the scale of a
# monocular model is unknown). Convert nuScenes first (docs/datasets/nuscenes.md), then
#   python tools/test.py configs/monodepth_nuscenes_test.py work_dirs/monodepth_kitti/epoch_20.pth
# Night only (Robust-Depth's nuScenes-Night protocol on the val scenes):
#   ... --cfg-options test_dataloader.dataset.ann_file=splits/night_val_info.json
# The network sees 576x320 images (nuScenes is 16:9; KITTI models were trained at 640x192 —
# fully convolutional, any multiple of 32 works; median scaling absorbs the focal change).
_base_ = ['./monodepth_kitti.py']

nuscenes_root = 'data/nuscenes/depth'

test_dataloader = dict(
    batch_size=8, num_workers=4, persistent_workers=False,
    dataset=dict(_delete_=True, type='NuScenesDepthDataset', data_root=nuscenes_root,
                 ann_file='splits/val_info.json', frame_ids=(0,), height=320, width=576,
                 num_scales=1, test_mode=True, gt_depth_file='auto', gt_max_depth=80.0))
test_evaluator = dict(type='DepthMetric', eval_split='none', min_depth=1e-3, max_depth=80.0,
                      median_scaling=True)
