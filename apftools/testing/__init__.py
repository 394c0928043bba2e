r"""Assertions for testing filters: your own, in numpy, PyTorch or JAX (through a numpy wrapper), or apftools'.

Each raises ``AssertionError`` naming what failed (the section, the frequency,
the direction) and by how much; bad arguments raise
:class:`~apftools.ApftoolsValueError`.  Filters are given as second-order
sections in scipy's layout, ``(n_sections, 6)`` rows
:math:`(b_0, b_1, b_2, a_0, a_1, a_2)`; an implementation under test as a
callable ``process(x) -> y`` on a 1-D float64 array.  An apftools
:class:`~apftools.Cascade` gives its rows as ``cascade.sos(theta)`` (a
stretched section's row is its prototype's: stable and allpass exactly when
:math:`H(z^M)` is).

Only numpy and scipy are needed; :mod:`apftools.testing.strategies` adds
hypothesis strategies that draw such filters (``pip install apftools[testing]``).

Examples
--------
>>> import numpy as np, scipy.signal
>>> from apftools.testing import assert_stable, assert_lossless
>>> sos = scipy.signal.butter(4, 1000, fs=48000, output="sos")
>>> assert_stable(sos, margin=1e-3)
>>> assert_stable([[1.0, 0.0, 0.0, 1.0, -2.0, 1.01]])
Traceback (most recent call last):
    ...
AssertionError: section 0: pole radius 1.00498756 exceeds 1 - margin = 1 or reaches the unit circle (a1 = -2, a2 = 1.01)
"""

import math

import numpy as np
import scipy.signal
from scipy.special import gammaln

from ..errors import ApftoolsValueError

__all__ = ["pole_radii", "assert_stable", "assert_allpass", "assert_impulse_decays", "assert_bibo",
           "assert_lossless", "assert_gradients_match", "assert_quantization_robust"]


def _rows(sos):
    """``sos`` as float64 rows (n, 6) divided by their ``a0``; refused unless finite with ``a0 != 0``."""
    rows = np.asarray(sos, dtype=float)
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise ApftoolsValueError(f"sos must have shape (n_sections, 6), got {rows.shape}")
    if not np.all(np.isfinite(rows)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(rows), axis=1))[0])
        raise AssertionError(f"section {bad}: coefficients are not finite ({rows[bad].tolist()})")
    if np.any(rows[:, 3] == 0):
        raise ApftoolsValueError(f"section {int(np.flatnonzero(rows[:, 3] == 0)[0])}: a0 is 0")
    return rows / rows[:, 3:4]


def pole_radii(sos):
    r"""The largest pole radius of each section, from its coefficients alone (no root finding).

    For :math:`1 + a_1 z^{-1} + a_2 z^{-2}`: :math:`\sqrt{a_2}` for complex poles
    (:math:`a_1^2 < 4 a_2`), else :math:`(|a_1| + \sqrt{a_1^2 - 4 a_2}) / 2`
    (:math:`|a_1|` for a first-order section).  A section is stable when its
    radius is below 1, the biquad stability triangle :math:`|a_2| < 1,\ |a_1| < 1 + a_2`.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)

    Returns
    -------
    ndarray, shape (n_sections,)
    """
    rows = _rows(sos)
    a1, a2 = rows[:, 4], rows[:, 5]
    discriminant = a1 * a1 - 4.0 * a2
    return np.where(discriminant < 0, np.sqrt(np.abs(a2)), 0.5 * (np.abs(a1) + np.sqrt(np.abs(discriminant))))


def assert_stable(sos, margin=0.0):
    """Every section's poles lie at radius at most ``1 - margin``, and inside the unit circle (:func:`pole_radii`).

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)
    margin : float
        In [0, 1).  Below about ``sqrt(eps)`` of the dtype the filter runs
        in (3e-4 in float32), repeated poles near the circle split by more
        than the margin: such margins cannot be checked reliably.
    """
    if not 0.0 <= margin < 1.0:
        raise ApftoolsValueError(f"margin must lie in [0, 1), got {margin!r}")
    rows = _rows(sos)
    radii = pole_radii(rows)
    worst = int(np.argmax(radii)) if len(radii) else 0
    if len(radii) and (radii[worst] > 1.0 - margin or radii[worst] >= 1.0):
        raise AssertionError(f"section {worst}: pole radius {radii[worst]:.9g} exceeds 1 - margin = {1 - margin:.9g} "
                             f"or reaches the unit circle (a1 = {rows[worst, 4]:.9g}, a2 = {rows[worst, 5]:.9g})")


