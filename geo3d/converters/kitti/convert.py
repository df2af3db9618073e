"""The KITTI raw conversion driver: scan drives (parallel, cached), build the split lists,
write the per-subset info files and the Eigen-style test ground truth ``gt_depths.npz`` (plus
``gt_dynamic_masks.npz`` for demo drives with moving-object masks)."""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from geo3d.utils.io import (atomic_write_bytes, atomic_write_json, atomic_write_text,
                            remove_stale_tmp, write_text_if_changed)

from ..parallel import log_line, run_parallel

from .calib import CAM_TO_CAM, VELO_TO_CAM, KittiCalib, read_calib
from .common import (CONVERTER_VERSION, GT_DEPTH_TYPES, OTHER_SIDE, SIDE_TO_CAM, SUBSETS,
                     ConvertReport, DriveError, InputError, image_relpath, velodyne_relpath)
from .drives import DriveScan, find_drives, listing_signature, scan_drive
from .dynamic import (GT_DYNAMIC_FILE, dynamic_signature, encode_gt_dynamic_masks,
                      gt_dynamic_masks_valid, has_dynamic_masks, mask_task)
from .splits import (SplitLine, assign_auto_drives, auto_split_lines, find_split_files,
                     read_split_file)
from .velodyne import generate_depth_map

GT_FILE = 'gt_depths.npz'
MAX_LISTED = 20  # problems listed in one error message


# ------------------------------------------------------------------------------------------------
# workers (module level: picklable for spawn)

def _scan_task(task: tuple[str, str, bool]) -> tuple[str, Any]:
    root, folder, verify = task
    try:
        return 'ok', scan_drive(root, folder, verify)
    except DriveError as e:
        return 'failed', (e.drive, e.path, e.reason)
    except Exception as e:  # a bug or resource error must not take the other drives down
        return 'failed', (folder, str(Path(root) / folder), f'unexpected {type(e).__name__}: {e}')


_CALIB_CACHE: dict[str, KittiCalib] = {}


def _gt_task(task: tuple[int, str, str, int, int, str]) -> tuple[str, Any]:
    """Depth map of one test line, returned sparse: (index, (H, W), flat indices, values)."""
    index, root, folder, frame, cam, depth = task
    try:
        date_dir = str(Path(root) / folder.split('/')[0])
        if date_dir not in _CALIB_CACHE:
            _CALIB_CACHE[date_dir] = read_calib(date_dir, folder)
        calib = _CALIB_CACHE[date_dir]
        dmap = generate_depth_map(calib, Path(root) / velodyne_relpath(folder, frame), cam,
                                  depth, folder)  # type: ignore[arg-type]
        flat = np.flatnonzero(dmap).astype(np.int64)
        return 'ok', (index, dmap.shape, flat, dmap.reshape(-1)[flat])
    except DriveError as e:
        return 'failed', (e.drive, e.path, e.reason)
    except Exception as e:
        return 'failed', (folder, str(Path(root) / velodyne_relpath(folder, frame)),
                          f'unexpected {type(e).__name__}: {e}')


# ------------------------------------------------------------------------------------------------
# drive scans (cached in OUT/drives/<date>/<drive>.json)

def _scan_cache_path(out: Path, folder: str) -> Path:
    return out / 'drives' / f'{folder}.json'


def load_cached_scan(root: Path, out: Path, folder: str, verify_images: bool
                     ) -> DriveScan | None:
    """The cached scan of ``folder`` if it exists, parses, has this converter version, matches
    the drive's current listing and was verified at least as thoroughly; else None."""
    path = _scan_cache_path(out, folder)
    try:
        scan = DriveScan.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if scan.version != CONVERTER_VERSION or scan.folder != folder:
        return None
    if verify_images and not scan.verified:
        return None
    if scan.signature != listing_signature(root, folder):
        return None
    return scan


