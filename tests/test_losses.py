"""Loss functions: values against numpy, gradients against the analytic form and finite differences."""

import autograd
import numpy as np
from autograd.test_util import check_grads

from apftools.losses import mse


def test_mse_value_and_gradient():
    rng = np.random.default_rng(0)
    y, target = rng.standard_normal((2, 3, 40))
    np.testing.assert_allclose(mse(y, target), np.mean((y - target) ** 2), rtol=1e-14)
    np.testing.assert_allclose(autograd.grad(mse)(y, target), 2 * (y - target) / y.size, rtol=1e-15)
    np.testing.assert_allclose(autograd.grad(mse, 1)(y, target), -2 * (y - target) / y.size, rtol=1e-15)
    check_grads(mse, modes=["rev"], order=1)(y, target)