def assert_allpass(sos, atol=1e-9, n_freqs=4096):
    r"""Each section's numerator mirrors its denominator, and :math:`|H(e^{j\omega})| = 1` on a frequency grid.

    A section :math:`g (a_2 + a_1 z^{-1} + z^{-2}) / (1 + a_1 z^{-1} + a_2 z^{-2})`
    (first order: :math:`g (a_1 + z^{-1}) / (1 + a_1 z^{-1})`) is allpass
    with gain :math:`|g|`; the product of the gains must be 1 in magnitude.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)
    atol : float
        Tolerance of the coefficients' mirror (relative to the section's
        largest coefficient) and of :math:`|H|` (absolute).
    n_freqs : int
        Points from 0 to Nyquist where :math:`|H|` is checked.
    """
    rows = _rows(sos)
    gain = 1.0
    for i, (b0, b1, b2, _, a1, a2) in enumerate(rows):
        first_order = b2 == 0.0 and a2 == 0.0
        g = b1 if first_order else b2
        mirror = g * (np.array([a1]) if first_order else np.array([a2, a1]))
        given = np.array([b0]) if first_order else np.array([b0, b1])
        error = np.max(np.abs(given - mirror)) / max(1.0, np.max(np.abs(rows[i])))
        if error > atol:
            raise AssertionError(f"section {i}: the numerator ({b0:.9g}, {b1:.9g}, {b2:.9g}) does not mirror the "
                                 f"denominator (1, {a1:.9g}, {a2:.9g}) (off by {error:.3g}, tolerance {atol:g})")
        gain *= g
    if abs(abs(gain) - 1.0) > atol:
        raise AssertionError(f"the sections' gains multiply to {gain:.12g}, not +-1")
    w, h = scipy.signal.sosfreqz(rows, worN=n_freqs)
    worst = int(np.argmax(np.abs(np.abs(h) - 1.0)))
    if abs(abs(h[worst]) - 1.0) > atol:
        raise AssertionError(f"|H| = {abs(h[worst]):.12g} at {w[worst] / np.pi:.6g} x Nyquist, not 1 "
                             f"(tolerance {atol:g})")


def _impulse_bound(rows, n):
    r"""Upper bound of :math:`|h[k]|`, k < n, from the sections' pole radii and numerators.

    :math:`p` poles within radius :math:`r` give an all-pole response of at most
    :math:`\binom{k + p - 1}{p - 1} r^k`; a numerator of degree at most
    :math:`2S` and :math:`\ell_1` norm :math:`\|b\|_1 \le \prod_i \|b_i\|_1`
    scales that, at most :math:`r^{-2S}` earlier.
    """
    k = np.arange(n)
    radius = float(np.max(pole_radii(rows), initial=0.0))
    poles, degree = 2 * len(rows), 2 * len(rows)
    scale = float(np.prod(np.sum(np.abs(rows[:, :3]), axis=1)))
    if radius == 0.0:
        return np.where(k <= degree, scale, 0.0)
    log = gammaln(k + poles) - gammaln(poles) - gammaln(k + 1) + (k - degree) * math.log(radius)
    return scale * np.exp(np.minimum(log, 700.0))


def _reference(rows):
    """The filter of ``rows`` by scipy, as a ``process``."""
    return lambda x: scipy.signal.sosfilt(rows, x)


def _impulse(process, n):
    x = np.zeros(n)
    x[0] = 1.0
    y = np.asarray(process(x), dtype=float)
    if y.shape != x.shape:
        raise ApftoolsValueError(f"process must return an array of its input's shape {x.shape}, got {y.shape}")
    return y


def _length(rows, tol, max_samples):
    from ..structures import impulse_response_length

    radius = float(np.max(pole_radii(rows), initial=0.0))
    if radius >= 1.0:
        raise AssertionError(f"section {int(np.argmax(pole_radii(rows)))}: pole radius {radius:.6g} >= 1: the "
                             "impulse response does not decay")
    return min(max_samples, impulse_response_length(radius, 2 * len(rows), tol) + 2 * len(rows) + 1)


