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

:func:`minimize` runs the fit's L-BFGS (:mod:`apftools.lbfgs` is its numpy
reference) with no Python between evaluations.  Inside an evaluation, the
loops over frequencies hold no sums, so the compiler runs them in SIMD lanes
(elementwise IEEE arithmetic gives the same bits on any vector width); sums
over frequencies run in a fixed order (:func:`_dot`), and the per-frequency
sines and cosines are fdlibm's polynomials (:func:`sincos`), vectorised too.
Against the numpy evaluation and its batched L-BFGS, the fit runs about four
times faster.

``cache=True`` keeps the machine code beside this file, so the compilation
(a few seconds) happens once per machine.
"""

import cmath
import math

import numba
import numpy as np

#: Complex step of the parameter derivatives (Squire and Trapp, SIAM Review 40(1), 1998).
STEP = 1e-30
#: How every kernel here compiles: cached, without the GIL, and with numpy's division (no Python check for a
#: zero divisor, which kept divisions out of SIMD lanes).
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _cmax(x, y):  # by real part, keeping the chosen value's derivative (numpy's maximum on complex numbers)
    return x if x.real >= y.real else y


@_jit
def _cmin(x, y):
    return x if x.real <= y.real else y


@_jit
def _denormalise(u, low, high, log, margin):
    """:meth:`apftools.structures.ParamRange.denormalise` of a complex ``u``."""
    t = 0.5 * (1.0 + (1.0 - margin) * u)
    if log:
        return low * cmath.exp(t * cmath.log(high / low))
    return low + t * (high - low)


@_jit
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


@_jit
def coefficients(theta, kinds, columns, fs, table, a, da):
    """Denominators of every section and their derivatives in the section's own parameters.

    By complex step: the imaginary part of an evaluation stepped by :data:`STEP` in one parameter is the
    derivative, its real part the value (:math:`h^2 = 10^{-60}` away).  ``kinds`` (S, 3): order, stretch,
    warped; ``columns`` (S, 3): the theta index of R, fc and a (-1 where the kind has none).  Writes ``a``
    (S, 2): :math:`a_1, a_2`, and ``da`` (S, 2, 3): their derivatives in R, fc, a.
    """
    for s in range(kinds.shape[0]):
        values = np.zeros(3, np.complex128)
        for j in range(3):
            if columns[s, j] >= 0:
                values[j] = theta[columns[s, j]]
        for j in range(3):
            if columns[s, j] < 0:
                da[s, 0, j] = da[s, 1, j] = 0.0
                continue
            stepped = values.copy()
            stepped[j] += 1j * STEP
            a1, a2 = _section(kinds[s, 0], kinds[s, 1], kinds[s, 2], fs, stepped[0], stepped[1], stepped[2], table)
            a[s, 0], a[s, 1] = a1.real, a2.real
            da[s, 0, j], da[s, 1, j] = a1.imag / STEP, a2.imag / STEP


@_jit
def _sign(x):
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


@_jit
def _excess(a1, a2, rho):
    """:func:`apftools.fit._excess` for one section."""
    scale = 1.0 - rho
    c1 = max(a2 - rho * rho, 0.0) / scale
    c2 = max(abs(a1) - rho - a2 / rho, 0.0) / scale
    return c1 * c1 + c2 * c2, 2.0 * c2 / scale * _sign(a1), 2.0 * c1 / scale - 2.0 * c2 / scale / rho


@_jit
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


@_jit
def basis(omega, stretch):
    r""":math:`e^{-jkM_s\omega_f}` for k = 1, 2 from the C library's ``cos`` and ``sin``: real and imaginary
    parts, shape (2, 2, S, F), contiguous along the frequencies for the kernels' loops."""
    e = np.empty((2, 2, len(stretch), len(omega)))
    for k in range(2):
        for s in range(len(stretch)):
            for f in range(len(omega)):
                x = (k + 1) * stretch[s] * omega[f]
                e[0, k, s, f], e[1, k, s, f] = math.cos(x), -math.sin(x)
    return e


@_jit
def phasors(h):
    r""":math:`e^{j \arg h_f}` of a measured response ``h`` (1 where it is 0); negated, the inverted polarity's."""
    out = np.empty(len(h), np.complex128)
    for f in range(len(h)):
        m = abs(h[f])
        out[f] = h[f] / m if m > 0 else 1.0 + 0j
    return out


