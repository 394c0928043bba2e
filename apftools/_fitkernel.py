r"""Compiled stage-1 objectives (C, float64): the same numbers on every machine.

:func:`apftools.fit.fit_frequency` evaluates its two losses thousands of
times from many starts, and L-BFGS amplifies any difference in the last bit
of one evaluation into another optimum.  Evaluated with numpy, those bits
depended on the machine: matrix products ran in the BLAS kernel the CPU
picked (``OPENBLAS_CORETYPE``) and ``tanh``, ``cos`` and ``arctan2`` in
numpy's SIMD code for the CPU's features, so the shipped pair fitted
another model, even another polarity, on another machine.  Here every loop
is written out in a fixed order (``_fitkernel.c``, built with the package
with ``-ffp-contract=off`` and without fast-math: no BLAS, no reassociation,
no fused multiply-adds) and calls the C library's ``tanh``, ``tan``,
``atan``, ``exp``, ``log``, ``cos``, ``sin`` and ``sqrt``, which are the same
on every x86-64 machine with the same libm.

Ahead-of-time compiled, the kernels cost nothing to load: no JIT
compilation on first use (numba took 10 s there, once per machine) and no
compiler to import and set up in every process (numba took 0.3 s).  They
are called through :mod:`ctypes`, which releases the GIL for the length of
a call, so halves of a batch run side by side on two cores.

The losses are those of :mod:`apftools.fit` (its docstrings give the
equations); :class:`apftools.fit.ResponseModel` is the numpy reference they
are tested against.  Parameters map to coefficients as
:meth:`apftools.Cascade.sos_jacobian` maps them (:mod:`apftools.structures`,
whose table :class:`Geometry` takes), with derivatives by complex step
(Squire and Trapp, SIAM Review 40(1), 1998; the elementary functions of a
step :math:`x + iy` as :math:`f(x) + i y f'(x)`, exact in double precision
at a step of :math:`10^{-30}`).  The phase enters only through
:math:`e^{j r_f}`, as products of the sections' denominators, so no
``arctan2`` is needed per section: the loss needs the phase modulo
:math:`2\pi`.

:func:`minimize` runs the fit's L-BFGS (:mod:`apftools.lbfgs` is its numpy
reference) with no Python between evaluations.  Inside an evaluation, the
loops over frequencies hold no sums, so the compiler may run them in SIMD
lanes (elementwise IEEE arithmetic gives the same bits on any vector
width); sums over frequencies run in a fixed order (four interleaved
partial sums), and the per-frequency sines and cosines are fdlibm's
polynomials in plain arithmetic.  Against the numpy evaluation and its
batched L-BFGS, the fit runs about four times faster.
"""

import ctypes

import numpy as np

try:
    from . import _fitkernel_c
except ImportError as error:
    raise ImportError(
        f"apftools' compiled kernels (_fitkernel.c) are not built beside {__file__}: install apftools with pip, "
        "which builds them (in a checkout, 'pip install -e .' builds them in place; Python run from a checkout's "
        "folder imports the checkout, not the installed package)") from error

_P = ctypes.c_void_p  # an array's address; the wrappers below check dtypes, shapes and contiguity
_I, _D = ctypes.c_int64, ctypes.c_double
#: Each kernel's arguments; the three that evaluate losses return 0, or -1 when out of memory.
_SIGNATURES = {"apf_basis": (_P, _I, _P, _I, _P), "apf_phasors": (_P, _I, _P),
               "apf_objective": (_P, _P, _P, _I, _I, _P, _P), "apf_response": (_P, _P, _I, _I, _P, _P),
               "apf_minimize": (_P, _P, _P, _I, _I, _I, _D, _I, _D, _D, _D, _I, _P, _P, _P)}


class _GeometryStruct(ctypes.Structure):
    _fields_ = [(name, _P) for name in ("omega", "e", "signs", "kinds", "columns", "table", "rho", "rho_low", "c_on",
                                        "c_off")] + [("n_poles", _D), ("fs", _D), ("n_sections", _I), ("n_freqs", _I)]


class _LossStruct(ctypes.Structure):
    _fields_ = [("targets", _P), ("target_of_row", _P), ("weights", _P), ("ring_weight", _D), ("scale", _D),
                ("mode", _I)]


