"""Compiled loops behind :mod:`apftools.filtering` (numba, float64).

Both kernels work on signals laid out as ``(n_samples, n_channels)`` with the
channels innermost, so independent recursions (channels, polyphase branches)
and the sections of the cascade interleave in the CPU pipeline.  The
recursions follow :func:`scipy.signal.sosfilt` operation for operation, so the
forward output equals scipy's bit for bit.

These are the only loops over samples in apftools; they run compiled, never in
the Python interpreter.  ``cache=True`` stores the machine code beside this
file (or in numba's user cache), so the ~3 s compilation happens once per
machine.
"""

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def cascade_forward(sos, x, out, z):
    """Filter ``x`` through every section of ``sos``, keeping each section's output.

    Parameters
    ----------
    sos : ndarray, shape (K, 6)
    x : ndarray, shape (N, C)
        Input, C independent channels.
    out : ndarray, shape (K, N, C)
        Written: ``out[s]`` is the output of section ``s``; ``out[K - 1]``
        is the cascade's output.
    z : ndarray, shape (C, K, 2)
        The initial state of every section (scipy's ``zi`` layout per
        section: the two delay elements of the transposed direct form II),
        overwritten with the final state.
    """
    n_samples, n_channels = x.shape
    n_sections = sos.shape[0]
    for n in range(n_samples):
        for c in range(n_channels):
            v = x[n, c]
            for s in range(n_sections):
                y = sos[s, 0] * v + z[c, s, 0]
                z[c, s, 0] = sos[s, 1] * v - sos[s, 4] * y + z[c, s, 1]
                z[c, s, 1] = sos[s, 2] * v - sos[s, 5] * y
                out[s, n, c] = y
                v = y


@numba.njit(cache=True, nogil=True)
def cascade_adjoint(sos, x, out, g, lam, dx, dsos):
    r"""Exact reverse pass of :func:`cascade_forward` (see :mod:`apftools.filtering`).

    Parameters
    ----------
    sos, x, out : ndarray
        As given to and written by :func:`cascade_forward`.
    g : ndarray, shape (N, C)
        Cotangent of the loss with respect to the cascade's output.
    lam : ndarray, shape (C, K, 2)
        In: the cotangent of the final state, which is
        :math:`(\lambda[N], \lambda[N+1])` of every section; out:
        :math:`(\lambda[0], \lambda[1])`, the cotangent of the initial state.
    dx : ndarray, shape (N, C)
        Written: cotangent with respect to ``x``.
    dsos : ndarray, shape (K, 6)
        Written: cotangent with respect to ``sos``, summed over channels.
    """
    n_samples, n_channels = x.shape
    n_sections = sos.shape[0]
    acc = np.zeros((n_sections, 6))  # lam[c, s] holds lambda[n + 1], lambda[n + 2]
    for n in range(n_samples - 1, -1, -1):
        for c in range(n_channels):
            gv = g[n, c]
            y = out[n_sections - 1, n, c]
            for s in range(n_sections - 1, -1, -1):
                l1 = lam[c, s, 0]
                l2 = lam[c, s, 1]
                lv = gv - sos[s, 4] * l1 - sos[s, 5] * l2
                lam[c, s, 0] = lv
                lam[c, s, 1] = l1
                u = out[s - 1, n, c] if s > 0 else x[n, c]
                # sum_n lambda[n] u[n - k] accumulated as lambda[n + k] u[n]
                acc[s, 0] += lv * u
                acc[s, 1] += l1 * u
                acc[s, 2] += l2 * u
                acc[s, 3] -= lv * y
                acc[s, 4] -= l1 * y
                acc[s, 5] -= l2 * y
                gv = sos[s, 0] * lv + sos[s, 1] * l1 + sos[s, 2] * l2
                y = u
            dx[n, c] = gv
    dsos[:, :] = acc