@_jit
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
    values = np.zeros(n_rows)
    grads = np.zeros((n_rows, n))
    work = _work(e.shape[2], e.shape[3])
    for b in range(n_rows):
        values[b] = _loss(params[b], grads[b], mode, targets[target_of_row[b]], weights, omega, e, signs, n_poles,
                          kinds, columns, fs, table, rho, rho_low, c_on, c_off, ring_weight, scale, *work)
    return values, grads


@_jit
def _work(n_sections, n_freqs):
    """Scratch arrays of :func:`_loss`: a (S, 2), da (S, 2, 3), acc (S, 2), per section and frequency the
    reciprocal of the denominator and (group delay) its q (4, S, F), per frequency (6, F)."""
    return (np.empty((n_sections, 2)), np.empty((n_sections, 2, 3)), np.empty((n_sections, 2)),
            np.empty((4, n_sections, n_freqs)), np.empty((6, n_freqs)))


#: Cody-Waite splitting of pi / 2 (fdlibm's e_rem_pio2.c: 33 + 33 + 53 bits, so k times the first two parts
#: is exact for the |k| < 2^20 the losses meet) and fdlibm's minimax coefficients of sin and cos on
#: [-pi/4, pi/4] (k_sin.c, k_cos.c).
PIO2 = (1.57079632673412561417e+00, 6.07710050630396597660e-11, 2.02226624879595063154e-21)
SIN = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
       2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
COS = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
       -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)


@_jit
def sincos(x, c, s):
    """``c, s = cos(x), sin(x)`` element by element, within about an ulp of the C library's for
    :math:`|x| < 10^5`: fdlibm's reduction and polynomials in plain arithmetic, which the compiler runs in
    SIMD lanes (the C library's are one call per value) with the same bits on any vector width."""
    p1, p2, p3 = PIO2
    s1, s2, s3, s4, s5, s6 = SIN
    c1, c2, c3, c4, c5, c6 = COS
    for f in range(len(x)):
        k = np.floor(x[f] * 0.63661977236758134308 + 0.5)  # the nearest multiple of pi / 2
        r = ((x[f] - k * p1) - k * p2) - k * p3
        z = r * r
        sine = r + z * r * (s1 + z * (s2 + z * (s3 + z * (s4 + z * (s5 + z * s6)))))
        half = 0.5 * z
        w = 1.0 - half
        cosine = w + (((1.0 - w) - half) + z * z * (c1 + z * (c2 + z * (c3 + z * (c4 + z * (c5 + z * c6))))))
        q = k - 4.0 * np.floor(0.25 * k)  # the quadrant, 0 to 3
        odd = q == 1.0 or q == 3.0
        cx, sx = (sine, cosine) if odd else (cosine, sine)
        c[f] = -cx if q == 1.0 or q == 2.0 else cx
        s[f] = -sx if q >= 2.0 else sx


@_jit
def _dot(x, y):
    r""":math:`\sum_f x_f y_f` in four interleaved partial sums added in a fixed order: the same bits on every
    machine, and four times the additions in flight of one running sum."""
    n = len(x)
    s0 = s1 = s2 = s3 = 0.0
    top = n - n % 4
    for f in range(0, top, 4):
        s0 += x[f] * y[f]
        s1 += x[f + 1] * y[f + 1]
        s2 += x[f + 2] * y[f + 2]
        s3 += x[f + 3] * y[f + 3]
    for f in range(top, n):
        s0 += x[f] * y[f]
    return (s0 + s1) + (s2 + s3)


