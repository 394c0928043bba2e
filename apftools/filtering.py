r"""Differentiable second-order-section filtering with an exact adjoint.

:func:`sosfilt` is a drop-in for :func:`scipy.signal.sosfilt` (zero initial
state, time along the last axis) that HIPS autograd can differentiate with
respect to both the coefficients and the signal.  Untraced calls are plain
scipy.  Traced calls run one compiled forward pass over the whole cascade that
keeps every section's output, and one compiled reverse pass for the gradient.

Derivation of the adjoint
-------------------------
Section :math:`s` maps its input :math:`u` to its output :math:`v` by

.. math:: a_0 v[n] + a_1 v[n-1] + a_2 v[n-2] = b_0 u[n] + b_1 u[n-1] + b_2 u[n-2],

with :math:`u[n] = v[n] = 0` for :math:`n < 0`.  On :math:`N` samples this is
:math:`T_a v = T_b u` with banded lower-triangular Toeplitz matrices, so
:math:`v = T_a^{-1} T_b u`.  Given the cotangent :math:`g = \partial L/\partial v`,
let :math:`\lambda = T_a^{-T} g`, i.e. the same recursion run backwards in time

.. math:: \lambda[n] = g[n] - a_1 \lambda[n+1] - a_2 \lambda[n+2],
          \qquad \lambda[N] = \lambda[N+1] = 0

(filtering the time-reversed cotangent with :math:`1/A`).  Then, exactly,

.. math::
    \frac{\partial L}{\partial u[n]} &= b_0 \lambda[n] + b_1 \lambda[n+1] + b_2 \lambda[n+2], \\
    \frac{\partial L}{\partial b_k} &= \sum_n \lambda[n]\, u[n-k], \qquad
    \frac{\partial L}{\partial a_k} = -\sum_n \lambda[n]\, v[n-k], \quad k = 0, 1, 2,

because :math:`\partial T_a / \partial a_k = \partial T_b / \partial b_k = S^k` (the
k-sample shift).  :math:`\partial L / \partial u` is the cotangent of the
previous section, so one reverse pass through the sections, last to first,
yields every gradient.  The lag-0/1/2 inner products are accumulated in the
same pass from each section's stored input and output.  Nothing is truncated
or approximated: the gradient is the exact derivative of the finite-length
computation (Giles, "Collected matrix derivative results for forward and
reverse mode algorithmic differentiation", 2008; the same adjoint underlies
Yu et al., "Differentiable time-varying linear prediction...", 2024, torchlpc).

Why a compiled kernel and not per-section scipy calls: a single biquad
recursion is latency-bound (measured here about 7 ns per sample for one
section versus 1.2 ns per section-sample for an 8-section cascade in one
``scipy.signal.sosfilt`` call), and scipy returns only the cascade's final
output.  Keeping intermediate outputs with scipy would need one call per
section forward and backward, about 13x one sosfilt; the fused kernel in
:mod:`apftools._kernels` does forward plus adjoint in about 3.5x.
"""

import autograd.numpy as anp
import numpy as np
import scipy.signal
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import getval, isbox

from ._validate import validate_sos
from .errors import ApftoolsTypeError, ApftoolsValueError


def _compiled():
    """The numba kernels (:mod:`apftools._kernels`), imported on the first traced call: numba's import takes
    about 0.4 s, which rendering and the frequency-domain fit never need."""
    from . import _kernels

    return _kernels


