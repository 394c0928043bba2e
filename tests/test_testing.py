"""apftools.testing: its assertions on known filters, and proof that its example tests find real bugs.

Each bug below is one a filter author makes; each example test is written as a
user would write it with the kit. Run on the wrong implementation, the test
fails within the CI profile's examples (hypothesis's default 100); run on the
right one, it passes 1000.
"""

import subprocess
import sys
from fractions import Fraction

import numpy as np
import numpy.polynomial.polynomial as P
import pytest
import scipy.signal
from hypothesis import find, given, settings
from hypothesis import strategies as st

from apftools import ApftoolsValueError, Cascade, structures
from apftools.testing import (assert_allpass, assert_bibo, assert_gradients_match, assert_impulse_decays,
                              assert_lossless, assert_quantization_robust, assert_stable, pole_radii)
from apftools.testing.strategies import sample_rates, signals, stable_polynomials, stable_sos

BUTTERWORTH = scipy.signal.butter(6, 1000, fs=48000, output="sos")


def test_the_assertions_need_neither_hypothesis_nor_numba():
    code = "import sys, apftools.testing; print(sorted({'hypothesis', 'numba'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_pole_radii_are_the_roots_radii_for_every_kind_of_pair():
    rows = np.array([[1, 0, 0, 1, -1.8, 0.9], [1, 0, 0, 1, -0.2, -0.48], [1, 0, 0, 1, 1.2, 0.36], [1, 0, 0, 1, 0.5, 0]])
    expected = [max(abs(np.roots(row[3:]))) for row in rows]  # complex 0.949, real 0.8 and -0.6, repeated 0.6
    np.testing.assert_allclose(pole_radii(rows), expected, rtol=1e-12)
    np.testing.assert_allclose(pole_radii(2 * rows), expected, rtol=1e-12)  # a0 != 1 is divided out


def test_the_assertions_pass_good_filters_and_name_the_section_and_value_of_bad_ones():
    assert_stable(BUTTERWORTH, margin=1e-3)
    assert_impulse_decays(BUTTERWORTH)
    assert_bibo(BUTTERWORTH)
    cascade = Cascade("2x2w,1w,2sw2,1", 48000)
    theta = cascade.init(3)
    assert_allpass(cascade.sos(theta))
    with pytest.raises(AssertionError, match=r"section 1: pole radius 1.0049875\d* exceeds"):
        assert_stable([BUTTERWORTH[0], [1, 0, 0, 1, -2.0, 1.01]])
    with pytest.raises(AssertionError, match="reaches the unit circle"):
        assert_stable([[1, 0, 0, 1, -2.0, 1.0]])  # a double pole at z = 1: not BIBO stable
    with pytest.raises(AssertionError, match="section 0: the numerator .* does not mirror"):
        assert_allpass(BUTTERWORTH)
    with pytest.raises(AssertionError, match=r"exceeds the bound"):  # sosfilt of the coefficients, run unstable
        assert_impulse_decays([[1, 0, 0, 1, -1.8, 0.9]], process=lambda x: scipy.signal.lfilter([1], [1, -1.8, 1.1], x))
    with pytest.raises(AssertionError, match="beyond the l1 norm|not the filter"):
        assert_bibo(BUTTERWORTH, process=lambda x: 2 * scipy.signal.sosfilt(BUTTERWORTH, x))
    with pytest.raises(AssertionError, match=r"energy out is 40, energy in 10 \(ratio 4,"):
        assert_lossless(lambda x: 2 * x, np.ones(10), 0)
    with pytest.raises(AssertionError, match=r"in float32: section 0: pole radius 1 exceeds .* float64 .* 0.99999999"):
        assert_quantization_robust([[1, 0, 0, 1, -1.99999998, 0.99999998]], "float32")
    with pytest.raises(ApftoolsValueError, match=r"shape \(n_sections, 6\)"):
        assert_stable([1, 0, 0, 1, 0, 0])


def test_gradients_are_checked_by_complex_step_and_central_differences():
    def f(x):
        return np.sum(np.sin(x) * x**2)

    x = np.linspace(-1.0, 1.0, 40)  # over 32 coordinates: 16 random directions
    for method in ("complex-step", "central"):
        assert_gradients_match(f, x, lambda x: np.cos(x) * x**2 + 2 * x * np.sin(x), method=method)
        with pytest.raises(AssertionError, match=rf"direction \d+: the gradient gives .*, {method} gives"):
            assert_gradients_match(f, x, lambda x: np.cos(x) * x**2, method=method)
    assert_gradients_match(lambda x: (f(x), np.cos(x) * x**2 + 2 * x * np.sin(x)), x[:3])  # value and gradient