@_jit
def _loss(row, grad, mode, target, weights, omega, e, signs, n_poles, kinds, columns, fs, table, rho, rho_low,
          c_on, c_off, ring_weight, scale, a, da, acc, section, per_freq):
    r""":func:`objective` of one row ``(theta, tau)``: returns the loss, writes its gradient into ``grad``.

    Complex arithmetic is written out in real and imaginary parts: :math:`1 / A` as :math:`\bar A / |A|^2`
    (one real division) and :math:`e^{2j\arg P}` as :math:`P^2 / |P|^2` (no square root).  The loops over
    frequencies hold no sum, so the compiler runs them in SIMD lanes (the same operations, so the same bits,
    on any vector width); every sum over frequencies is :func:`_dot`'s.
    """
    n = len(row)
    n_sections, n_freqs = e.shape[2], e.shape[3]
    grad[:] = 0.0
    tau = row[n - 1]
    coefficients(row[:n - 1], kinds, columns, fs, table, a, da)
    i_re, i_im, q_re, q_im = section[0], section[1], section[2], section[3]
    p_re, p_im, slope = per_freq[0], per_freq[1], per_freq[2]
    p_re[:] = 1.0 - mode  # mode 0: prod_s A_s^(sign_s), whose argument is sum_s sign_s arg A_s; 1: sum of q's
    p_im[:] = 0.0
    for s in range(n_sections):
        a1, a2, sign, stretch = a[s, 0], a[s, 1], signs[s], kinds[s, 1]
        e1r, e1i, e2r, e2i = e[0, 0, s], e[1, 0, s], e[0, 1, s], e[1, 1, s]
        ir, ii, qr, qi = i_re[s], i_im[s], q_re[s], q_im[s]
        for f in range(n_freqs):
            d_re = 1.0 + a1 * e1r[f] + a2 * e2r[f]
            d_im = a1 * e1i[f] + a2 * e2i[f]
            m = 1.0 / (d_re * d_re + d_im * d_im)
            ir[f] = d_re * m
            ii[f] = -d_im * m
        if mode == 0:  # times conj(1 / A) = A / |A|^2, of A's argument (the magnitude drops out below)
            for f in range(n_freqs):
                c_im = -sign * ii[f]
                re = p_re[f] * ir[f] - p_im[f] * c_im
                p_im[f] = p_re[f] * c_im + p_im[f] * ir[f]
                p_re[f] = re
        else:
            for f in range(n_freqs):
                n_re, n_im = a1 * e1r[f] + 2.0 * a2 * e2r[f], a1 * e1i[f] + 2.0 * a2 * e2i[f]
                qr[f] = n_re * ir[f] - n_im * ii[f]
                qi[f] = n_re * ii[f] + n_im * ir[f]
                p_re[f] += sign * stretch * qr[f]
    value, d_tau = 0.0, 0.0
    if mode == 0:
        cos, sin = per_freq[4], per_freq[5]
        for f in range(n_freqs):
            cos[f] = n_poles * omega[f] + omega[f] * tau
        sincos(cos, cos, sin)
        for f in range(n_freqs):
            # e^{j r} = target e^{-j phase} e^{j omega tau}, phase = -n_poles omega - 2 arg(product)
            m = 1.0 / (p_re[f] * p_re[f] + p_im[f] * p_im[f])
            u_re, u_im = (p_re[f] * p_re[f] - p_im[f] * p_im[f]) * m, 2.0 * p_re[f] * p_im[f] * m  # e^{2j arg P}
            c, sn = cos[f], sin[f]
            v_re, v_im = u_re * c - u_im * sn, u_re * sn + u_im * c
            t_re, t_im = target[f].real, target[f].imag
            r_re, r_im = t_re * v_re - t_im * v_im, t_re * v_im + t_im * v_re
            value += weights[f] * 0.5 * ((r_re - 1.0) * (r_re - 1.0) + r_im * r_im)  # 1 - cos r, exact near 0
            slope[f] = weights[f] * r_im
        d_tau = _dot(slope, omega)
        for s in range(n_sections):  # d phase / d a_k = -2 sign Im(e_k / A); gradient = -slope d phase
            for k in range(2):
                er, ei, im = e[0, k, s], e[1, k, s], per_freq[3]
                for f in range(n_freqs):
                    im[f] = er[f] * i_im[s, f] + ei[f] * i_re[s, f]
                acc[s, k] = 2.0 * signs[s] * _dot(slope, im)
    else:
        for f in range(n_freqs):
            r = target[f].real - (n_poles - 2.0 * p_re[f]) - tau
            root = math.sqrt(1.0 + (r / scale) ** 2)
            value += weights[f] * scale * scale * (root - 1.0)
            slope[f] = -weights[f] * r / root
            d_tau += slope[f]
        for s in range(n_sections):  # d tau / d a_k = -2 sign M Re(e_k (k - q) / A)
            for k in range(2):
                er, ei, re = e[0, k, s], e[1, k, s], per_freq[3]
                for f in range(n_freqs):
                    z_re = er[f] * i_re[s, f] - ei[f] * i_im[s, f]
                    z_im = er[f] * i_im[s, f] + ei[f] * i_re[s, f]
                    re[f] = z_re * (k + 1.0 - q_re[s, f]) + z_im * q_im[s, f]
                acc[s, k] = -2.0 * signs[s] * kinds[s, 1] * _dot(slope, re)
    grad[n - 1] = d_tau
    for s in range(n_sections):
        d1, d2 = acc[s, 0], acc[s, 1]
        if len(rho):
            penalty, p1, p2 = _ring(a[s, 0], a[s, 1], rho[s], rho_low[s], c_on[s], c_off[s])
            value += ring_weight * penalty
            d1 += ring_weight * p1
            d2 += ring_weight * p2
        for j in range(3):
            if columns[s, j] >= 0:
                grad[columns[s, j]] += d1 * da[s, 0, j] + d2 * da[s, 1, j]
    return value


