"""A user's own folder of images as a dataset (2D self-supervised training, probes, features).

Two layouts (``layout='auto'`` tells them apart):

* class folders, ``root/<class>/**/<image>`` — the label is the index of ``<class>`` among the
  sorted class names (or in ``classes``), as torchvision's ``ImageFolder``;
* flat, ``root/**/<image>`` without class folders — unlabelled, ``gt_label = -1``.

Files with a common image extension (torchvision's ``IMG_EXTENSIONS``: jpg, jpeg, png, ppm, bmp,
pgm, tif, tiff, webp; case-insensitive) are used, in sorted path order; hidden folders are
skipped. Images are decoded with Pillow and converted to RGB.

``__getitem__`` returns ``pipeline(results)`` with ``results`` (the same keys as
:class:`~geo3d.datasets.DigitsDataset`, so the 2D SSL pipelines and configs apply unchanged)::

    img         (3, H, W) uint8 tensor (resized to ``image_size`` when given)
    gt_label    int class index, -1 for a flat folder
    sample_idx  int, the position in the dataset (0..len - 1)
    img_path    str, the file
    ori_shape   (H, W) of the file
"""
from __future__ import annotations

import os
from typing import Any, Callable, Literal, Sequence

import torch
from mmengine.dataset import BaseDataset
from PIL import Image, UnidentifiedImageError
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
from torchvision.transforms.v2 import functional as TF

from geo3d.registry import DATASETS
from geo3d.utils.errors import DataNotFoundError

from .transforms.point import build_pipeline

__all__ = ['ImageFolderDataset', 'ImageReadError', 'IMG_EXTENSIONS']

Layout = Literal['auto', 'class_folders', 'flat']


class ImageReadError(OSError):
    """An image file exists but cannot be decoded."""


def _visible_dirs(root: str) -> list[str]:
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith('.'))


