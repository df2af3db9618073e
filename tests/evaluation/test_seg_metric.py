"""mIoU metric against hand-computed values and a slow reference."""
import numpy as np
import pytest
import torch

from geo3d.evaluation import SemSegMetric, confusion_matrix, iou_from_confusion


def test_confusion_matrix_by_hand():
    gt = torch.tensor([0, 0, 1, 1, 2, -1, 2])
    pred = torch.tensor([0, 1, 1, 1, 0, 2, 2])
    cm = confusion_matrix(pred, gt, num_classes=3, ignore_index=-1)
    expected = np.array([[1, 1, 0],
                         [0, 2, 0],
                         [1, 0, 1]])
    np.testing.assert_array_equal(cm, expected)


def test_iou_by_hand():
    cm = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    r = iou_from_confusion(cm)
    # class 0: tp 1, fp 1, fn 1 -> 1/3; class 1: tp 2, fp 1, fn 0 -> 2/3; class 2: 1/(1+0+1)=1/2
    np.testing.assert_allclose(r['iou'], [1 / 3, 2 / 3, 1 / 2])
    assert r['mIoU'] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert r['allAcc'] == pytest.approx(4 / 6)
    assert r['mAcc'] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)


def test_absent_class_left_out_of_mean():
    cm = np.array([[3, 0, 0], [0, 0, 0], [1, 0, 2]])
    r = iou_from_confusion(cm)
    assert np.isnan(r['iou'][1])
    assert r['mIoU'] == pytest.approx((3 / 4 + 2 / 3) / 2)


def test_against_slow_reference():
    rng = np.random.default_rng(0)
    k = 5
    gt = rng.integers(-1, k, 2000)
    pred = rng.integers(0, k, 2000)
    cm = confusion_matrix(pred, gt, k)
    ious = []
    for c in range(k):
        valid = gt != -1
        tp = np.sum((gt == c) & (pred == c) & valid)
        fp = np.sum((gt != c) & (pred == c) & valid)
        fn = np.sum((gt == c) & (pred != c) & valid)
        ious.append(tp / (tp + fp + fn))
    np.testing.assert_allclose(iou_from_confusion(cm)['iou'], ious)


def test_metric_accumulates_over_samples_and_ignores():
    m = SemSegMetric(num_classes=2, ignore_index=-1, class_names=['a', 'b'])
    m.process({}, [{'pred': torch.tensor([0, 1]), 'gt': torch.tensor([0, 1])},
                   {'pred': torch.tensor([1, 1, 0]), 'gt': torch.tensor([0, -1, -1])}])
    out = m.compute_metrics(m.results)
    # cm = [[1, 1], [0, 1]] -> iou a = 1/2, b = 1/2
    assert out['mIoU'] == pytest.approx(0.5)
    assert out['allAcc'] == pytest.approx(2 / 3)


def test_bad_input():
    with pytest.raises(ValueError, match='points'):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match='outside'):
        confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), 2)
    m = SemSegMetric(num_classes=2)
    with pytest.raises(KeyError):
        m.process({}, [{'pred': torch.tensor([0])}])