@_jit
def response(thetas, omega, e, signs, n_poles, kinds, columns, fs, table):
    r"""``(phasors, group_delay)`` of every row of ``thetas`` (B, P): :math:`e^{j\varphi_f}` and
    :math:`\tau_f` in samples, shapes (B, F)."""
    n_rows = thetas.shape[0]
    n_sections, n_freqs = e.shape[2], e.shape[3]
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
                e1, e2 = complex(e[0, 0, s, f], e[1, 0, s, f]), complex(e[0, 1, s, f], e[1, 1, s, f])
                den = 1.0 + a[s, 0] * e1 + a[s, 1] * e2
                product *= den if signs[s] > 0 else den.conjugate()
                q_sum += signs[s] * kinds[s, 1] * ((a[s, 0] * e1 + 2.0 * a[s, 1] * e2) / den).real
            unit = product / abs(product)
            x = -n_poles * omega[f]
            out[b, f] = unit.conjugate() * unit.conjugate() * complex(math.cos(x), math.sin(x))
            delay[b, f] = n_poles - 2.0 * q_sum
    return out, delay


@_jit
def minimize(x0, max_iter, lower, mode, targets, target_of_row, weights, omega, e, signs, n_poles, kinds, columns,
             fs, table, rho, rho_low, c_on, c_off, ring_weight, scale, history, ftol, gtol, armijo, max_backtracks):
    r""":func:`apftools.lbfgs.minimize` of :func:`objective` from every row of ``x0`` (B, P + 1), compiled.

    The same algorithm (L-BFGS, Nocedal and Wright Algorithms 7.4 and 3.1
    with the cubic backtrack of their eq. 3.59; :mod:`apftools.lbfgs`
    documents it and is its numpy reference), run row after row: compiled,
    an evaluation has no overhead to share between rows.  Dot products sum
    in index order, so a row's path depends on nothing but its start.
    ``lower``: the last variable's lower bound, ``-inf`` for none.
    Returns ``(x (B, P + 1), values (B,), iterations (B,), evaluations (B,))``.
    """
    n_rows, n = x0.shape
    xs = x0.copy()
    values = np.zeros(n_rows)
    iterations = np.zeros(n_rows, np.int64)
    evaluations = np.zeros(n_rows, np.int64)
    work = _work(e.shape[2], e.shape[3])
    s_hist, y_hist, rho_hist = np.zeros((history, n)), np.zeros((history, n)), np.zeros(history)
    alphas = np.zeros(history)
    g, gt, trial, d, q = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    free = np.ones(n, np.bool_)
    for b in range(n_rows):
        x, target = xs[b], targets[target_of_row[b]]
        trial[:] = x
        f, n_eval, nit, count, gamma = 0.0, 0, 0, 0, 1.0
        step, slope, backtracks = 0.0, 0.0, 0
        while True:  # one evaluation a pass, of the start or a trial point (one call site: half the compile time)
            ft = _loss(trial, gt, mode, target, weights, omega, e, signs, n_poles, kinds, columns, fs, table, rho,
                       rho_low, c_on, c_off, ring_weight, scale, *work)
            n_eval += 1
            if n_eval == 1:
                f = ft
                g[:] = gt
                if max_iter <= 0:
                    break
            elif not ft <= f + armijo * step * slope:  # backtrack
                backtracks += 1
                slope_t = 0.0
                for i in range(n):
                    slope_t += gt[i] * d[i]
                step = _cubic_step(step, f, slope, ft, slope_t)
                if backtracks >= max_backtracks:  # no step decreases it
                    break
            else:  # accepted: a new iterate
                sy, yy = 0.0, 0.0
                for i in range(n):
                    sy += (trial[i] - x[i]) * (gt[i] - g[i])
                    yy += (gt[i] - g[i]) * (gt[i] - g[i])
                if sy > 1e-10 * yy and yy > 0:
                    slot = count % history
                    for i in range(n):
                        s_hist[slot, i], y_hist[slot, i] = trial[i] - x[i], gt[i] - g[i]
                    rho_hist[slot] = 1.0 / sy
                    gamma = sy / yy
                    count += 1
                decrease = (f - ft) / max(max(abs(f), abs(ft)), 1.0)
                x[:] = trial
                g[:] = gt
                f = ft
                nit += 1
                projected = 0.0
                for i in range(n):
                    if i < n - 1 or not (x[n - 1] <= lower and g[n - 1] > 0):
                        projected = max(projected, abs(g[i]))
                if decrease <= ftol or projected <= gtol or nit >= max_iter:
                    break
                backtracks = 0
            if backtracks == 0:  # at the start or a new iterate: a new line, its direction and first step
                for i in range(n):
                    free[i] = i < n - 1 or not (x[n - 1] <= lower and g[n - 1] > 0)  # held at the bound
                    q[i] = g[i] if free[i] else 0.0
                _two_loop(q, s_hist, y_hist, rho_hist, count, gamma, alphas)
                along = 0.0
                for i in range(n):
                    d[i] = -q[i] if free[i] else 0.0
                    along += g[i] * d[i]
                uphill = along >= 0  # cannot happen with a positive definite approximation, but rounding
                if uphill:
                    along = 0.0
                    for i in range(n):
                        d[i] = -g[i] if free[i] else 0.0
                        along += g[i] * d[i]
                if count == 0 or uphill:
                    norm = 0.0
                    for i in range(n):
                        norm += d[i] * d[i]
                    step = 1.0 / max(math.sqrt(norm), 1e-300)
                else:
                    step = 1.0
                slope = along
                if along >= 0:  # a zero gradient: nothing to do
                    break
            for i in range(n):
                trial[i] = x[i] + step * d[i]
            trial[n - 1] = max(trial[n - 1], lower)
        values[b], iterations[b], evaluations[b] = f, nit, n_eval
    return xs, values, iterations, evaluations


