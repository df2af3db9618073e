"""geo3d.models.ssl2d.losses._checks: each check passes good input through and names the loss,
the argument and the problem otherwise (NaN included)."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.models.ssl2d.losses._checks import (check_embeddings, check_min_batch,
                                               check_nonnegative, check_positive,
                                               check_same_shape)


def test_good_input_passes_through():
    z = torch.zeros(4, 3)
    assert check_embeddings('L', 'z', z) is z
    check_same_shape('L', 'a', z, 'b', torch.ones(4, 3))
    check_min_batch('L', 'z', 2, 2, 'needs a negative')
    assert check_positive('L', 't', 1) == 1.0 and isinstance(check_positive('L', 't', 1), float)
    assert check_nonnegative('L', 'w', 0) == 0.0


@pytest.mark.parametrize('call, msg', [
    (lambda: check_embeddings('NTXent', 'z_a', [1.0]), 'NTXent: z_a must be a torch.Tensor'),
    (lambda: check_embeddings('NTXent', 'z_a', torch.zeros(2)), 'z_a must have 2 dims, got shape (2,)'),
    (lambda: check_embeddings('NTXent', 'z_a', torch.zeros(2, 2, dtype=torch.long)), 'floating'),
    (lambda: check_same_shape('BT', 'z_a', torch.zeros(2, 3), 'z_b', torch.zeros(2, 4)),
     'BT: z_a has shape (2, 3) but z_b has shape (2, 4)'),
    (lambda: check_min_batch('DCL', 'z_a', 1, 2, 'no negatives'), 'DCL: z_a holds a batch of 1; at least 2'),
    (lambda: check_positive('NTXent', 'temperature', 0.0), 'temperature must be > 0, got 0.0'),
    (lambda: check_positive('NTXent', 'temperature', math.nan), 'temperature must be > 0'),
    (lambda: check_nonnegative('BT', 'lambda_offdiag', -1e-3), 'lambda_offdiag must be >= 0'),
])
def test_bad_input_is_named(call, msg):
    with pytest.raises(ValueError, match='') as err:
        call()
    assert msg in str(err.value)