def scan_drives(root: Path, out: Path, folders: Sequence[str], workers: int, overwrite: bool,
                verify_images: bool, progress: bool, verbose: bool, report: ConvertReport
                ) -> dict[str, DriveScan]:
    """Scan ``folders`` (reusing valid cached scans unless ``overwrite``); failures go to
    ``report.failed`` and are left out of the result."""
    scans: dict[str, DriveScan] = {}
    tasks = []
    for folder in folders:
        cached = None if overwrite else load_cached_scan(root, out, folder, verify_images)
        if cached is not None:
            scans[folder] = cached
            report.skipped += 1
        else:
            tasks.append((str(root), folder, verify_images))

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status == 'ok':
            scan: DriveScan = payload
            path = _scan_cache_path(out, scan.folder)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, scan.to_json())
            scans[scan.folder] = scan
            report.scanned += 1
        else:
            report.failed.append(payload)
            stale = _scan_cache_path(out, payload[0])
            if stale.exists():
                stale.unlink()
            if verbose:
                log_line('FAILED {}: {}: {}'.format(*payload), bar)

    run_parallel(_scan_task, tasks, workers, 'kitti scan', 'drive', progress, handle)
    for folder in folders:
        if folder in scans:
            for w in scans[folder].warnings:
                report.warnings.append(f'{folder}: {w}')
                if verbose:
                    log_line(f'warning: {folder}: {w}')
    return {f: scans[f] for f in folders if f in scans}


# ------------------------------------------------------------------------------------------------
# named splits

def _check_named_drives(root: Path, lines: Iterable[SplitLine]) -> None:
    """Raise :class:`InputError` listing (``file:line``) every drive or calib folder a split
    file names that does not exist under ``root``."""
    first: dict[str, SplitLine] = {}
    count: dict[str, int] = {}
    for ln in lines:
        first.setdefault(ln.folder, ln)
        count[ln.folder] = count.get(ln.folder, 0) + 1
    problems = []
    for folder, ln in first.items():
        date = folder.split('/')[0]
        if not (root / folder).is_dir():
            problems.append(f'{ln.where()}: drive {root / folder} does not exist '
                            f'({count[folder]} line(s) name it)')
        elif not all((root / date / n).is_file() for n in (CAM_TO_CAM, VELO_TO_CAM)):
            problems.append(f'{ln.where()}: calibration {root / date}/{{{CAM_TO_CAM},'
                            f'{VELO_TO_CAM}}} missing for drive {folder}')
    if problems:
        more = f'\n  ... and {len(problems) - MAX_LISTED} more' if len(problems) > MAX_LISTED \
            else ''
        raise InputError(f'{len(problems)} drive(s) named by the split files are missing under '
                         f'{root}:\n  ' + '\n  '.join(problems[:MAX_LISTED]) + more)


def _check_named_frames(root: Path, subset: str, lines: Sequence[SplitLine],
                        scans: dict[str, DriveScan], offsets: Sequence[int]
                        ) -> list[tuple[str, str, str]]:
    """(drive, file, 'file:line: reason') for every frame a line needs that the drive lacks:
    its image and stereo pair, its temporal neighbours (train/val), its velodyne scan (test)."""
    problems = []
    frame_sets = {f: (set(s.frames), set(s.velodyne_frames)) for f, s in scans.items()}
    for ln in lines:
        scan = scans.get(ln.folder)
        if scan is None:  # the drive failed its scan; reported already
            continue
        have, have_velo = frame_sets[ln.folder]
        cam = SIDE_TO_CAM[ln.side]
        needed = [(ln.frame, cam), (ln.frame, SIDE_TO_CAM[OTHER_SIDE[ln.side]])]
        if subset != 'test':
            needed += [(ln.frame + o, cam) for o in offsets]
        for frame, c in needed:
            if frame not in have:
                path = root / image_relpath(ln.folder, frame, c, scan.img_ext)
                problems.append((ln.folder, str(path), f'{ln.where()}: missing image'))
        if subset == 'test' and ln.frame not in have_velo:
            problems.append((ln.folder, str(root / velodyne_relpath(ln.folder, ln.frame)),
                             f'{ln.where()}: missing velodyne scan (needed for the ground '
                             'truth)'))
    return problems


# ------------------------------------------------------------------------------------------------
# outputs

def _write_counted(path: Path, text: str, report: ConvertReport) -> None:
    """:func:`~geo3d.utils.io.write_text_if_changed`, counted in ``report``."""
    if write_text_if_changed(path, text):
        report.files_written += 1
    else:
        report.files_unchanged += 1