def _load(path):
    """The kernels in the shared library at ``path``, their argument types declared."""
    library = ctypes.CDLL(path)
    for name, arguments in _SIGNATURES.items():
        function = getattr(library, name)
        function.argtypes = arguments
        function.restype = ctypes.c_int if name in ("apf_objective", "apf_response", "apf_minimize") else None
    return library


_LIB = _load(_fitkernel_c.__file__)


def _array(x, dtype, shape=None):
    """``x`` as a C-contiguous array of ``dtype`` (a copy only where it is not one already), of ``shape``."""
    x = np.ascontiguousarray(x, dtype=dtype)
    if shape is not None and x.shape != tuple(shape):
        raise ValueError(f"expected an array of shape {tuple(shape)}, got {x.shape}")
    return x


def _check(status):
    if status:
        raise MemoryError("apftools._fitkernel: out of memory for the kernel's scratch arrays")


def phasors(h):
    r""":math:`e^{j \arg h_f}` of a measured response ``h`` (1 where it is 0); negated, the inverted polarity's."""
    h = _array(h, np.complex128)
    out = np.empty_like(h)
    _LIB.apf_phasors(h.ctypes.data, h.size, out.ctypes.data)
    return out


class Geometry:
    r"""What every kernel needs of the cascades and the frequency grid; built once per
    :class:`apftools.fit.ResponseModel`.

    Parameters
    ----------
    omega : ndarray, shape (F,)
        Frequencies, radians per sample.
    signs : ndarray, shape (S,)
        +1 per causal, -1 per anti-causal section.
    kinds : ndarray, shape (S, 3)
        Each section's order, stretch and 1 if warped.
    columns : ndarray, shape (S, 3)
        The theta index of its R, fc and a (-1 where the kind has none).
    fs : float
        Sample rate (Hz).
    table : sequence of 6 floats
        R_MAX, A_MAX, fc's low and high bounds (Hz), EDGE_MARGIN and
        FC_NYQUIST_FRACTION (:mod:`apftools.structures`); R and a on linear
        scales, fc on a log scale, as in its ``RANGES``.
    ring : tuple of four ndarrays of shape (S,), optional
        The ring penalty's ``rho``, ``rho_low``, ``c_on`` and ``c_off``
        (:func:`apftools.fit.ring_penalty`); None for no penalty.

    Attributes
    ----------
    e : ndarray, shape (2, 2, S, F)
        :math:`e^{-jkM_s\omega_f}` for k = 1, 2 from the C library's ``cos``
        and ``sin``: real and imaginary parts, contiguous along the frequencies.
    n_poles : float
        The signed sum of the sections' orders times stretches.
    """

    def __init__(self, omega, signs, kinds, columns, fs, table, ring=None):
        self.omega = _array(omega, float)
        self.kinds = _array(kinds, np.int64)
        n_sections, n_freqs = len(self.kinds), len(self.omega)
        self.signs = _array(signs, float, (n_sections,))
        self.columns = _array(columns, np.int64, (n_sections, 3))
        self.table = _array(table, float, (6,))
        self.ring = None if ring is None else [_array(x, float, (n_sections,)) for x in ring]
        self.n_params = int(self.columns.max(initial=-1)) + 1  # theta's length at least (the kernels index it)
        self.n_poles = float(np.sum(self.signs * self.kinds[:, 0] * self.kinds[:, 1]))
        self.e = np.empty((2, 2, n_sections, n_freqs))
        stretch = self.kinds[:, 1].astype(float)
        _LIB.apf_basis(self.omega.ctypes.data, n_freqs, stretch.ctypes.data, n_sections, self.e.ctypes.data)
        rings = [None] * 4 if self.ring is None else [x.ctypes.data for x in self.ring]
        self.struct = _GeometryStruct(self.omega.ctypes.data, self.e.ctypes.data, self.signs.ctypes.data,
                                      self.kinds.ctypes.data, self.columns.ctypes.data, self.table.ctypes.data,
                                      *rings, self.n_poles, float(fs), n_sections, n_freqs)

    def _rows(self, rows, extra):
        """``rows`` as a C-contiguous float array of shape (B, at least n_params + extra), checked: the kernels
        index it without bounds."""
        rows = _array(rows, float)
        if rows.ndim != 2 or rows.shape[1] < self.n_params + extra:
            raise ValueError(f"expected rows of at least {self.n_params + extra} values, got shape {rows.shape}")
        return rows

    def _loss(self, n_rows, mode, targets, target_of_row, weights, ring_weight, scale):
        """The C description of one loss of ``n_rows`` rows, and the arrays it points into (kept alive by the
        caller)."""
        targets = _array(targets, np.complex128)
        if targets.ndim != 2 or targets.shape[1] != len(self.omega):
            raise ValueError(f"expected targets of shape (T, {len(self.omega)}), got {targets.shape}")
        target_of_row = _array(target_of_row, np.int64)
        if target_of_row.shape != (n_rows,) or np.any((target_of_row < 0) | (target_of_row >= len(targets))):
            raise ValueError(f"target_of_row must hold an index into the {len(targets)} targets for each of the "
                             f"{n_rows} rows, got {target_of_row!r}")
        weights = _array(weights, float, self.omega.shape)
        struct = _LossStruct(targets.ctypes.data, target_of_row.ctypes.data, weights.ctypes.data, float(ring_weight),
                             float(scale), int(mode))
        return struct, (targets, target_of_row, weights)

    def objective(self, params, mode, targets, target_of_row, weights, ring_weight, scale):
        r"""Loss and gradient of every row of ``(theta, tau)`` ``params`` (B, P + 1).

        ``mode`` 0: the phase loss :math:`L_\varphi`, ``targets`` (T, F)
        complex measured phasors (:func:`phasors`), row ``b`` against
        ``targets[target_of_row[b]]``; ``mode`` 1: the group-delay loss
        :math:`L_\tau` with soft-L1 ``scale`` (samples), ``targets`` the
        measured group delay (real parts used).  ``ring_weight`` weighs the
        ring penalty, if the geometry has one.
        Returns ``(values (B,), gradients (B, P + 1))``.
        """
        params = self._rows(params, 1)
        loss, keep = self._loss(len(params), mode, targets, target_of_row, weights, ring_weight, scale)
        values, grads = np.empty(len(params)), np.empty_like(params)
        _check(_LIB.apf_objective(ctypes.byref(self.struct), ctypes.byref(loss), params.ctypes.data, len(params),
                                  params.shape[1], values.ctypes.data, grads.ctypes.data))
        return values, grads

    def response(self, thetas):
        r"""``(phasors, group_delay)`` of every row of ``thetas`` (B, P): :math:`e^{j\varphi_f}` and
        :math:`\tau_f` in samples, shapes (B, F)."""
        thetas = self._rows(thetas, 0)
        out = np.empty((len(thetas), len(self.omega)), np.complex128)
        delay = np.empty((len(thetas), len(self.omega)))
        _check(_LIB.apf_response(ctypes.byref(self.struct), thetas.ctypes.data, len(thetas), thetas.shape[1],
                                 out.ctypes.data, delay.ctypes.data))
        return out, delay

    def minimize(self, x0, max_iter, lower, mode, targets, target_of_row, weights, ring_weight, scale, history, ftol,
                 gtol, armijo, max_backtracks):
        r""":func:`apftools.lbfgs.minimize` of :meth:`objective` from every row of ``x0`` (B, P + 1), compiled.

        The same algorithm (L-BFGS, Nocedal and Wright Algorithms 7.4 and 3.1
        with the cubic backtrack of their eq. 3.59; :mod:`apftools.lbfgs`
        documents it and is its numpy reference), run row after row: compiled,
        an evaluation has no overhead to share between rows.  Dot products sum
        in index order, so a row's path depends on nothing but its start.
        ``lower``: the last variable's lower bound, ``-inf`` for none.
        Returns ``(x (B, P + 1), values (B,), iterations (B,), evaluations (B,))``.
        """
        x = self._rows(x0, 1).copy()
        loss, keep = self._loss(len(x), mode, targets, target_of_row, weights, ring_weight, scale)
        values = np.empty(len(x))
        iterations, evaluations = np.empty(len(x), np.int64), np.empty(len(x), np.int64)
        _check(_LIB.apf_minimize(ctypes.byref(self.struct), ctypes.byref(loss), x.ctypes.data, len(x), x.shape[1],
                                 int(max_iter), float(lower), int(history), float(ftol), float(gtol), float(armijo),
                                 int(max_backtracks), values.ctypes.data, iterations.ctypes.data,
                                 evaluations.ctypes.data))
        return x, values, iterations, evaluations