@_jit
def _two_loop(q, s_hist, y_hist, rho_hist, count, gamma, alphas):
    """``q`` times the L-BFGS inverse-Hessian approximation, in place (Nocedal and Wright, Algorithm 7.4)."""
    history, n = s_hist.shape
    kept = min(history, count)
    for age in range(kept):  # newest pair first
        slot = (count - 1 - age) % history
        dot = 0.0
        for i in range(n):
            dot += s_hist[slot, i] * q[i]
        alphas[age] = rho_hist[slot] * dot
        for i in range(n):
            q[i] -= alphas[age] * y_hist[slot, i]
    for i in range(n):
        q[i] *= gamma
    for age in range(kept - 1, -1, -1):
        slot = (count - 1 - age) % history
        dot = 0.0
        for i in range(n):
            dot += y_hist[slot, i] * q[i]
        beta = rho_hist[slot] * dot
        for i in range(n):
            q[i] += (alphas[age] - beta) * s_hist[slot, i]


@_jit
def _cubic_step(t, f0, slope0, ft, slope_t):
    """:func:`apftools.lbfgs._cubic_step` of one line."""
    d1 = slope0 + slope_t - 3.0 * (ft - f0) / t
    radicand = d1 * d1 - slope0 * slope_t
    d2 = math.sqrt(max(radicand, 0.0))
    denominator = slope_t - slope0 + 2.0 * d2
    safe = radicand >= 0 and denominator != 0
    cubic = t - t * (slope_t + d2 - d1) / (denominator if safe else 1.0)
    chosen = cubic if safe and math.isfinite(cubic) else 0.5 * t
    return min(max(chosen, 0.1 * t), 0.5 * t)