def frame_record(ln: SplitLine, scan: DriveScan) -> dict[str, Any]:
    """The info record of one split line (paths relative to the raw root)."""
    cam = SIDE_TO_CAM[ln.side]
    other = SIDE_TO_CAM[OTHER_SIDE[ln.side]]
    w, h = scan.image_size[str(cam)]
    k = scan.K[str(cam)]
    return {'folder': ln.folder, 'frame_index': ln.frame, 'side': ln.side, 'cam': cam,
            'image': image_relpath(ln.folder, ln.frame, cam, scan.img_ext),
            'stereo_image': image_relpath(ln.folder, ln.frame, other, scan.img_ext),
            'width': w, 'height': h,
            'intrinsics': [k[0][0], k[1][1], k[0][2], k[1][2]],
            'stereo_baseline': scan.stereo_baseline}


def build_info(root: Path, split: str, subset: str, lines: Sequence[SplitLine],
               scans: dict[str, DriveScan], offsets: Sequence[int], gt_depth: str | None
               ) -> dict[str, Any]:
    """The ``<subset>_info.json`` content (layout in the package docstring)."""
    folders = sorted({ln.folder for ln in lines})
    return {
        'dataset': 'kitti_raw',
        'converter': 'geo3d.converters.kitti',
        'converter_version': CONVERTER_VERSION,
        'split': split,
        'subset': subset,
        'raw_root': str(root.resolve()),
        'split_file': f'{subset}_files.txt',
        'frame_offsets': [] if subset == 'test' else list(offsets),
        'gt_depth_file': GT_FILE if gt_depth else None,
        'gt_depth': gt_depth,
        'intrinsics': 'normalised [fx/W, fy/H, cx/W, cy/H] from P_rect_0<cam> and the image size',
        'drives': {f: {'img_ext': scans[f].img_ext, 'image_size': scans[f].image_size,
                       'K': scans[f].K, 'stereo_baseline': scans[f].stereo_baseline,
                       'num_frames': len(scans[f].frames)} for f in folders},
        'frames': [frame_record(ln, scans[ln.folder]) for ln in lines],
    }


