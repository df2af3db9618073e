"""The Cityscapes conversion driver: scan cities (parallel, cached), build the sample lists,
write the per-subset info files, the test ground-truth depth maps and, optionally, cropped and
pre-resized training images."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from geo3d.utils.io import (atomic_write_json, atomic_write_text, remove_stale_tmp,
                            write_text_if_changed)

from ..parallel import log_line, run_parallel

from .camera import CityscapesCamera, normalized_intrinsics
from .common import (CONVERTER_VERSION, CROP_BOTTOM, GT_DIR, SEQUENCE_DIR, SPLITS, SUBSETS,
                     ConvertReport, InputError, crop_height,
                     disparity_relpath, gt_relpath)
from .outputs import (IMAGE_FORMATS, gt_file_valid, resized_image_valid, write_gt_depth,
                      write_resized_image)
from .samples import (Problems, Sample, SplitLine, Target, annotated_targets, build_samples,
                      format_split_line, random_snippet_split, read_split_file,
                      sequence_targets)
from .scan import CityScan, find_cities, listing_signature, scan_city

__all__ = ['convert', 'scan_cities', 'load_cached_scan', 'build_info', 'VAL_MODES']

VAL_MODES: tuple[str, ...] = ('random', 'official')
MAX_LISTED = 20  # problems listed in one error message
MANYDEPTH_SPLITS_URL = 'https://github.com/nianticlabs/manydepth/tree/master/splits'


# ------------------------------------------------------------------------------------------------
# workers (module level: picklable for spawn)

def _scan_task(task: tuple[str, str, str, bool]) -> tuple[str, Any]:
    root, split, city, verify = task
    try:
        return 'ok', scan_city(root, split, city, verify)
    except Exception as e:  # a bug or resource error must not take the other cities down
        return 'failed', (f'{split}/{city}', str(Path(root) / SEQUENCE_DIR / split / city),
                          f'unexpected {type(e).__name__}: {e}')


def _gt_task(task: tuple[str, str, str, dict, str, tuple[int, int]]) -> tuple[str, Any]:
    where, stem, disp, camera, out_path, shape = task
    try:
        write_gt_depth(disp, CityscapesCamera(**camera), out_path, shape)
        return 'ok', stem
    except (ValueError, OSError) as e:
        msg = str(e)
        reason = msg[len(disp) + 2:] if msg.startswith(f'{disp}: ') else msg
        return 'failed', (where, disp, f'{reason} (ground truth of {stem}; sample skipped)')


def _image_task(task: tuple[str, str, tuple[int, int], float, str, int]) -> tuple[str, Any]:
    src, dst, size, crop, fmt, quality = task
    try:
        write_resized_image(src, dst, size, crop, fmt, quality)
        return 'ok', dst
    except (ValueError, OSError) as e:
        msg = str(e)
        reason = msg[len(src) + 2:] if msg.startswith(f'{src}: ') else msg
        return 'failed', ('resize', src, reason)


# ------------------------------------------------------------------------------------------------
# city scans (cached in OUT/cities/<split>/<city>.json)

def _scan_cache_path(out: Path, split: str, city: str) -> Path:
    return out / 'cities' / split / f'{city}.json'


def load_cached_scan(root: Path, out: Path, split: str, city: str, verify_images: bool
                     ) -> CityScan | None:
    """The cached scan of ``split/city`` if it parses, has this converter version, matches the
    city's current listing and was verified at least as thoroughly; else None."""
    try:
        scan = CityScan.from_json(json.loads(_scan_cache_path(out, split, city).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if scan.version != CONVERTER_VERSION or (scan.split, scan.city) != (split, city):
        return None
    if verify_images and not scan.verified:
        return None
    if scan.signature != listing_signature(root, split, city):
        return None
    return scan


def scan_cities(root: Path, out: Path, keys: Sequence[tuple[str, str]], workers: int,
                overwrite: bool, verify_images: bool, progress: bool, verbose: bool,
                report: ConvertReport) -> dict[str, CityScan]:
    """Scan the ``(split, city)`` pairs, reusing valid cached scans unless ``overwrite``;
    returns ``{'<split>/<city>': scan}`` (a failed city is reported and left out)."""
    scans: dict[str, CityScan] = {}
    tasks = []
    for split, city in keys:
        cached = None if overwrite else load_cached_scan(root, out, split, city, verify_images)
        if cached is not None:
            scans[cached.key] = cached
            report.skipped += 1
        else:
            tasks.append((str(root), split, city, verify_images))

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status == 'ok':
            scan: CityScan = payload
            path = _scan_cache_path(out, scan.split, scan.city)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, scan.to_json(), indent=None)
            scans[scan.key] = scan
            report.scanned += 1
        else:
            report.failed.append(payload)
            if verbose:
                log_line('FAILED {}: {}: {}'.format(*payload), bar)

    run_parallel(_scan_task, tasks, workers, 'cityscapes scan', 'city', progress, handle)
    return scans


# ------------------------------------------------------------------------------------------------
# lists

def _auto_targets(scans: dict[str, CityScan], offsets: Sequence[int], sample_gap: int,
                  val_mode: str,
                  val_fraction: float, seed: int) -> dict[str, list[Target]]:
    by_split: dict[str, list[CityScan]] = {s: [] for s in SPLITS}
    for scan in scans.values():
        by_split[scan.split].append(scan)
    for v in by_split.values():
        v.sort(key=lambda s: s.city)
    out: dict[str, list[Target]] = {}
    if val_mode == 'random':
        snippets = [(s.city, int(q)) for s in by_split['train'] for q in s.sequences]
        train, val = random_snippet_split(snippets, val_fraction, seed)
        for subset, chosen in (('train', train), ('val', val)):
            out[subset] = [t for s in by_split['train'] for t in sequence_targets(
                s, offsets, sample_gap, {q for c, q in chosen if c == s.city})]
    else:
        for subset in ('train', 'val'):
            out[subset] = [t for s in by_split[subset]
                           for t in sequence_targets(s, offsets, sample_gap)]
    out['test'] = [t for s in by_split['test'] for t in annotated_targets(s)]
    return out


def _named_targets(root: Path, named: dict[str, list[SplitLine]],
                   city_split: dict[str, str]) -> dict[str, list[Target]]:
    """Targets of the split-file lines; raises InputError for cities the tree does not have."""
    problems = []
    first: dict[str, SplitLine] = {}
    count: dict[str, int] = {}
    for lines in named.values():
        for ln in lines:
            first.setdefault(ln.name.city, ln)
            count[ln.name.city] = count.get(ln.name.city, 0) + 1
    for city, ln in first.items():
        if city not in city_split:
            problems.append(f'{ln.where()}: city {city!r} is in none of '
                            f'{root / SEQUENCE_DIR}/{{{",".join(SPLITS)}}} '
                            f'({count[city]} line(s) name it)')
    if problems:
        more = f'\n  ... and {len(problems) - MAX_LISTED} more' if len(problems) > MAX_LISTED \
            else ''
        raise InputError(f'{len(problems)} cities named by the split files are missing under '
                         f'{root}:\n  ' + '\n  '.join(problems[:MAX_LISTED]) + more)
    return {subset: [Target(city_split[ln.name.city], ln.name, ln.where()) for ln in lines]
            for subset, lines in named.items()}


def _find_split_files(split: str, split_dir: str | os.PathLike[str] | None, root: Path
                      ) -> dict[str, Path]:
    dirs = ([Path(split_dir)] if split_dir is not None else []) + [root / 'splits']
    tried = []
    for d in dirs:
        for cand in (d / split, d):
            found = {s: cand / f'{s}_files.txt' for s in SUBSETS
                     if (cand / f'{s}_files.txt').is_file()}
            tried.append(str(cand))
            if found:
                return found
    raise InputError(f'no split files {{train,val,test}}_files.txt for split {split!r} in '
                     f'{tried}; ManyDepth\'s lists are in {MANYDEPTH_SPLITS_URL} (cityscapes/'
                     'test_files.txt): pass their parent folder with --split-dir, or use '
                     '--split auto')


# ------------------------------------------------------------------------------------------------
# outputs

def sample_record(s: Sample, crop_bottom: float, gt: bool) -> dict[str, Any]:
    """The info record of one sample (paths relative to the Cityscapes root / the output)."""
    return {'split': s.split, 'city': s.name.city, 'seq': s.name.seq, 'frame': s.name.frame,
            'stem': s.name.stem, 'image': s.image(0), 'width': s.width, 'height': s.height,
            'crop_height': crop_height(s.height, crop_bottom),
            'intrinsics': normalized_intrinsics(s.camera, s.width, s.height, crop_bottom),
            'baseline': s.camera.baseline, 'camera': s.camera_file,
            'gt_depth': gt_relpath(s.name) if gt else None}


def build_info(root: Path, split: str, subset: str, samples: Sequence[Sample],
               offsets: Sequence[int], sample_gap: int, crop_bottom: float,
               images: dict[str, Any], gt: bool) -> dict[str, Any]:
    """The ``<subset>_info.json`` content (layout in the package docstring)."""
    return {
        'dataset': 'cityscapes_sequence',
        'converter': 'geo3d.converters.cityscapes',
        'converter_version': CONVERTER_VERSION,
        'split': split,
        'subset': subset,
        'raw_root': str(root.resolve()),
        'split_file': f'{subset}_files.txt',
        'sample_gap': sample_gap,
        'frame_offsets': list(offsets),
        'crop_bottom': crop_bottom,
        'images': images,
        'gt_depth_dir': GT_DIR if gt else None,
        'intrinsics': 'normalised [fx/W, fy/H\', u0/W, v0/H\'] from the camera JSON, H\' = the '
                      'height after the bottom crop',
        'frames': [sample_record(s, crop_bottom, gt) for s in samples],
    }


def _write_counted(path: Path, text: str, report: ConvertReport) -> None:
    """:func:`~geo3d.utils.io.write_text_if_changed`, counted in ``report``."""
    if write_text_if_changed(path, text):
        report.files_written += 1
    else:
        report.files_unchanged += 1


def _write_failed(out: Path, report: ConvertReport) -> None:
    failed_txt = out / 'failed.txt'
    if report.failed:
        atomic_write_text(failed_txt, ''.join(f'{w}: {f}: {r}\n' for w, f, r in report.failed))
    elif failed_txt.exists():
        failed_txt.unlink()


def _export_gt(root: Path, out: Path, samples: list[Sample], workers: int, overwrite: bool,
               progress: bool, verbose: bool, report: ConvertReport) -> list[Sample]:
    """Write the ground truth of the test ``samples``; returns those that have it."""
    tasks, done = [], set()
    for s in samples:
        path = out / gt_relpath(s.name)
        if not overwrite and gt_file_valid(path, (s.height, s.width)):
            report.gt_skipped += 1
            done.add(s.name.stem)
        else:
            tasks.append((s.name.snippet, s.name.stem,
                          str(root / disparity_relpath(s.split, s.name)),
                          s.camera.to_json(), str(path), (s.height, s.width)))

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status == 'ok':
            done.add(payload)
            report.gt_exported += 1
        else:
            report.failed.append(payload)
            report.samples_skipped += 1
            if verbose:
                log_line('FAILED {}: {}: {}'.format(*payload), bar)

    run_parallel(_gt_task, tasks, workers, 'cityscapes gt', 'frame', progress, handle)
    return [s for s in samples if s.name.stem in done]


def _resize_images(root: Path, out: Path, subsets: dict[str, list[Sample]],
                   offsets: dict[str, list[int]], sample_gap: int, size: tuple[int, int],
                   crop_bottom: float, image_format: str, jpeg_quality: int, workers: int,
                   overwrite: bool, progress: bool, verbose: bool, report: ConvertReport
                   ) -> tuple[str, dict[str, list[Sample]]]:
    """Crop + resize every frame the samples use into ``OUT/images/<W>x<H>/``; returns that
    folder (relative to OUT) and the samples whose frames all made it."""
    rel_dir = f'images/{size[0]}x{size[1]}'
    ext = IMAGE_FORMATS[image_format]
    needed: dict[str, tuple[str, str]] = {}
    for subset, samples in subsets.items():
        for s in samples:
            for o in {0, *offsets[subset]}:
                name = s.name.shifted(o * sample_gap)
                dst = out / rel_dir / s.split / name.city / f'{name.stem}_leftImg8bit{ext}'
                needed.setdefault(str(dst), (str(root / s.image(o * sample_gap)), str(dst)))
    tasks, bad = [], set()
    for src, dst in needed.values():
        if not overwrite and resized_image_valid(dst, size):
            report.images_skipped += 1
        else:
            tasks.append((src, dst, size, crop_bottom, image_format, jpeg_quality))

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status == 'ok':
            report.images_written += 1
        else:
            bad.add(payload[1])
            report.failed.append(payload)
            if verbose:
                log_line('FAILED {}: {}: {}'.format(*payload), bar)

    run_parallel(_image_task, tasks, workers, 'cityscapes resize', 'image', progress, handle)
    if not bad:
        return rel_dir, subsets
    kept = {}
    for subset, samples in subsets.items():
        kept[subset] = [s for s in samples if not any(
            str(root / s.image(o * sample_gap)) in bad for o in {0, *offsets[subset]})]
        report.samples_skipped += len(samples) - len(kept[subset])
    return rel_dir, kept


# ------------------------------------------------------------------------------------------------
# driver

def _check_args(workers: int, sample_gap: int, offsets: Sequence[int],
                test_offsets: Sequence[int], val_mode: str, val_fraction: float,
                resize: Sequence[int] | None, image_format: str, crop_bottom: float) -> None:
    if workers < 1:
        raise InputError(f'workers must be >= 1, got {workers}')
    if sample_gap < 1:
        raise InputError(f'sample_gap must be >= 1, got {sample_gap}')
    if val_mode not in VAL_MODES:
        raise InputError(f'val_mode must be one of {VAL_MODES}, got {val_mode!r}')
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f'val_fraction must be in [0, 1), got {val_fraction}')
    if not 0.0 <= crop_bottom < 1.0:
        raise InputError(f'crop_bottom must be in [0, 1), got {crop_bottom}')
    if resize is not None and (len(resize) != 2 or min(int(v) for v in resize) < 1):
        raise InputError(f'resize must be (width, height) > 0, got {resize}')
    if image_format not in IMAGE_FORMATS:
        raise InputError(f'image_format must be one of {sorted(IMAGE_FORMATS)}, got '
                         f'{image_format!r}')
    for name, offs in (('frame_offsets', offsets), ('test_frame_offsets', test_offsets)):
        if any(not isinstance(o, int) for o in offs):
            raise InputError(f'{name} must be integers, got {list(offs)}')


