r"""Compiled stage-1 objectives (numba, float64): the same numbers on every machine.

:func:`apftools.fit.fit_frequency` evaluates its two losses thousands of
times from many starts, and L-BFGS amplifies any difference in the last bit
of one evaluation into another optimum.  Evaluated with numpy, those bits
depended on the machine: matrix products ran in the BLAS kernel the CPU
picked (``OPENBLAS_CORETYPE``) and ``tanh``, ``cos`` and ``arctan2`` in
numpy's SIMD code for the CPU's features, so the shipped pair fitted
another model, even another polarity, on another machine.  Here every loop
is written out in a fixed order, with no BLAS, no reassociation (numba
compiles without fast-math, so no fused multiply-adds either) and the C
library's ``tanh``, ``cos``, ``sin``, ``tan``, ``atan``, ``exp`` and
``log``, which are the same on every x86-64 machine with FMA and the same
libm.

The losses are those of :mod:`apftools.fit` (its docstrings give the
equations); :class:`apftools.fit.ResponseModel` is the numpy reference they
are tested against.  Parameters map to coefficients as
:meth:`apftools.Cascade.sos_jacobian` maps them (:mod:`apftools.structures`,
whose table the caller passes in as ``table``), with derivatives by complex
step.  The phase enters only through :math:`e^{j r_f}`, as products of the
sections' denominators, so no ``arctan2`` is needed per section: the loss
needs the phase modulo :math:`2\pi`.

``cache=True`` keeps the machine code beside this file, so the compilation
(a few seconds) happens once per machine.
"""

import cmath
import math

import numba
import numpy as np

#: Complex step of the parameter derivatives (Squire and Trapp, SIAM Review 40(1), 1998).
STEP = 1e-30


@numba.njit(cache=True, nogil=True)
def _cmax(x, y):  # by real part, keeping the chosen value's derivative (numpy's maximum on complex numbers)
    return x if x.real >= y.real else y


@numba.njit(cache=True, nogil=True)
def _cmin(x, y):
    return x if x.real <= y.real else y


@numba.njit(cache=True, nogil=True)
def _denormalise(u, low, high, log, margin):
    """:meth:`apftools.structures.ParamRange.denormalise` of a complex ``u``."""
    t = 0.5 * (1.0 + (1.0 - margin) * u)
    if log:
        return low * cmath.exp(t * cmath.log(high / low))
    return low + t * (high - low)


@numba.njit(cache=True, nogil=True)
def _section(order, stretch, warped, fs, t_r, t_fc, t_a, table):
    """Denominator ``(a1, a2)`` of one section from its (complex) unconstrained parameters.

    ``table``: R_MAX, A_MAX, fc low and high (Hz), EDGE_MARGIN, FC_NYQUIST_FRACTION
    (:mod:`apftools.structures`); R and a on linear scales, fc on a log scale, as in its ``RANGES``.
    """
    r_max, a_max, fc_low, fc_high, margin, nyquist = table[0], table[1], table[2], table[3], table[4], table[5]
    a = _denormalise(cmath.tanh(t_a), -a_max, a_max, False, margin) if warped else 0j
    fs_proto = fs / stretch
    r = r_max ** stretch
    low = complex(fc_low)
    high = complex(min(fc_high, nyquist * fs_proto / 2.0))
    if order == 1:
        rho, beta = (1.0 + r) / (1.0 - r), (1.0 - a) / (1.0 + a)
        low = _cmax(low, fs_proto / math.pi * cmath.atan(beta / rho))
        high = _cmin(high, fs_proto / math.pi * cmath.atan(beta * rho))
        fc = _denormalise(cmath.tanh(t_fc), low, high, True, margin)
        t = cmath.tan(math.pi * fc / fs_proto)
        k = (t - 1.0) / (t + 1.0)
        return (k + a) / (1.0 + k * a), 0j
    abs_a = cmath.sqrt(a * a + 1e-24)
    radius = _denormalise(cmath.tanh(t_r), 0.0, (r - abs_a) / (1.0 - abs_a * r), False, margin)
    fc = _denormalise(cmath.tanh(t_fc), low, high, True, margin)
    c = radius * radius
    d = -2.0 * radius * cmath.cos(2.0 * math.pi * fc / fs_proto)
    n0 = c + a * d + a * a
    n1 = 2.0 * a * (1.0 + c) + d * (1.0 + a * a)
    n2 = 1.0 + a * d + c * a * a
    return n1 / n2, n0 / n2