def _as_real_float(a, name, dtype=np.float64):
    if np.iscomplexobj(a):
        raise ApftoolsTypeError(f"{name} must be real to be differentiated, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=dtype)


@primitive
def _cascade(sos, x):
    """Filter the columns of ``x`` (N, C) from rest with the compiled forward that keeps every section's output.

    The result is a view of the (K, N, C) array of section outputs, which
    therefore stays alive, as the view's ``base``, for the reverse pass.  (An
    extra output would make autograd build and zero a cotangent of the same
    size at every step: a 27 MB memset at 480k samples and 8 sections.)
    """
    sos = _as_real_float(sos, "sos")
    x = _as_real_float(x, "x")
    outputs = np.empty((sos.shape[0],) + x.shape)
    _compiled().cascade_forward(sos, x, outputs, np.zeros((x.shape[1], sos.shape[0], 2)))
    return outputs[-1]


def _cascade_vjp(argnums, ans, args, kwargs):
    sos = _as_real_float(args[0], "sos")
    x = _as_real_float(args[1], "x")
    outputs = ans.base

    def vjp(g):
        dx = np.empty_like(x)
        dsos = np.empty_like(sos)
        _compiled().cascade_adjoint(sos, x, outputs, _as_real_float(g, "g"), np.zeros((x.shape[1], sos.shape[0], 2)),
                                 dx, dsos)
        grads = (dsos, dx)
        return tuple(grads[i] for i in argnums)

    return vjp


defvjp_argnums(_cascade, _cascade_vjp)


@primitive
def _cascade_state(sos, x, zi):
    """``(y, zf)``: :func:`_cascade` from the initial state ``zi`` (C, K, 2), and the final state (C, K, 2).

    Computed in ``result_type(sos, x, zi)``: float32 when all three are, as scipy's sosfilt does.
    """
    dtype = _work_dtype(sos, x, zi)
    sos = _as_real_float(sos, "sos", dtype)
    x = _as_real_float(x, "x", dtype)
    state = np.array(_as_real_float(zi, "zi", dtype))  # a copy: the kernel turns it into the final state
    outputs = np.empty((sos.shape[0],) + x.shape, dtype=dtype)
    _compiled().cascade_forward(sos, x, outputs, state)
    return outputs[-1], state


def _cascade_state_vjp(argnums, ans, args, kwargs):
    dtype = _work_dtype(*args)
    sos = _as_real_float(args[0], "sos", dtype)
    x = _as_real_float(args[1], "x", dtype)
    outputs = ans[0].base

    def vjp(g):
        g_y, g_zf = g
        dx = np.empty_like(x)
        dsos = np.empty_like(sos)
        lam = np.array(_as_real_float(g_zf, "g", dtype))  # lambda[N], lambda[N+1] in; lambda[0], lambda[1] = d zi out
        _compiled().cascade_adjoint(sos, x, outputs, _as_real_float(g_y, "g", dtype), lam, dx, dsos)
        grads = (dsos, dx, lam)
        return tuple(grads[i] for i in argnums)

    return vjp


defvjp_argnums(_cascade_state, _cascade_state_vjp)


def _work_dtype(*arrays):
    """float32 when every array is float32 (scipy's rule), else float64."""
    return np.float32 if np.result_type(*(getval(a) for a in arrays)) == np.float32 else np.float64


def filter_columns(sos, x):
    """Filter each column of ``x`` (shape (N, C), time along axis 0) with ``sos``.

    Differentiable in ``sos`` and ``x``; untraced calls are plain scipy.
    Inputs are not validated: this is the inner loop of
    :class:`apftools.Cascade`; use :func:`sosfilt` otherwise.
    """
    if isbox(sos) or isbox(x):
        return _cascade(sos, x)
    return scipy.signal.sosfilt(sos, x, axis=0)


def filter_stretched(sos, x, stretch):
    r"""Apply the stretched cascade :math:`H(z^M)` to the columns of ``x`` (N, C).

    :math:`H(z^M)` acting on :math:`x` is :math:`H` acting independently on
    the :math:`M` interleaved phases :math:`x[mM + i]`, :math:`i = 0..M-1`.
    Reshaping ``x`` (padded to a multiple of M) to ``(N / M, M C)`` turns the
    phases into columns, so no long polynomial in :math:`z^{-M}` is formed.
    """
    if stretch == 1:
        return filter_columns(sos, x)
    n_samples, n_channels = x.shape
    pad = -n_samples % stretch
    if pad:
        x = anp.concatenate([x, anp.zeros((pad, n_channels))], axis=0)
    phases = anp.reshape(x, (x.shape[0] // stretch, stretch * n_channels))
    y = filter_columns(sos, phases)
    return anp.reshape(y, (x.shape[0], n_channels))[:n_samples]


def sosfilt(sos, x, axis=-1, zi=None):
    r"""Filter ``x`` along ``axis`` with second-order sections, differentiably: :func:`scipy.signal.sosfilt`.

    The same arguments, results and dtypes as scipy's.  Untraced calls are
    scipy's own.  Under autograd tracing the result is differentiable (first
    order, reverse mode) with respect to ``sos``, ``x`` and ``zi``, and
    through the final state ``zf`` too, so blocks filtered one after another
    with the state carried over differentiate end to end.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)
        Rows ``[b0, b1, b2, 1, a1, a2]``, each section

        .. math:: H_s(z) = \frac{b_0 + b_1 z^{-1} + b_2 z^{-2}}{1 + a_1 z^{-1} + a_2 z^{-2}}.

    x : array_like
        Input signal(s).
    axis : int
        The axis of ``x`` that time runs along.
    zi : array_like, optional
        Initial state, shape ``(n_sections, ..., 2, ...)``: ``x``'s shape
        with ``x.shape[axis]`` replaced by 2, after a first axis of
        sections (:func:`scipy.signal.sosfilt_zi` times the first sample
        starts a filter in steady state).

    Returns
    -------
    y : ndarray
        Output, the shape of ``x``, in scipy's dtype: ``result_type(sos, x,
        zi)`` (float32 when all are float32; the traced path then computes in
        float32 too, like scipy).  Complex input is supported untraced only
        (the adjoint here is real).
    zf : ndarray
        Final state, the shape of ``zi``; returned only when ``zi`` is given.

    Raises
    ------
    ApftoolsTypeError
        Complex data under tracing.
    ApftoolsValueError
        A traced call with a bad ``sos``, ``axis`` or ``zi`` shape.

    Notes
    -----
    The gradient is the exact adjoint derived in this module's docstring:
    the time-reversed cotangent is filtered with the same sections and the
    coefficient gradients are lag-0/1/2 inner products with each section's
    input and output.  An initial state enters the recursion as an input
    :math:`e[0] = z_0`, :math:`e[1] = z_1` of :math:`T_a v = T_b u + e`, so
    its cotangent is :math:`(\lambda[0], \lambda[1])`; the cotangent of the
    final state starts the backward recursion as :math:`(\lambda[N],
    \lambda[N+1])` (the final state is the section's output at :math:`N`
    and :math:`N + 1` with zero input; the terms of the virtual output cancel
    in :math:`\partial L/\partial a_1`).  Bargum et al., "Differentiable
    all-pass filters for phase response estimation and automatic signal
    alignment", DAFx 2023, need this gradient at every optimiser step.

    Examples
    --------
    >>> import numpy as np, autograd
    >>> from apftools import sosfilt
    >>> sos = np.array([[0.81, -0.9, 1.0, 1.0, -0.9, 0.81]])  # allpass, R = 0.9
    >>> x = np.random.default_rng(0).standard_normal(48000)   # 1 s at fs = 48 kHz
    >>> loss = lambda s: np.sum(sosfilt(s, x) ** 2)
    >>> autograd.grad(loss)(sos).shape
    (1, 6)
    >>> y, zf = sosfilt(sos, x[:100], zi=np.zeros((1, 2)))   # blocks with the state carried over
    >>> np.allclose(sosfilt(sos, x[100:200], zi=zf)[0], sosfilt(sos, x[:200])[100:])
    True
    """
    if not (isbox(sos) or isbox(x) or isbox(zi)):
        return scipy.signal.sosfilt(sos, x, axis=axis, zi=zi)
    sos_value = validate_sos(getval(sos))
    x_value = getval(x)
    if np.iscomplexobj(x_value) or (zi is not None and np.iscomplexobj(getval(zi))):
        raise ApftoolsTypeError("sosfilt under autograd tracing needs real x and zi; complex input is supported "
                                f"only untraced (got dtype {np.result_type(x_value)})")
    shape = np.shape(x_value)
    if not -len(shape) <= axis < len(shape):
        raise ApftoolsValueError(f"axis={axis!r} is out of range for x of shape {shape}")
    axis %= len(shape)
    if shape[axis] < 1:
        raise ApftoolsValueError(f"x must have at least one sample along axis {axis}, got shape {shape}")
    moved = shape[:axis] + shape[axis + 1:] + shape[axis:axis + 1]
    columns = anp.transpose(anp.reshape(anp.moveaxis(x, axis, -1), (-1, shape[axis])))  # (N, C)

    def restore(y):  # (N, C) back to x's layout
        return anp.moveaxis(anp.reshape(anp.transpose(y), moved), -1, axis)

    n_sections = sos_value.shape[0]
    if zi is None:
        if _work_dtype(sos, x) == np.float64:
            return restore(_cascade(sos, columns))  # from rest: no state to carry
        return restore(_cascade_state(sos, columns, np.zeros((columns.shape[1], n_sections, 2), np.float32))[0])
    expected = (n_sections,) + shape[:axis] + (2,) + shape[axis + 1:]
    if np.shape(getval(zi)) != expected:
        raise ApftoolsValueError(f"Invalid zi shape: zi must have shape {expected} (n_sections, then x's shape "
                                 f"with the axis of length 2), got {np.shape(getval(zi))}")
    state = anp.moveaxis(anp.reshape(anp.moveaxis(zi, axis + 1, -1), (n_sections, -1, 2)), 0, 1)  # (C, K, 2)
    y, zf = _cascade_state(sos, columns, state)
    zf = anp.moveaxis(anp.reshape(anp.moveaxis(zf, 0, 1), (n_sections,) + moved[:-1] + (2,)), -1, axis + 1)
    return restore(y), zf


def sosfilt_reversed(sos, x, axis=-1, zi=None):
    r"""Filter ``x`` backwards in time along ``axis``: the anti-causal twin of :func:`sosfilt`.

    .. math:: y = R\, H\, R\, x,

    with :math:`R` time reversal: the impulse response runs backwards, the
    phase is exactly the negated phase of :math:`H`.  With ``zi`` the state
    is that of the recursion running from the end of the signal towards its
    start, so a long signal can be filtered block by block from its last
    block to its first, each block's ``zf`` being the ``zi`` of the block
    before it; differentiable like :func:`sosfilt`.

    Returns
    -------
    y : ndarray
        The shape of ``x``.
    zf : ndarray
        The state after the block's first sample (for the block before it);
        only when ``zi`` is given.

    Examples
    --------
    >>> import numpy as np, scipy.signal
    >>> sos = scipy.signal.butter(2, 0.1, output="sos")
    >>> x = np.random.default_rng(0).standard_normal(1000)
    >>> late, state = sosfilt_reversed(sos, x[500:], zi=np.zeros((1, 2)))
    >>> early, _ = sosfilt_reversed(sos, x[:500], zi=state)
    >>> np.allclose(np.concatenate([early, late]), sosfilt_reversed(sos, x))
    True
    """
    def reverse(a):  # a slice, which autograd differentiates (its flip has no VJP)
        index = [slice(None)] * np.ndim(getval(a))
        index[axis] = slice(None, None, -1)
        return a[tuple(index)]

    if zi is None:
        return reverse(sosfilt(sos, reverse(x), axis=axis))
    y, zf = sosfilt(sos, reverse(x), axis=axis, zi=zi)
    return reverse(y), zf