# ------------------------------------------------------------------ the strategies build what they promise
@settings(max_examples=300)  # pole pairs of every kind, each dtype: 300 draws cover them several times over
@given(st.sampled_from(["float32", "float64"]).flatmap(
    lambda dtype: st.tuples(st.just(dtype), stable_sos(margin=1e-3, dtype=dtype, numerator="allpass"))))
def test_stable_sos_keeps_the_margin_after_rounding_and_mirrors_allpass_numerators(case):
    dtype, sos = case
    assert sos.dtype == dtype
    assert_stable(sos, margin=1e-3)
    assert_allpass(sos.astype(float), atol=1e-6 if dtype == "float32" else 1e-9)


@settings(max_examples=100)  # integers over one range: 100 cover its ends and middle
@given(sample_rates())
def test_sample_rates_give_every_section_the_parameter_tables_whole_fc_range(fs):
    assert structures.fc_bounds(2, float(fs), 1, 0.0) == (structures.RANGES["fc"].low, structures.RANGES["fc"].high)


def test_sample_rates_shrink_to_the_lowest_rate_with_the_whole_fc_range():
    lowest = find(sample_rates(), lambda rate: True)
    assert structures.fc_bounds(2, lowest - 1.0, 1, 0.0)[1] < structures.RANGES["fc"].high  # one lower caps fc


def step_down(a):
    """Reflection coefficients of the polynomial ``a`` (Schur-Cohn), in exact rational arithmetic: its roots lie
    inside the unit circle exactly when every one is inside (-1, 1).  Neither root finding (its error near clustered
    roots is about eps**(1/multiplicity)) nor float step-down (it divides by 1 - k**2 at every order) is exact."""
    a, ks = [Fraction(c) / Fraction(a[0]) for c in a], []
    for m in range(len(a) - 1, 0, -1):
        k = a[m]
        ks.append(k)
        if abs(k) >= 1:
            break
        a = [(a[i] - k * a[m - i]) / (1 - k * k) for i in range(m)]
    return ks


@settings(max_examples=100)  # exact arithmetic costs up to 0.1 s a polynomial of order 16; 100 cover orders 1-16
@given(stable_polynomials(order=(1, 16), margin=1e-3))
def test_stable_polynomials_of_any_order_have_their_roots_within_the_margin(a):
    rho = Fraction(1) - Fraction(1, 1000)
    scaled = [Fraction(float(c)) / rho**i for i, c in enumerate(a)]  # roots within 1 - margin: these within 1
    assert all(abs(k) < 1 for k in step_down(scaled))


# ------------------------------------------------------------------ bugs, and the example tests that catch them
def allpass_filter(sos, x):
    """A user's allpass: scipy's sosfilt of mirrored sections."""
    return scipy.signal.sosfilt(sos, x)


def allpass_filter_a1_sign(sos, x):
    """Bug: the recursion's a1 enters with the wrong sign (a DF-II loop written as y += a1 * y[n-1])."""
    sos = np.array(sos, dtype=float)
    sos[:, 4] *= -1
    return scipy.signal.sosfilt(sos, x)


def lossless_test(implementation):
    @given(stable_sos(margin=1e-2, numerator="allpass"), signals())
    def test_my_allpass_is_lossless(sos, x):
        tail = 6 * len(sos) * int(np.ceil(np.log(1e-12) / np.log(max(np.max(pole_radii(sos)), 1e-3))))
        assert_lossless(lambda signal: implementation(sos, signal), x, tail, rtol=1e-9)

    return test_my_allpass_is_lossless


def warped_allpass2(R, fc, warp, fs, sign=-1.0):
    """A user's warped second-order allpass: the prototype with z^-1 -> (z^-1 - warp) / (1 - warp z^-1), multiplied
    out; ``sign=+1`` is the bug of substituting (z^-1 - warp) / (1 + warp z^-1), which is no allpass."""
    c, d = R * R, -2 * R * np.cos(2 * np.pi * fc / fs)
    top, bottom = np.array([-warp, 1.0]), np.array([1.0, sign * warp])  # numerator and denominator of the map

    def substitute(coefficients):  # sum_k p_k top^k bottom^(2-k), in ascending powers of z^-1
        terms = [p * P.polymul(P.polypow(top, k), P.polypow(bottom, 2 - k)) for k, p in enumerate(coefficients)]
        return np.sum([np.pad(t, (0, 3 - len(t))) for t in terms], axis=0)

    b, a = substitute([c, d, 1.0]), substitute([1.0, d, c])
    return np.concatenate([b, a]) / a[0]