@numba.njit(cache=True, nogil=True)
def coefficients(theta, kinds, columns, fs, table, a, da):
    """Denominators of every section and their derivatives in the section's own parameters.

    ``kinds`` (S, 3): order, stretch, warped; ``columns`` (S, 3): the theta
    index of R, fc and a (-1 where the kind has none).  Writes ``a`` (S, 2):
    :math:`a_1, a_2`, and ``da`` (S, 2, 3): their derivatives in R, fc, a.
    """
    for s in range(kinds.shape[0]):
        values = np.zeros(3, np.complex128)
        for j in range(3):
            if columns[s, j] >= 0:
                values[j] = theta[columns[s, j]]
        for j in range(-1, 3):  # -1: unstepped, for the values
            if j >= 0 and columns[s, j] < 0:
                da[s, 0, j] = da[s, 1, j] = 0.0
                continue
            stepped = values.copy()
            if j >= 0:
                stepped[j] += 1j * STEP
            a1, a2 = _section(kinds[s, 0], kinds[s, 1], kinds[s, 2], fs, stepped[0], stepped[1], stepped[2], table)
            if j < 0:
                a[s, 0], a[s, 1] = a1.real, a2.real
            else:
                da[s, 0, j], da[s, 1, j] = a1.imag / STEP, a2.imag / STEP


@numba.njit(cache=True, nogil=True)
def _sign(x):
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


@numba.njit(cache=True, nogil=True)
def _excess(a1, a2, rho):
    """:func:`apftools.fit._excess` for one section."""
    scale = 1.0 - rho
    c1 = max(a2 - rho * rho, 0.0) / scale
    c2 = max(abs(a1) - rho - a2 / rho, 0.0) / scale
    return c1 * c1 + c2 * c2, 2.0 * c2 / scale * _sign(a1), 2.0 * c1 / scale - 2.0 * c2 / scale / rho


@numba.njit(cache=True, nogil=True)
def _ring(a1, a2, rho, rho_low, c_on, c_off):
    """:func:`apftools.fit.ring_penalty` of one section: ``(penalty, d / d a1, d / d a2)``."""
    excess, e_a1, e_a2 = _excess(a1, a2, rho)
    low, l_a1, l_a2 = _excess(a1, a2, rho_low)
    complex_poles = a1 * a1 < 4.0 * a2
    root = math.sqrt(a2) if complex_poles else 1.0
    cos = -a1 / (2.0 * root) if complex_poles else -_sign(a1)
    x = min(max((c_off - cos) / (c_off - c_on), 0.0), 1.0)
    gate = x * x * (3.0 - 2.0 * x)
    d_cos = 6.0 * x * (1.0 - x) / (c_on - c_off) if complex_poles else 0.0
    g_a1, g_a2 = d_cos * -1.0 / (2.0 * root), d_cos * a1 / (4.0 * root ** 3)
    return (gate * excess + (1.0 - gate) * low,
            gate * e_a1 + (1.0 - gate) * l_a1 + (excess - low) * g_a1,
            gate * e_a2 + (1.0 - gate) * l_a2 + (excess - low) * g_a2)


@numba.njit(cache=True, nogil=True)
def basis(omega, stretch):
    r""":math:`e^{-jkM_s\omega_f}`, shape (2, S, F), from the C library's ``cos`` and ``sin``."""
    e = np.empty((2, len(stretch), len(omega)), np.complex128)
    for k in range(2):
        for s in range(len(stretch)):
            for f in range(len(omega)):
                x = (k + 1) * stretch[s] * omega[f]
                e[k, s, f] = complex(math.cos(x), -math.sin(x))
    return e


@numba.njit(cache=True, nogil=True)
def phasors(h):
    r""":math:`e^{j \arg h_f}` of a measured response ``h`` (1 where it is 0); negated, the inverted polarity's."""
    out = np.empty(len(h), np.complex128)
    for f in range(len(h)):
        m = abs(h[f])
        out[f] = h[f] / m if m > 0 else 1.0 + 0j
    return out


