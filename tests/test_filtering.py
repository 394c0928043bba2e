"""apftools.sosfilt: forward against scipy, gradients against complex step and finite differences."""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.signal
from autograd.test_util import check_grads
from conftest import random_stable_sos, upsample_section

from apftools import ApftoolsError, sosfilt
from apftools.filtering import filter_columns, filter_stretched

H = 1e-30  # complex step


def traced_forward(sos, x):
    """sosfilt's output computed on the traced (compiled-kernel) path."""
    _, y = autograd.make_vjp(lambda s: sosfilt(s, x))(sos)
    return y


@pytest.mark.parametrize("shape", [(3000,), (2, 3000), (2, 3, 500)])
@pytest.mark.parametrize("n_sections", [1, 4, 9])
def test_forward_matches_scipy(shape, n_sections):
    rng = np.random.default_rng(n_sections)
    sos = random_stable_sos(rng, n_sections)
    x = rng.standard_normal(shape)
    expected = scipy.signal.sosfilt(sos, x)
    np.testing.assert_allclose(sosfilt(sos, x), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(traced_forward(sos, x), expected, rtol=0, atol=1e-12)


def complex_step_grad_sos(sos, x, weights):
    """d/d sos of sum(weights * sosfilt(sos, x)) by complex steps through scipy."""
    grad = np.zeros_like(sos)
    for index in np.ndindex(*sos.shape):
        if index[1] == 3:
            continue  # a0 must stay 1 for scipy
        step = sos.astype(complex)
        step[index] += 1j * H
        grad[index] = np.sum(weights * scipy.signal.sosfilt(step, x)).imag / H
    return grad


@pytest.mark.parametrize("max_radius", [0.9, 0.9999])
@pytest.mark.parametrize("shape", [(4000,), (2, 4000)])
def test_sos_gradient_matches_complex_step(max_radius, shape):
    rng = np.random.default_rng(7)
    sos = random_stable_sos(rng, 4, max_radius)
    sos[0, 4:] = -2 * max_radius * np.cos(0.01), max_radius**2  # one pole pair exactly at max_radius
    x = rng.standard_normal(shape)
    weights = rng.standard_normal(shape)
    grad = autograd.grad(lambda s: anp.sum(weights * sosfilt(s, x)))(sos)
    expected = complex_step_grad_sos(sos, x, weights)
    free = np.ones(6, bool)
    free[3] = False
    assert np.linalg.norm(grad[:, free] - expected[:, free]) <= 1e-9 * np.linalg.norm(expected[:, free])


def test_a0_gradient_is_the_lag_zero_term():
    # L depends on a0 through a0 y[n] + a1 y[n-1] + ... ; scaling (b, a) by (1 + e) leaves y
    # unchanged, so sum over b and a columns of coefficient * gradient must vanish.
    rng = np.random.default_rng(3)
    sos = random_stable_sos(rng, 3)
    x = rng.standard_normal(2000)
    grad = autograd.grad(lambda s: anp.sum(sosfilt(s, x) ** 2))(sos)
    np.testing.assert_allclose(np.sum(grad * sos, axis=1), 0.0, atol=1e-9 * np.abs(grad * sos).max())


@pytest.mark.parametrize("shape", [(3000,), (3, 1000)])
def test_signal_gradient_matches_directional_complex_step(shape):
    rng = np.random.default_rng(11)
    sos = random_stable_sos(rng, 5, 0.9999)
    x = rng.standard_normal(shape)
    weights = rng.standard_normal(shape)
    grad = autograd.grad(lambda v: anp.sum(weights * sosfilt(sos, v)))(x)
    for _ in range(3):
        direction = rng.standard_normal(shape)
        expected = np.sum(weights * scipy.signal.sosfilt(sos, x + 1j * H * direction)).imag / H
        np.testing.assert_allclose(np.sum(grad * direction), expected, rtol=1e-9)


def test_check_grads_float64():
    rng = np.random.default_rng(5)
    sos = random_stable_sos(rng, 3)
    x = rng.standard_normal((2, 300))

    def with_free_coefficients(free):  # a0 fixed at one, as scipy requires
        return anp.concatenate([free[:, :3], anp.ones((3, 1)), free[:, 3:]], axis=1)

    free = np.delete(sos, 3, axis=1)
    check_grads(lambda f: anp.sum(anp.sin(sosfilt(with_free_coefficients(f), x))), modes=["rev"], order=1)(free)
    check_grads(lambda v: anp.sum(anp.sin(sosfilt(sos, v))), modes=["rev"], order=1)(x)


@pytest.mark.parametrize("stretch", [2, 3, 5])
@pytest.mark.parametrize("n_samples", [1000, 1001, 1003])
def test_polyphase_equals_upsampled_lfilter(stretch, n_samples):
    rng = np.random.default_rng(stretch)
    sos = random_stable_sos(rng, 2)
    x = rng.standard_normal((n_samples, 2))
    expected = x.T
    for row in sos:
        expected = scipy.signal.lfilter(*upsample_section(row, stretch), expected, axis=-1)
    np.testing.assert_allclose(filter_stretched(sos, x, stretch), expected.T, rtol=0, atol=1e-12)


def test_traced_filter_columns_equals_scipy_bit_for_bit():
    # the compiled forward follows scipy's recursion operation for operation
    rng = np.random.default_rng(2)
    sos = random_stable_sos(rng, 3)
    x = rng.standard_normal((500, 4))
    _, y = autograd.make_vjp(lambda s: filter_columns(s, x))(sos)
    np.testing.assert_array_equal(y, scipy.signal.sosfilt(sos, x, axis=0))


@pytest.mark.parametrize(
    ("sos", "x", "error", "match"),
    [
        (np.ones((2, 5)), np.ones(10), ValueError, r"shape \(n_sections, 6\), got \(2, 5\)"),
        (np.array([[1, 0, 0, 2.0, 0, 0]]), np.ones(10), ValueError, r"a0\) should be all ones"),
        (np.array([[1, 0, 0, 1, np.nan, 0]]), np.ones(10), ValueError, "NaN or Inf"),
        (np.array([["a"] * 6]), np.ones(10), TypeError, "real array"),
        (np.array([[1, 0, 0, 1, 0, 0.0]]), np.ones((2, 0)), ValueError, "at least one sample"),
    ],
)
def test_bad_input_is_refused_when_traced(sos, x, error, match):
    # untraced calls are scipy's own, errors included (a drop-in); the traced path validates here
    with pytest.raises(error, match=match) as info:
        autograd.make_vjp(lambda xx: sosfilt(sos, xx))(x)
    assert isinstance(info.value, ApftoolsError)


def test_complex_signal_cannot_be_differentiated():
    sos = np.array([[0.5, 1, 0, 1, 0.5, 0]])
    with pytest.raises(TypeError, match="needs real x and zi; complex input is supported only untraced"):
        autograd.grad(lambda s: anp.sum(anp.abs(sosfilt(s, np.ones(8) * 1j))))(sos)