def convert(root: str | os.PathLike[str], out: str | os.PathLike[str], split: str = 'auto',
            split_dir: str | os.PathLike[str] | None = None, workers: int = 1,
            overwrite: bool = False, sample_gap: int = 2, frame_offsets: Sequence[int] = (-1, 1),
            test_frame_offsets: Sequence[int] = (-1,), val_mode: str = 'random',
            val_fraction: float = 0.1, seed: int = 8964,
            resize: Sequence[int] | None = None, image_format: str = 'jpg',
            jpeg_quality: int = 95, crop_bottom: float = CROP_BOTTOM,
            verify_images: bool = False, progress: bool = True, verbose: bool = True
            ) -> ConvertReport:
    """Convert a Cityscapes tree into sample lists, info files and test ground truth.

    Args:
        root: Cityscapes root with ``leftImg8bit_sequence/``, ``camera/`` and (for the test
            ground truth) ``disparity/``.
        out: output root (created); the layout is in the package docstring.
        split: ``'auto'`` (train/val from the train snippets, test = every annotated test
            frame) or the name of a split folder holding ManyDepth-format
            ``{train,val,test}_files.txt`` (e.g. ``'cityscapes'``, read from ``split_dir`` or
            ``ROOT/splits``); only the subsets with a file are written.
        workers: processes for scanning, ground truth and resizing; 1 = this process.
        overwrite: rescan cities and rewrite ground truth / images even when valid ones exist.
        sample_gap: frames between temporal neighbours (2: t-2, t, t+2 as SfMLearner/ManyDepth).
        frame_offsets: neighbours (in units of ``sample_gap``) a train/val target needs.
        test_frame_offsets: neighbours a test target needs (``(-1,)``: the previous frame for
            multi-frame models, as ManyDepth's evaluation).
        val_mode: ``'random'``: a seeded random ``val_fraction`` of the train snippets
            (ManyDepth's 90/10), or ``'official'``: the official val cities.
        val_fraction, seed: of the random val split.
        resize: ``(W, H)``: also write every used frame cropped and resized (SfMLearner stored
            1024x384) under ``OUT/images/<W>x<H>/`` and point the info files at them; None
            (default) = the dataset reads and crops the raw PNGs.
        image_format, jpeg_quality: of the resized images (``'jpg'``/``'png'``).
        crop_bottom: fraction of the image height cut at the bottom (the ego-car hood).
        verify_images: fully decode-check every frame (slow); default reads headers.
        progress: tqdm bars on stderr. verbose: print failures and the summary line.

    Returns:
        the :class:`ConvertReport`; problems (file + reason + samples lost) are also in
        ``OUT/failed.txt``. A sample whose frame, neighbour, camera JSON or disparity is
        missing or corrupt is skipped; the rest is written.

    Raises:
        InputError: bad arguments, missing root or split files, cities a split file names
            that the tree does not have (nothing written).
    """
    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    offsets = [int(o) for o in frame_offsets if int(o) != 0]
    test_offsets = [int(o) for o in test_frame_offsets if int(o) != 0]
    _check_args(workers, sample_gap, offsets, test_offsets, val_mode, val_fraction, resize,
                image_format, crop_bottom)
    if not root.is_dir():
        raise InputError(f'Cityscapes root {root} is not a directory')
    if not split or '/' in split or split.startswith('.'):
        raise InputError(f'bad split name {split!r}')
    report = ConvertReport(split=split)

    named: dict[str, list[SplitLine]] = {}
    if split == 'auto':
        use_splits = ['train', 'test'] + (['val'] if val_mode == 'official' else [])
    else:
        files = _find_split_files(split, split_dir, root)
        named = {subset: read_split_file(p) for subset, p in files.items()}
        use_splits = list(SPLITS)
    keys = [(s, c) for s in SPLITS if s in use_splits for c in find_cities(root, s)]
    if split == 'auto' and not any(s == 'train' for s, _ in keys):
        raise InputError(f'no cities under {root / SEQUENCE_DIR / "train"}: download '
                         'leftImg8bit_sequence_trainvaltest.zip and camera_trainvaltest.zip '
                         '(docs/datasets/cityscapes.md)')
    city_split = {c: s for s, c in keys}
    if named:
        named_cities = {ln.name.city for lines in named.values() for ln in lines}
        targets_by_subset = _named_targets(root, named, city_split)
        keys = [(s, c) for s, c in keys if c in named_cities]

    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    split_out = out / 'splits' / split
    split_out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(split_out)
    scans = scan_cities(root, out, keys, workers, overwrite, verify_images, progress, verbose,
                        report)
    if split == 'auto':
        targets_by_subset = _auto_targets(scans, offsets, sample_gap, val_mode, val_fraction,
                                          seed)

    problems = Problems()
    subset_offsets = {s: (test_offsets if s == 'test' else offsets) for s in SUBSETS}
    subsets: dict[str, list[Sample]] = {}
    for subset in SUBSETS:
        if subset not in targets_by_subset:
            continue
        samples, skipped = build_samples(targets_by_subset[subset], scans,
                                         subset_offsets[subset], sample_gap,
                                         need_disparity=subset == 'test', problems=problems)
        report.samples_skipped += skipped
        if subset == 'test':
            samples = _export_gt(root, out, samples, workers, overwrite, progress, verbose,
                                 report)
        subsets[subset] = samples
    report.failed[:0] = problems.as_failed()
    if verbose:
        for w, f, r in problems.as_failed()[:MAX_LISTED]:
            log_line(f'skipped: {w}: {f}: {r}')

    images = {'root': 'raw', 'dir': SEQUENCE_DIR, 'ext': '.png', 'cropped': False,
              'size': None}
    if resize is not None:
        size = (int(resize[0]), int(resize[1]))
        rel_dir, subsets = _resize_images(root, out, subsets, subset_offsets, sample_gap, size,
                                          crop_bottom, image_format, jpeg_quality, workers,
                                          overwrite, progress, verbose, report)
        images = {'root': 'out', 'dir': rel_dir, 'ext': IMAGE_FORMATS[image_format],
                  'cropped': True, 'size': list(size)}
    elif subsets:
        exts = {s.image_ext for v in subsets.values() for s in v}
        images['ext'] = exts.pop() if len(exts) == 1 else '.png'

    for subset in SUBSETS:
        if subset not in subsets:
            continue
        samples = subsets[subset]
        report.subsets[subset] = len(samples)
        if not samples:  # e.g. val with val_fraction 0: no files (and none left from before)
            for name in (f'{subset}_files.txt', f'{subset}_info.json'):
                if (split_out / name).exists():
                    (split_out / name).unlink()
            continue
        _write_counted(split_out / f'{subset}_files.txt',
                       ''.join(format_split_line(s.name) + '\n' for s in samples), report)
        info = build_info(root, split, subset, samples, subset_offsets[subset], sample_gap,
                          crop_bottom, images, gt=subset == 'test')
        _write_counted(split_out / f'{subset}_info.json', json.dumps(info, indent=1) + '\n',
                       report)
    _write_failed(out, report)
    report.seconds = time.perf_counter() - t0
    if verbose:
        print(report.summary(), flush=True)
    return report