def assert_impulse_decays(sos, process=None, tol=1e-9, atol=1e-12, max_samples=1 << 20):
    """The impulse response stays within the bound its pole radii imply, until it has fallen below ``tol``.

    The bound (:func:`_impulse_bound`) holds for any filter with these
    coefficients, so an implementation that exceeds it at any sample is
    wrong: unstable, or not the filter its coefficients say.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)
        The coefficients the implementation claims.
    process : callable, optional
        The implementation under test, ``process(x) -> y``; default
        ``scipy.signal.sosfilt`` of ``sos``.
    tol : float
        Where the response counts as decayed, relative to the bound's scale.
    atol : float
        Rounding allowed above the bound, relative to the response's peak
        (float32 implementations need about 1e-6).
    max_samples : int
        Longest impulse response computed.
    """
    rows = _rows(sos)
    n = _length(rows, tol, max_samples)
    h = _impulse(process or _reference(rows), n)
    bound = _impulse_bound(rows, n)
    excess = np.abs(h) - bound - atol * max(np.max(np.abs(h)), 1e-300)
    worst = int(np.argmax(excess))
    if excess[worst] > 0:
        raise AssertionError(f"|h[{worst}]| = {abs(h[worst]):.6g} exceeds the bound {bound[worst]:.6g} that the pole "
                             f"radius {np.max(pole_radii(rows), initial=0.0):.6g} implies")


def assert_bibo(sos, process=None, tol=1e-9, rtol=1e-9, max_samples=1 << 20):
    r"""Bounded input, bounded output: the worst input of magnitude 1 gives at most :math:`\|h\|_1`.

    With :math:`h` the impulse response of the coefficients (scipy's
    ``sosfilt``) over :math:`N` samples, until it has decayed below ``tol``,
    the input :math:`x[k] = \mathrm{sign}\, h[N - 1 - k]` drives the output at
    sample :math:`N - 1` to :math:`\|h\|_1`, the largest any input within
    :math:`[-1, 1]` can give.  An implementation whose output exceeds that
    anywhere is not BIBO stable (or not this filter); one that falls short
    at :math:`N - 1` is not this filter.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)
    process : callable, optional
        The implementation under test; default ``scipy.signal.sosfilt``.
    tol, rtol, max_samples
        Where the response counts as decayed and the longest computed (as
        :func:`assert_impulse_decays`), and the relative tolerance on
        :math:`\|h\|_1`.
    """
    rows = _rows(sos)
    n = _length(rows, tol, max_samples)  # refuses poles on or outside the circle
    h = _impulse(_reference(rows), n)  # the coefficients' own response, whatever process does
    norm = float(np.sum(np.abs(h)))
    x = np.sign(h[::-1])
    process = process or _reference(rows)
    y = np.asarray(process(x), dtype=float)
    worst = int(np.argmax(np.abs(y)))
    if abs(y[worst]) > norm * (1.0 + rtol):
        raise AssertionError(f"an input within [-1, 1] gives |y[{worst}]| = {abs(y[worst]):.6g}, beyond the l1 norm "
                             f"of the impulse response, {norm:.6g}")
    if abs(y[-1]) < norm * (1.0 - rtol) - 1e-12:
        raise AssertionError(f"the input sign(h) reversed gives {y[-1]:.6g} at its end, not the l1 norm {norm:.6g}: "
                             "process is not the filter of these coefficients")


def assert_lossless(process, x, tail, rtol=1e-9):
    """Energy in equals energy out, once ``tail`` zeros let the response ring out (an allpass, or any lossless
    system).

    Parameters
    ----------
    process : callable
        ``process(x) -> y``, same length.
    x : array_like, shape (n_samples,)
    tail : int
        Zeros appended to ``x`` (for an apftools Cascade,
        ``cascade.impulse_response_length(theta)``).
    rtol : float
        Allowed relative difference of the energies.
    """
    x = np.asarray(x, dtype=float)
    padded = np.concatenate([x, np.zeros(int(tail))])
    y = np.asarray(process(padded), dtype=float)
    energy_in, energy_out = float(np.sum(x * x)), float(np.sum(y * y))
    if abs(energy_out - energy_in) > rtol * energy_in:
        raise AssertionError(f"energy out is {energy_out:.12g}, energy in {energy_in:.12g} (ratio "
                             f"{energy_out / energy_in if energy_in else float('inf'):.12g}, tolerance {rtol:g})")