def warped_test(sign):
    @given(st.floats(0.0, 0.99), st.floats(20.0, 20000.0), st.floats(-0.9, 0.9))
    def test_my_warped_section_is_an_allpass(R, fc, warp):
        assert_allpass([warped_allpass2(R, fc, warp, 48000.0, sign)], atol=1e-9)

    return test_my_warped_section_is_an_allpass


def resonator(bandwidth, angle, dtype="float32", margin=0.0):
    """A user's resonator stored in ``dtype``: poles at radius ``1 - bandwidth`` and ``angle``; the fixed design keeps
    ``margin`` from the circle."""
    r = 1.0 - max(bandwidth, margin)
    return np.array([[1.0, 0.0, 0.0, 1.0, -2 * r * np.cos(angle), r * r]], dtype=dtype)


def quantization_test(margin):
    @given(st.floats(0.0, 0.1, exclude_min=True), st.floats(0.0, np.pi))
    def test_my_float32_resonator_stays_stable(bandwidth, angle):
        assert_quantization_robust(resonator(bandwidth, angle, margin=margin).astype(float), "float32", margin=0.0)

    return test_my_float32_resonator_stays_stable


def group_delay_loss(theta, freqs=np.linspace(0.1, 3.0, 9), target=np.linspace(1.0, 3.0, 9)):
    r"""A user's differentiable first-order allpasses :math:`c_i = 0.9 \tanh \theta_i`: squared error of their
    summed group delay, :math:`\tau_i = (1 - c^2) / (1 + 2 c \cos\omega + c^2)` samples."""
    c = 0.9 * np.tanh(theta)[:, None]
    tau = np.sum((1 - c**2) / (1 + 2 * c * np.cos(freqs) + c**2), axis=0)
    return np.sum((tau - target) ** 2)


def group_delay_gradient(theta, chain=True, freqs=np.linspace(0.1, 3.0, 9), target=np.linspace(1.0, 3.0, 9)):
    """Its gradient; ``chain=False`` is the bug of a missing term, dc/dtheta."""
    c = 0.9 * np.tanh(theta)[:, None]
    denominator = 1 + 2 * c * np.cos(freqs) + c**2
    tau = np.sum((1 - c**2) / denominator, axis=0)
    d_tau = (-2 * c * denominator - (1 - c**2) * (2 * np.cos(freqs) + 2 * c)) / denominator**2
    d_c = 0.9 * (1 - np.tanh(theta) ** 2) if chain else 1.0
    return np.sum(2 * (tau - target) * d_tau, axis=1) * d_c


def gradient_test(chain):
    @given(st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=6).map(np.array))
    def test_my_gradient_is_exact(theta):
        assert_gradients_match(group_delay_loss, theta, lambda t: group_delay_gradient(t, chain), rtol=1e-8,
                               atol=1e-12)

    return test_my_gradient_is_exact


def allpass2(r, angle, mirrored=True):
    """A user's second-order allpass; ``mirrored=False`` is the bug of copying a1 into the numerator negated."""
    a1, a2 = -2 * r * np.cos(angle), r * r
    return [a2, a1 if mirrored else -a1, 1.0, 1.0, a1, a2]


def mirror_test(mirrored):
    @given(st.floats(0.0, 0.999), st.floats(0.0, np.pi))
    def test_my_allpass_is_an_allpass(r, angle):
        assert_allpass([allpass2(r, angle, mirrored)])

    return test_my_allpass_is_an_allpass


BUGS = {  # name: (the example test of the right implementation, of the wrong one)
    "a1 sign": (lossless_test(allpass_filter), lossless_test(allpass_filter_a1_sign)),
    "warped substitution": (warped_test(-1.0), warped_test(+1.0)),
    "float32 direct form": (quantization_test(1e-3), quantization_test(0.0)),
    "missing gradient term": (gradient_test(True), gradient_test(False)),
    "unmirrored numerator": (mirror_test(True), mirror_test(False)),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_the_example_tests_catch_each_bug_and_pass_the_fix(bug):
    right, wrong = BUGS[bug]
    with pytest.raises(AssertionError):
        settings(max_examples=100)(wrong)()  # hypothesis's default: what the CI profile runs
    settings(max_examples=1000)(right)()  # the bar for the right implementations