def gt_file_valid(path: Path, lines_text: Sequence[str], depth: str) -> bool:
    """``gt_depths.npz`` exists, is a complete npz of this converter version, for exactly these
    test lines and depth type (the maps themselves are not decompressed)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if not {'data', 'lines', 'intrinsics', 'meta'} <= set(z.files):
                return False
            meta = json.loads(str(z['meta']))
            return (meta.get('converter_version') == CONVERTER_VERSION
                    and meta.get('depth') == depth
                    and z['lines'].tolist() == list(lines_text))
    except (OSError, ValueError, KeyError, EOFError):
        return False


def export_gt_depths(root: Path, path: Path, lines: Sequence[SplitLine],
                     scans: dict[str, DriveScan], depth: str, workers: int, progress: bool,
                     verbose: bool, report: ConvertReport) -> bool:
    """Write ``gt_depths.npz`` for the test ``lines`` unless a valid one exists.

    Keys: ``data`` (N,) object array of (H, W) float32 maps at the raw image size (0 = no
    point), as Monodepth2's ``export_gt_depth.py``; ``intrinsics`` (N, 4, 4) float32 normalised
    K of each line's camera; ``lines`` (N,) the split lines; ``meta`` a JSON string.
    Load with ``np.load(path, allow_pickle=True)``. Returns False if a scan failed.
    """
    lines_text = [ln.format(pad=True) for ln in lines]
    report.gt_maps = len(lines)
    if gt_file_valid(path, lines_text, depth):
        report.gt_skipped += 1
        return True
    maps: list[np.ndarray | None] = [None] * len(lines)
    failed = []

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status == 'ok':
            i, shape, flat, values = payload
            m = np.zeros(int(np.prod(shape)), np.float32)
            m[flat] = values
            maps[i] = m.reshape(shape)
        else:
            failed.append(payload)
            if verbose:
                log_line('FAILED {}: {}: {}'.format(*payload), bar)

    tasks = [(i, str(root), ln.folder, ln.frame, SIDE_TO_CAM[ln.side], depth)
             for i, ln in enumerate(lines)]
    run_parallel(_gt_task, tasks, workers, 'kitti gt', 'frame', progress, handle)
    if failed:
        report.failed.extend(failed)
        return False
    data = np.empty(len(maps), dtype=object)
    for i, m in enumerate(maps):
        data[i] = m
    intr = np.stack([np.asarray(scans[ln.folder].K[str(SIDE_TO_CAM[ln.side])], np.float32)
                     for ln in lines]) if lines else np.zeros((0, 4, 4), np.float32)
    meta = {'converter_version': CONVERTER_VERSION, 'depth': depth,
            'convention': 'velodyne projected into the line\'s camera, Monodepth2 '
                          'generate_depth_map conventions (round, -1, nearest wins)'}
    buf = io.BytesIO()
    np.savez_compressed(buf, data=data, intrinsics=intr, lines=np.array(lines_text),
                        meta=np.array(json.dumps(meta)))
    atomic_write_bytes(path, buf.getvalue())
    report.gt_exported += 1
    return True


def export_gt_dynamic_masks(root: Path, path: Path, lines: Sequence[SplitLine],
                            scans: dict[str, DriveScan], workers: int, progress: bool,
                            verbose: bool, report: ConvertReport) -> int:
    """Write ``gt_dynamic_masks.npz`` (layout in :mod:`.dynamic`) for the test ``lines`` whose
    drive has ``dynamic_mask_demo/image_0<cam>/`` (demo drives with moving objects).

    No such line: no file (a stale one is removed). A valid file for the same lines and
    unchanged mask folders is kept. A missing / corrupt / wrongly sized mask is a warning
    naming the file; that line is stored as absent. Returns the number of masks stored.
    """
    cams = [SIDE_TO_CAM[ln.side] for ln in lines]
    wanted = [i for i, (ln, c) in enumerate(zip(lines, cams)) if has_dynamic_masks(
        root, ln.folder, c)]
    if not wanted:
        if path.exists():
            path.unlink()
        return 0
    lines_text = [ln.format(pad=True) for ln in lines]
    signature = dynamic_signature(root, [(lines[i].folder, cams[i]) for i in wanted])
    report.mask_maps = len(wanted)
    if gt_dynamic_masks_valid(path, lines_text, signature):
        report.masks_skipped += 1
        return len(wanted)
    masks: list[np.ndarray | None] = [None] * len(lines)

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status == 'ok':
            i, m = payload
            masks[i] = m
        else:
            msg = '{}: {}: {} (line stored without a mask)'.format(*payload)
            report.warnings.append(msg)
            if verbose:
                log_line(f'warning: {msg}', bar)

    tasks = [(i, str(root), lines[i].folder, lines[i].frame, cams[i],
              tuple(scans[lines[i].folder].image_size[str(cams[i])])) for i in wanted]
    run_parallel(mask_task, tasks, workers, 'kitti dynamic masks', 'frame', progress, handle)
    atomic_write_bytes(path, encode_gt_dynamic_masks(lines_text, masks, signature))
    report.mask_maps = sum(m is not None for m in masks)
    report.masks_exported += 1
    return report.mask_maps


def _write_failed(out: Path, report: ConvertReport) -> None:
    failed_txt = out / 'failed.txt'
    if report.failed:
        atomic_write_text(failed_txt, ''.join(f'{d}: {f}: {r}\n' for d, f, r in report.failed))
    elif failed_txt.exists():
        failed_txt.unlink()


# ------------------------------------------------------------------------------------------------
# driver

def convert(root: str | os.PathLike[str], out: str | os.PathLike[str], split: str = 'auto',
            split_dir: str | os.PathLike[str] | None = None, workers: int = 1,
            overwrite: bool = False, frame_offsets: Sequence[int] = (-1, 1),
            sides: Sequence[str] = ('l', 'r'), num_val_drives: int = 1, num_test_drives: int = 1,
            gt_depth: str = 'velo_x', verify_images: bool = False, progress: bool = True,
            verbose: bool = True) -> ConvertReport:
    """Convert a KITTI raw tree into split lists, info files and test ground truth.

    Args:
        root: KITTI raw root (``<date>/calib_*.txt``, ``<date>/<date>_drive_<dddd>_sync/``).
        out: output root (created); see the package docstring for the layout.
        split: ``'auto'`` (hold out whole drives, see :func:`~.splits.assign_auto_drives`) or
            the name of a Monodepth2 split folder (``'eigen_zhou'``, ``'eigen'``, ...) whose
            ``{train,val,test}_files.txt`` are read from ``split_dir`` (or ``ROOT/splits``).
        split_dir: Monodepth2's ``splits/`` folder, or the split's own folder.
        workers: processes for scanning drives and exporting ground truth; 1 = this process.
        overwrite: rescan drives and rewrite ground truth even when valid outputs exist.
        frame_offsets: temporal neighbours a train/val frame must have (auto split) or is
            checked for (named splits).
        sides: cameras of the auto split's train/val lines (``'l'``, ``'r'``).
        num_val_drives, num_test_drives: drives held out by the auto split.
        gt_depth: ``'velo_x'`` (Eigen's ``export_gt_depth.py``) or ``'cam_z'``.
        verify_images: fully decode-check every image (slow); default reads headers only.
        progress: tqdm bars on stderr. verbose: print failures, warnings and the summary.

    Returns:
        the :class:`ConvertReport`; failures are also listed in ``OUT/failed.txt``. In the auto
        split a failed drive is left out; in a named split every drive is required, so any
        failure leaves that split's outputs unwritten.

    Raises:
        InputError: bad arguments, missing root, split files or named drives (nothing written).
    """
    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise InputError(f'KITTI raw root {root} is not a directory')
    if workers < 1:
        raise InputError(f'workers must be >= 1, got {workers}')
    if gt_depth not in GT_DEPTH_TYPES:
        raise InputError(f'gt_depth must be one of {GT_DEPTH_TYPES}, got {gt_depth!r}')
    if not split or '/' in split or split.startswith('.'):
        raise InputError(f'bad split name {split!r}')
    offsets = [int(o) for o in frame_offsets if int(o) != 0]
    report = ConvertReport(split=split)

    named: dict[str, list[SplitLine]] = {}
    if split == 'auto':
        folders = find_drives(root)
        if not folders:
            raise InputError(f'no drives <date>/<date>_drive_<dddd>_sync under {root}')
    else:
        dirs = ([split_dir] if split_dir is not None else []) + [root / 'splits']
        files = find_split_files(split, dirs)
        named = {subset: read_split_file(p) for subset, p in files.items()}
        _check_named_drives(root, [ln for lines in named.values() for ln in lines])
        folders = sorted({ln.folder for lines in named.values() for ln in lines})

    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    split_out = out / 'splits' / split
    split_out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(split_out)
    scans = scan_drives(root, out, folders, workers, overwrite, verify_images, progress, verbose,
                        report)

    if split == 'auto':
        assignment = assign_auto_drives(list(scans.values()), num_val_drives, num_test_drives)
        subsets = auto_split_lines(assignment, offsets, sides)
        report.drives = {k: [s.folder for s in v] for k, v in assignment.items()}
    else:
        subsets = named
        report.drives = {k: sorted({ln.folder for ln in v}) for k, v in named.items()}
        for subset, lines in named.items():
            report.failed.extend(_check_named_frames(root, subset, lines, scans, offsets))
        if report.failed:
            _write_failed(out, report)
            report.seconds = time.perf_counter() - t0
            if verbose:
                log_line(f'error: split {split!r} needs every drive and frame it names; '
                         f'{len(report.failed)} problem(s) listed in {out / "failed.txt"}; '
                         'no split outputs written')
                print(report.summary(), flush=True)
            return report

    gt_ok = True
    for subset in SUBSETS:
        lines = subsets.get(subset)
        if lines is None:
            continue
        report.subsets[subset] = len(lines)
        if not lines:  # e.g. val with --val-drives 0: no files (and none left from before)
            for name in (f'{subset}_files.txt', f'{subset}_info.json') + \
                    ((GT_FILE, GT_DYNAMIC_FILE) if subset == 'test' else ()):
                if (split_out / name).exists():
                    (split_out / name).unlink()
            continue
        is_test = subset == 'test'
        if is_test:
            gt_path = split_out / GT_FILE
            if overwrite and gt_path.exists():
                gt_path.unlink()
            gt_ok = export_gt_depths(root, gt_path, lines, scans, gt_depth, workers, progress,
                                     verbose, report)
            if not gt_ok:
                continue
            mask_path = split_out / GT_DYNAMIC_FILE
            if overwrite and mask_path.exists():
                mask_path.unlink()
            export_gt_dynamic_masks(root, mask_path, lines, scans, workers, progress, verbose,
                                    report)
        pad = subset == 'test'
        _write_counted(split_out / f'{subset}_files.txt',
                       ''.join(ln.format(pad) + '\n' for ln in lines), report)
        info = build_info(root, split, subset, lines, scans, offsets if not is_test else [],
                          gt_depth if is_test else None)
        _write_counted(split_out / f'{subset}_info.json', json.dumps(info, indent=1) + '\n',
                       report)
    _write_failed(out, report)
    report.seconds = time.perf_counter() - t0
    if verbose:
        print(report.summary(), flush=True)
    return report