def assert_gradients_match(f, x, grad=None, *, method="complex-step", directions=None, step=None, rtol=1e-6,
                           atol=1e-9, rng=0):
    r"""A gradient equals the derivative of ``f`` along ``directions``, by complex step or central differences.

    Complex step: :math:`f'(x) d \approx \operatorname{Im} f(x + j h d) / h`
    with :math:`h = 10^{-20}`, exact to rounding for an ``f`` analytic in its
    input (written with operations that accept complex numbers); central
    differences: :math:`(f(x + h d) - f(x - h d)) / 2h` with
    :math:`h = \epsilon^{1/3} \max(1, \|x\|_\infty)`, for any ``f``
    (a PyTorch or JAX function behind a numpy wrapper).

    Parameters
    ----------
    f : callable
        ``f(x) -> float``, or ``f(x) -> (float, gradient)`` when ``grad`` is None.
    x : array_like, shape (n,)
    grad : callable, optional
        ``grad(x) -> gradient``, the one under test.
    method : {"complex-step", "central"}
    directions : int or array_like, shape (k, n), optional
        Directions to check; an int draws that many random unit directions;
        default every coordinate for n <= 32, else 16 random directions.
    step : float, optional
        :math:`h`.
    rtol, atol : float
        Tolerance between the two derivatives.
    rng : int or numpy.random.Generator
        For random directions.

    References
    ----------
    J. R. R. A. Martins, P. Sturdza, J. J. Alonso, "The complex-step
    derivative approximation", ACM TOMS 29(3), 245-262, 2003.
    """
    x = np.asarray(x, dtype=float)
    if method not in ("complex-step", "central"):
        raise ApftoolsValueError(f"method must be 'complex-step' or 'central', got {method!r}")
    value = (lambda z: f(z)[0]) if grad is None else f
    gradient = np.asarray((f(x)[1] if grad is None else grad(x)), dtype=float).reshape(x.shape)
    if directions is None:
        directions = np.eye(x.size) if x.size <= 32 else 16
    if isinstance(directions, (int, np.integer)):
        d = np.random.default_rng(rng).standard_normal((int(directions), x.size))
        directions = d / np.linalg.norm(d, axis=1, keepdims=True)
    directions = np.asarray(directions, dtype=float).reshape(-1, x.size)
    for i, d in enumerate(directions):
        d = d.reshape(x.shape)
        analytic = float(np.sum(gradient * d))
        if method == "complex-step":
            h = step or 1e-20
            numeric = float(np.imag(value(x + 1j * h * d))) / h
        else:
            h = step or np.finfo(float).eps ** (1 / 3) * max(1.0, float(np.max(np.abs(x), initial=0.0)))
            numeric = (float(value(x + h * d)) - float(value(x - h * d))) / (2 * h)
        if abs(analytic - numeric) > atol + rtol * max(abs(analytic), abs(numeric)):
            raise AssertionError(f"direction {i}: the gradient gives {analytic:.12g}, {method} gives {numeric:.12g} "
                                 f"(difference {analytic - numeric:.3g})")


def assert_quantization_robust(sos, dtype="float32", margin=0.0):
    """The coefficients, rounded to ``dtype``, still give poles within ``1 - margin``.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)
        The coefficients as designed (float64).
    dtype : str or numpy.dtype
        What the implementation stores them in.
    margin : float
        As :func:`assert_stable`.
    """
    rows = _rows(sos)
    rounded = np.asarray(sos, dtype=float).astype(dtype).astype(float)
    try:
        assert_stable(rounded, margin)
    except AssertionError as error:
        i = int(str(error).split()[1].rstrip(":"))
        raise AssertionError(f"in {np.dtype(dtype).name}: {error}; in float64 its radius is "
                             f"{pole_radii(rows)[i]:.9g}") from None