def _walk_images(root: str, extensions: tuple[str, ...]) -> list[str]:
    """Image files under ``root`` (recursive, sorted, hidden folders skipped)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
        out += [os.path.join(dirpath, f) for f in filenames
                if not f.startswith('.') and has_file_allowed_extension(f, extensions)]
    return sorted(out)


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Images of a folder, with labels from class sub-folders or without (see the module doc).

    Args:
        data_root: the folder.
        layout: ``'auto'`` (class folders when ``data_root`` holds only sub-folders, flat when
            it holds only images; both is an error), ``'class_folders'`` (top-level files are
            ignored) or ``'flat'`` (every image below ``data_root``, no labels).
        classes: class folder names to use, in label order (default: all, sorted). Only with
            class folders.
        extensions: accepted file extensions (default torchvision's ``IMG_EXTENSIONS``).
        image_size: resize every image to ``(H, W)`` (an int = square; antialiased bilinear) so
            that images of different sizes batch; None keeps the file's size.
        pipeline: transform configs (geo3d's ``TRANSFORMS``) or callables applied to the results
            dict; empty = the dict itself.
        test_mode, lazy_init, serialize_data: as mmengine's ``BaseDataset``.
        max_samples: keep the first ``max_samples`` images (sorted order).

    Raises:
        DataNotFoundError: ``data_root`` is missing, holds no image, or a class folder is empty.
        ValueError: ambiguous layout, unknown class names, bad arguments.
        ImageReadError: (at ``__getitem__``) a file cannot be decoded; names the file.
    """

    METAINFO: dict = {'dataset': 'image_folder'}

    def __init__(self, data_root: str, layout: Layout = 'auto',
                 classes: Sequence[str] | None = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 image_size: int | Sequence[int] | None = None,
                 pipeline: Sequence[dict | Callable] | None = None, test_mode: bool = False,
                 max_samples: int | None = None, lazy_init: bool = False,
                 serialize_data: bool = True) -> None:
        if layout not in ('auto', 'class_folders', 'flat'):
            raise ValueError(f"ImageFolderDataset: layout must be 'auto', 'class_folders' or "
                             f"'flat', got {layout!r}")
        if classes is not None and layout == 'flat':
            raise ValueError("ImageFolderDataset: classes= needs class folders, not layout='flat'")
        exts = tuple(e.lower() if e.startswith('.') else f'.{e.lower()}' for e in extensions)
        if not exts:
            raise ValueError('ImageFolderDataset: extensions is empty')
        if image_size is not None:
            size = (int(image_size),) * 2 if isinstance(image_size, int) else \
                tuple(int(s) for s in image_size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f'ImageFolderDataset: image_size must be an int or (H, W) of '
                                 f'positive ints, got {image_size!r}')
            self.image_size: tuple[int, int] | None = size  # type: ignore[assignment]
        else:
            self.image_size = None
        if max_samples is not None and int(max_samples) < 1:
            raise ValueError(f'ImageFolderDataset: max_samples must be >= 1, got {max_samples}')
        self.layout_arg = layout
        self.layout: str | None = None
        self.class_arg = None if classes is None else [str(c) for c in classes]
        self.extensions = exts
        self.max_samples = max_samples
        self.classes: tuple[str, ...] = ()
        super().__init__(ann_file='', data_root=data_root,
                         pipeline=list(build_pipeline(pipeline).transforms),
                         test_mode=test_mode, lazy_init=lazy_init,
                         serialize_data=serialize_data)

    # ------------------------------------------------------------------ index
    def _resolve_layout(self, root: str) -> str:
        if self.layout_arg != 'auto':
            return self.layout_arg
        dirs = _visible_dirs(root)
        top_images = [e.name for e in os.scandir(root) if e.is_file() and
                      not e.name.startswith('.') and
                      has_file_allowed_extension(e.name, self.extensions)]
        if dirs and top_images:
            raise ValueError(f'ImageFolderDataset: {root!r} holds both images (e.g. '
                             f'{sorted(top_images)[0]!r}) and sub-folders (e.g. {dirs[0]!r}); '
                             "pass layout='class_folders' (sub-folders are classes, top-level "
                             "images ignored) or layout='flat' (all images, no labels)")
        return 'class_folders' if dirs else 'flat'

    def load_data_list(self) -> list[dict]:
        root = self.data_root
        if not root or not os.path.isdir(root):
            raise DataNotFoundError(f'ImageFolderDataset: data_root {root!r} is not a directory')
        self.layout = self._resolve_layout(root)
        if self.layout == 'flat':
            items = [(p, -1) for p in _walk_images(root, self.extensions)]
            self.classes = ()
        else:
            found = _visible_dirs(root)
            names = self.class_arg if self.class_arg is not None else found
            if not names:
                raise DataNotFoundError(f'ImageFolderDataset: {root!r} has no class folders')
            unknown = [c for c in names if c not in found]
            if unknown:
                raise ValueError(f'ImageFolderDataset: classes {unknown} have no folder in '
                                 f'{root!r} (found {found})')
            if len(set(names)) != len(names):
                raise ValueError(f'ImageFolderDataset: classes has duplicates: {names}')
            items = []
            for label, name in enumerate(names):
                files = _walk_images(os.path.join(root, name), self.extensions)
                if not files:
                    raise DataNotFoundError(
                        f'ImageFolderDataset: class folder {os.path.join(root, name)!r} holds no '
                        f'image with an extension in {list(self.extensions)}')
                items += [(f, label) for f in files]
            self.classes = tuple(names)
        if not items:
            raise DataNotFoundError(f'ImageFolderDataset: no image with an extension in '
                                    f'{list(self.extensions)} under {root!r}')
        items.sort(key=lambda it: it[0])
        if self.max_samples is not None:
            items = items[:int(self.max_samples)]
        self._metainfo.update(classes=self.classes, num_classes=len(self.classes),
                              layout=self.layout, data_root=root)
        return [{'img_path': p, 'gt_label': int(t)} for p, t in items]

    # ------------------------------------------------------------------ samples
    def load_image(self, path: str, idx: int | None = None) -> torch.Tensor:
        """The image at ``path`` as a (3, H, W) uint8 RGB tensor (before any resize).

        Raises:
            ImageReadError: the file cannot be opened or decoded (the message names it).
        """
        where = f' (sample {idx})' if idx is not None else ''
        try:
            with Image.open(path) as im:
                rgb = im.convert('RGB')   # forces the full decode
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise ImageReadError(f'ImageFolderDataset: cannot read image {path!r}{where}: '
                                 f'{type(e).__name__}: {e}') from e
        return TF.pil_to_tensor(rgb)

    def get_data(self, idx: int) -> dict[str, Any]:
        """The results dict of sample ``idx`` before the pipeline."""
        info = self.get_data_info(idx)
        img = self.load_image(info['img_path'], info['sample_idx'])
        info['ori_shape'] = tuple(img.shape[-2:])
        if self.image_size is not None and tuple(img.shape[-2:]) != self.image_size:
            img = TF.resize(img, list(self.image_size), antialias=True)
        info['img'] = img
        return info

    def prepare_data(self, idx: int) -> Any:
        return self.pipeline(self.get_data(idx))
