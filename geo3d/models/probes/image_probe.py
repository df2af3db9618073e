"""Linear and k-NN evaluation of a frozen image backbone (features extracted once).

Protocol (the usual SSL evaluation on small datasets, e.g. SimCLR's CIFAR logistic-regression
probe and DINO's k-NN):

1. the backbone is frozen (eval mode: BatchNorm uses running statistics) and the features
   (B, C) of every train / val / test image are computed once, without augmentation;
2. **linear**: the features are standardised with the training mean/std and a multinomial
   logistic regression ``min_W,b mean_i CE(W x_i + b, y_i) + (lambda / 2) ||W||^2`` is fitted
   on the training features with full-batch L-BFGS (a convex problem, so the optimum does not
   depend on the optimiser; it equals scikit-learn's ``LogisticRegression(C=1 / (lambda N))``).
   With several ``weight_decay`` values the one with the best val accuracy is kept and test
   accuracy is reported for it;
3. **k-NN**: cosine similarity to the training features, the k most similar vote for their
   label with weight ``exp(sim / T)`` (DINO's ``eval_knn.py``: k = 20, T = 0.07;
   :func:`~geo3d.models.probes.knn_probe.knn_classify`).

Features are held in memory (N x C floats per split).
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from geo3d.registry import DATASETS, FUNCTIONS, MODELS

from .knn_probe import knn_classify
from .weights import DEFAULT_PREFIXES, load_backbone_weights

__all__ = ['LinearClassifier', 'fit_linear_probe', 'top1_accuracy', 'extract_image_features',
           'build_eval_loader', 'ImageLinearProbe', 'run_image_probe']


class LinearClassifier(nn.Module):
    """Standardisation + ``nn.Linear``: (N, C) features -> (N, K) logits.

    Args:
        mean, std: (C,) feature statistics of the training set (buffers).
        num_classes: K.
    """

    def __init__(self, mean: Tensor, std: Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer('mean', mean.detach().clone())
        self.register_buffer('std', std.detach().clone())
        self.linear = nn.Linear(mean.shape[0], num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def standardize(self, feats: Tensor) -> Tensor:
        return (feats - self.mean) / self.std

    def forward(self, feats: Tensor) -> Tensor:
        return self.linear(self.standardize(feats))


def _check_features(feats: Tensor, labels: Tensor, num_classes: int, name: str) -> None:
    if not isinstance(feats, Tensor) or feats.ndim != 2 or not feats.is_floating_point():
        raise ValueError(f'{name}: features must be a floating (N, C) tensor, got '
                         f'{getattr(feats, "shape", type(feats).__name__)}')
    if not isinstance(labels, Tensor) or labels.shape != (feats.shape[0],):
        raise ValueError(f'{name}: labels must be ({feats.shape[0]},), got '
                         f'{getattr(labels, "shape", type(labels).__name__)}')
    if feats.shape[0] == 0:
        raise ValueError(f'{name}: no samples')
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f'{name}: labels must lie in [0, {num_classes}), got '
                         f'[{int(labels.min())}, {int(labels.max())}]')


def fit_linear_probe(feats: Tensor, labels: Tensor, num_classes: int,
                     weight_decay: float = 1e-4, max_iter: int = 1000, tolerance: float = 1e-7,
                     standardize: bool = True) -> LinearClassifier:
    """Multinomial logistic regression on fixed features by full-batch L-BFGS.

    Minimises ``mean_i CE(W x~_i + b, y_i) + (weight_decay / 2) ||W||_F^2`` (bias not
    penalised), x~ the standardised features.

    Args:
        feats: (N, C) training features. labels: (N,) int labels in [0, num_classes).
        num_classes: K.
        weight_decay: lambda >= 0.
        max_iter: L-BFGS iterations at most.
        tolerance: stop when the gradient's max-abs falls below it.
        standardize: use the training mean/std (else mean 0, std 1).

    Returns:
        the fitted :class:`LinearClassifier` (on ``feats``' device and dtype).
    """
    _check_features(feats, labels, num_classes, 'fit_linear_probe')
    if weight_decay < 0:
        raise ValueError(f'fit_linear_probe: weight_decay must be >= 0, got {weight_decay}')
    if standardize:
        mean = feats.mean(0)
        std = feats.std(0, unbiased=False).clamp_min(1e-6)
    else:
        mean, std = feats.new_zeros(feats.shape[1]), feats.new_ones(feats.shape[1])
    clf = LinearClassifier(mean, std, num_classes).to(feats.device, feats.dtype)
    x = clf.standardize(feats)
    y = labels.long().to(feats.device)
    opt = torch.optim.LBFGS(clf.linear.parameters(), lr=1.0, max_iter=max_iter,
                            tolerance_grad=tolerance, tolerance_change=1e-12, history_size=20,
                            line_search_fn='strong_wolfe')

    def closure() -> Tensor:
        opt.zero_grad()
        w = clf.linear.weight
        loss = F.cross_entropy(clf.linear(x), y) + 0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return clf


def top1_accuracy(pred: Tensor, labels: Tensor) -> float:
    """Fraction of ``pred == labels`` ((N,) each)."""
    if pred.shape != labels.shape or pred.numel() == 0:
        raise ValueError(f'top1_accuracy: pred {tuple(pred.shape)} and labels '
                         f'{tuple(labels.shape)} must be equal, non-empty shapes')
    return float((pred.cpu() == labels.cpu()).float().mean())


@torch.no_grad()
def extract_image_features(backbone: nn.Module, loader: Iterable[dict],
                           preprocessor: nn.Module) -> tuple[Tensor, Tensor]:
    """Features and labels of every batch of ``loader``.

    Args:
        backbone: (B, 3, H, W) -> (B, C); run in eval mode (its mode is restored after).
        loader: batches ``{'inputs': images, 'data_samples': {'gt_label': ...}}`` (see
            :class:`~geo3d.datasets.transforms.PackImageViews`); for views, view 0 is used.
        preprocessor: e.g. ``ImageViewsDataPreprocessor`` (moves to the device, normalises).

    Returns:
        feats (N, C) float32 and labels (N,) int64, on the CPU.
    """
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    try:
        for data in loader:
            batch = preprocessor(data, False)
            x = batch['inputs']
            if x.ndim == 5:
                x = x[:, 0]
            samples = batch.get('data_samples')
            if not isinstance(samples, dict) or 'gt_label' not in samples:
                raise ValueError("extract_image_features: the loader must give "
                                 "data_samples['gt_label'] (PackImageViews meta_keys)")
            with torch.autocast(x.device.type, enabled=False):
                feats.append(backbone(x).float().cpu())
            labels.append(torch.as_tensor(samples['gt_label']).long().cpu())
    finally:
        backbone.train(was_training)
    if not feats:
        raise ValueError('extract_image_features: the loader gave no batch')
    return torch.cat(feats), torch.cat(labels)


def build_eval_loader(cfg: dict) -> DataLoader:
    """A deterministic DataLoader (no shuffling, no dropped samples) from an mmengine-style
    dataloader config: ``dict(dataset=..., batch_size=..., num_workers=...,
    collate_fn=dict(type='default_collate'))``; the sampler entry is ignored."""
    cfg = copy.deepcopy(dict(cfg))
    if 'dataset' not in cfg:
        raise ValueError(f'build_eval_loader: the dataloader config has no dataset: {cfg!r}')
    dataset = cfg['dataset']
    if isinstance(dataset, dict):
        dataset = DATASETS.build(dataset)
    collate = dict(cfg.get('collate_fn') or dict(type='default_collate'))
    collate_fn = FUNCTIONS.get(collate.pop('type'))
    if collate:
        import functools
        collate_fn = functools.partial(collate_fn, **collate)
    workers = int(cfg.get('num_workers', 0))
    return DataLoader(dataset, batch_size=int(cfg.get('batch_size', 64)), shuffle=False,
                      num_workers=workers, collate_fn=collate_fn, drop_last=False,
                      persistent_workers=False)


@MODELS.register_module()
class ImageLinearProbe(nn.Module):
    """Frozen image backbone + linear (logistic regression) and k-NN evaluation.

    Args:
        backbone: backbone config ((B, 3, H, W) -> (B, C)).
        num_classes: K.
        backbone_checkpoint: checkpoint with the backbone weights (``backbone.*`` keys of a
            geo3d SSL checkpoint, ...); None keeps the random initialisation (the baseline).
        checkpoint_prefixes: key prefixes tried in the checkpoint.
        data_preprocessor: default ``ImageViewsDataPreprocessor`` (use the pre-training's
            normalisation).
        weight_decay: lambda of the logistic regression, or several (selected on val).
        max_iter: L-BFGS iterations.
        knn_k, knn_temperature: k-NN vote (``knn_temperature=None``: majority vote).
    """

    def __init__(self, backbone: dict, num_classes: int, backbone_checkpoint: str | None = None,
                 checkpoint_prefixes: Sequence[str] = DEFAULT_PREFIXES,
                 data_preprocessor: dict | None = None,
                 weight_decay: float | Sequence[float] = 1e-4, max_iter: int = 1000,
                 knn_k: int = 20, knn_temperature: float | None = 0.07) -> None:
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f'ImageLinearProbe: num_classes must be >= 2, got {num_classes}')
        if int(knn_k) < 1:
            raise ValueError(f'ImageLinearProbe: knn_k must be >= 1, got {knn_k}')
        self.backbone = MODELS.build(backbone)
        self.loaded_prefix: str | None = None
        if backbone_checkpoint:
            self.loaded_prefix = load_backbone_weights(self.backbone, backbone_checkpoint,
                                                       checkpoint_prefixes)
        self.backbone.requires_grad_(False).eval()
        self.data_preprocessor = MODELS.build(
            data_preprocessor or dict(type='ImageViewsDataPreprocessor'))
        decays = [weight_decay] if isinstance(weight_decay, (int, float)) else list(weight_decay)
        if not decays or any(d < 0 for d in decays):
            raise ValueError(f'ImageLinearProbe: weight_decay must be >= 0 (or a non-empty list '
                             f'of such), got {weight_decay}')
        self.weight_decays = [float(d) for d in decays]
        self.num_classes = int(num_classes)
        self.max_iter = int(max_iter)
        self.knn_k, self.knn_temperature = int(knn_k), knn_temperature
        self.backbone_checkpoint = backbone_checkpoint

    def train(self, mode: bool = True) -> 'ImageLinearProbe':
        super().train(mode)
        self.backbone.eval()
        return self

    def features(self, loader: Iterable[dict]) -> tuple[Tensor, Tensor]:
        """(N, C) frozen features and (N,) labels of a loader."""
        return extract_image_features(self.backbone, loader, self.data_preprocessor)

    def linear_and_knn(self, train: tuple[Tensor, Tensor], evals: dict[str, tuple[Tensor, Tensor]]
                       ) -> dict[str, Any]:
        """Fit the probe(s) on ``train`` features and score every split of ``evals``.

        The weight decay is selected on ``evals['val']`` when several are given (else the
        first split). Returns ``{'<split>/linear_top1', '<split>/knn_top1', 'weight_decay',
        'val_top1_per_weight_decay', 'num_train', 'feature_dim'}``.
        """
        x, y = train
        _check_features(x, y, self.num_classes, 'ImageLinearProbe (train)')
        device = self.data_preprocessor.device
        x = x.to(device)
        select = 'val' if 'val' in evals else next(iter(evals))
        best, per_decay = None, {}
        for wd in self.weight_decays:
            clf = fit_linear_probe(x, y.to(device), self.num_classes, wd, self.max_iter)
            vx, vy = evals[select]
            acc = top1_accuracy(clf(vx.to(device)).argmax(1), vy)
            per_decay[wd] = acc
            if best is None or acc > best[0]:
                best = (acc, wd, clf)
        assert best is not None
        clf = best[2]
        out: dict[str, Any] = {'weight_decay': best[1], 'val_top1_per_weight_decay': per_decay,
                               'num_train': int(x.shape[0]), 'feature_dim': int(x.shape[1])}
        for name, (ex, ey) in evals.items():
            _check_features(ex, ey, self.num_classes, f'ImageLinearProbe ({name})')
            out[f'{name}/linear_top1'] = top1_accuracy(clf(ex.to(device)).argmax(1), ey)
            pred = knn_classify(ex.to(device), x, y.to(device), self.num_classes, self.knn_k,
                                self.knn_temperature)
            out[f'{name}/knn_top1'] = top1_accuracy(pred, ey)
            out[f'num_{name}'] = int(ex.shape[0])
        return out

    def evaluate(self, train_loader: Iterable[dict], val_loader: Iterable[dict],
                 test_loader: Iterable[dict] | None = None) -> dict[str, Any]:
        """Extract the features of every split once, then :meth:`linear_and_knn`."""
        train = self.features(train_loader)
        evals = {'val': self.features(val_loader)}
        if test_loader is not None:
            evals['test'] = self.features(test_loader)
        return self.linear_and_knn(train, evals)


def run_image_probe(cfg: Any, checkpoint: str | None,
                    device: str | torch.device | None = None) -> dict[str, Any]:
    """The image probe of a config (``tools/linear_probe.py`` with an ``ImageLinearProbe``
    model): features of ``train_dataloader``, ``val_dataloader`` and, when present,
    ``test_dataloader`` (each with its own deterministic pipeline), then linear + k-NN.

    Args:
        cfg: the config (``model`` of type ``ImageLinearProbe``); ``randomness.seed`` seeds
            torch before the backbone is built (the random initialisation of the baseline).
        checkpoint: backbone checkpoint, None = random initialisation.
        device: default CUDA when available.

    Returns:
        :meth:`ImageLinearProbe.linear_and_knn`'s dict plus ``checkpoint``.
    """
    model_cfg = copy.deepcopy(dict(cfg['model']))
    if model_cfg.get('type') != 'ImageLinearProbe':
        raise ValueError(f"run_image_probe: model type must be ImageLinearProbe, got "
                         f"{model_cfg.get('type')!r}")
    model_cfg['backbone_checkpoint'] = checkpoint
    device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    seed = (cfg.get('randomness') or {}).get('seed')
    if seed is not None:  # the random-init baseline is reproducible (and varied by the seed)
        torch.manual_seed(int(seed))
    probe = MODELS.build(model_cfg).to(device)
    loaders = [build_eval_loader(cfg['train_dataloader']),
               build_eval_loader(cfg['val_dataloader'])]
    if cfg.get('test_dataloader'):
        loaders.append(build_eval_loader(cfg['test_dataloader']))
    result = probe.evaluate(*loaders)
    result['checkpoint'] = checkpoint or 'none'
    return result