@numba.njit(cache=True, nogil=True)
def objective(params, mode, targets, target_of_row, weights, omega, e, signs, n_poles, kinds, columns, fs, table,
              rho, rho_low, c_on, c_off, ring_weight, scale):
    r"""Loss and gradient of every row of ``(theta, tau)`` ``params`` (B, P + 1).

    ``mode`` 0: the phase loss :math:`L_\varphi`, ``targets`` (T, F) complex
    measured phasors (:func:`phasors`), row ``b`` against
    ``targets[target_of_row[b]]``; ``mode`` 1: the group-delay loss
    :math:`L_\tau` with soft-L1 ``scale`` (samples), ``targets`` the measured
    group delay (real parts used).  ``e``: :func:`basis`; ``signs``: +1 per
    causal, -1 per anti-causal section; ``n_poles``: the signed sum of their
    orders times stretches.  ``rho`` (S,) empty for no ring penalty.
    Returns ``(values (B,), gradients (B, P + 1))``.
    """
    n_rows, n = params.shape
    n_sections, n_freqs = e.shape[1], e.shape[2]
    values = np.zeros(n_rows)
    grads = np.zeros((n_rows, n))
    a = np.empty((n_sections, 2))
    da = np.empty((n_sections, 2, 3))
    inverse = np.empty(n_sections, np.complex128)
    qs = np.empty(n_sections, np.complex128)
    acc = np.empty((n_sections, 2))
    for b in range(n_rows):
        theta = params[b, :n - 1]
        tau = params[b, n - 1]
        coefficients(theta, kinds, columns, fs, table, a, da)
        acc[:] = 0.0
        value, d_tau = 0.0, 0.0
        target = targets[target_of_row[b]]
        for f in range(n_freqs):
            product = 1.0 + 0j  # prod_s A_s^(sign_s), whose argument is sum_s sign_s arg A_s
            q_sum = 0.0
            for s in range(n_sections):
                den = 1.0 + a[s, 0] * e[0, s, f] + a[s, 1] * e[1, s, f]
                inverse[s] = 1.0 / den
                if mode == 0:
                    product *= den if signs[s] > 0 else den.conjugate()
                else:
                    qs[s] = (a[s, 0] * e[0, s, f] + 2.0 * a[s, 1] * e[1, s, f]) * inverse[s]
                    q_sum += signs[s] * kinds[s, 1] * qs[s].real
            if mode == 0:
                # e^{j r} = target e^{-j phase} e^{j omega tau}, phase = -n_poles omega - 2 arg(product)
                unit = product / abs(product)
                x = n_poles * omega[f] + omega[f] * tau
                rotation = target[f] * unit * unit * complex(math.cos(x), math.sin(x))
                value += weights[f] * 0.5 * abs(rotation - 1.0) ** 2  # 1 - cos r, exact near r = 0
                slope = weights[f] * rotation.imag
                d_tau += slope * omega[f]
                for s in range(n_sections):  # d phase / d a_k = -2 sign Im(e_k / A); gradient = -slope d phase
                    for k in range(2):
                        acc[s, k] += slope * 2.0 * signs[s] * (e[k, s, f] * inverse[s]).imag
            else:
                r = target[f].real - (n_poles - 2.0 * q_sum) - tau
                root = math.sqrt(1.0 + (r / scale) ** 2)
                value += weights[f] * scale * scale * (root - 1.0)
                dr = -weights[f] * r / root
                d_tau += dr
                for s in range(n_sections):
                    for k in range(2):  # d tau / d a_k = -2 sign M Re(e_k (k - q) / A)
                        acc[s, k] += dr * -2.0 * signs[s] * kinds[s, 1] * (
                            e[k, s, f] * inverse[s] * (k + 1.0 - qs[s])).real
        grads[b, n - 1] = d_tau
        for s in range(n_sections):
            d1, d2 = acc[s, 0], acc[s, 1]
            if len(rho):
                penalty, p1, p2 = _ring(a[s, 0], a[s, 1], rho[s], rho_low[s], c_on[s], c_off[s])
                value += ring_weight * penalty
                d1 += ring_weight * p1
                d2 += ring_weight * p2
            for j in range(3):
                if columns[s, j] >= 0:
                    grads[b, columns[s, j]] += d1 * da[s, 0, j] + d2 * da[s, 1, j]
        values[b] = value
    return values, grads


@numba.njit(cache=True, nogil=True)
def response(thetas, omega, e, signs, n_poles, kinds, columns, fs, table):
    r"""``(phasors, group_delay)`` of every row of ``thetas`` (B, P): :math:`e^{j\varphi_f}` and
    :math:`\tau_f` in samples, shapes (B, F)."""
    n_rows = thetas.shape[0]
    n_sections, n_freqs = e.shape[1], e.shape[2]
    out = np.empty((n_rows, n_freqs), np.complex128)
    delay = np.empty((n_rows, n_freqs))
    a = np.empty((n_sections, 2))
    da = np.empty((n_sections, 2, 3))
    for b in range(n_rows):
        coefficients(thetas[b], kinds, columns, fs, table, a, da)
        for f in range(n_freqs):
            product = 1.0 + 0j
            q_sum = 0.0
            for s in range(n_sections):
                den = 1.0 + a[s, 0] * e[0, s, f] + a[s, 1] * e[1, s, f]
                product *= den if signs[s] > 0 else den.conjugate()
                q_sum += signs[s] * kinds[s, 1] * ((a[s, 0] * e[0, s, f] + 2.0 * a[s, 1] * e[1, s, f]) / den).real
            unit = product / abs(product)
            x = -n_poles * omega[f]
            out[b, f] = unit.conjugate() * unit.conjugate() * complex(math.cos(x), math.sin(x))
            delay[b, f] = n_poles - 2.0 * q_sum
    return out, delay
