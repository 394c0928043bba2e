r"""L-BFGS over a batch of independent problems, evaluated together: the numpy reference of the fit's minimiser.

Stage 1 of the fit (:func:`apftools.fit.fit_frequency`) minimises the same
loss from many starts, in compiled code (:meth:`apftools._fitkernel.Geometry.minimize`,
the same algorithm row after row).  This is that algorithm for any objective
over a batch: :func:`minimize` runs every start's L-BFGS side by side and
evaluates the objective once per round for all starts still running, at
each one's next trial point (the first of an iteration, or a backtrack: no
start waits for another's line search).  Each start keeps its own history,
step length and stopping test; starts that have stopped are not evaluated
again.  The tests check it against scipy and the compiled minimiser against it.

The algorithm is limited-memory BFGS (Nocedal and Wright, *Numerical
Optimization*, 2nd ed., Springer 2006: Algorithm 7.4 for the two-loop
recursion, with the initial scaling :math:`\gamma = s^\top y / y^\top y`
of their eq. 7.20) with a backtracking line search on the Armijo condition
(their Algorithm 3.1; each backtrack goes to the minimiser of the cubic
through the values and slopes at both ends, their eq. 3.59, safeguarded to
[0.1, 0.5] of the last step).  A pair :math:`(s, y)` enters
the history only if :math:`s^\top y > 0`, which keeps the inverse-Hessian
approximation positive definite.  The last variable may have a lower bound
(the fit's residual delay in causal mode): trial points are projected onto
it, and while the bound is active with the gradient pushing against it, that
variable is held fixed.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class BatchResult:
    """Result of :func:`minimize`: ``x`` (B, n), ``fun`` (B,), ``nit`` (B,) iterations per row, ``evaluations``
    (batched calls of the objective)."""

    x: np.ndarray
    fun: np.ndarray
    nit: np.ndarray
    evaluations: int


#: The settings both minimisers use (this one and :meth:`apftools._fitkernel.Geometry.minimize`), in the order the
#: compiled one takes them: correction pairs kept, relative-decrease and gradient stopping tests (scipy's
#: L-BFGS-B defaults), Armijo constant, most backtracks of one line search.
SETTINGS = {"history": 10, "ftol": 2.220446049250313e-09, "gtol": 1e-5, "armijo": 1e-4, "max_backtracks": 20}


def minimize(objective, x0, max_iter, lower=None, history=SETTINGS["history"], ftol=SETTINGS["ftol"],
             gtol=SETTINGS["gtol"], armijo=SETTINGS["armijo"], max_backtracks=SETTINGS["max_backtracks"]):
    """Minimise ``objective`` from each row of ``x0`` with L-BFGS (module docstring).

    Parameters
    ----------
    objective : callable
        ``objective(x, rows)`` with ``x`` of shape (b, n) holding the points
        of the problems ``rows`` (indices into ``x0``'s rows) returns their
        values (b,) and gradients (b, n).
    x0 : ndarray, shape (B, n)
        Starts.
    max_iter : int
        Iterations per start.
    lower : float, optional
        Lower bound of the last variable.
    history : int
        Correction pairs kept per start.
    ftol, gtol : float
        A start stops when its relative decrease
        :math:`(f_k - f_{k+1}) / \\max(|f_k|, |f_{k+1}|, 1)` is at most
        ``ftol``, or its largest free gradient component at most ``gtol``
        (scipy's L-BFGS-B tests and defaults), or when no step decreases it.
    armijo : float
        Sufficient-decrease constant of the line search.
    max_backtracks : int

    Returns
    -------
    BatchResult
    """
    x = np.array(x0, dtype=float)
    n_rows, n = x.shape
    f, g = objective(x, np.arange(n_rows))
    s_hist, y_hist = np.zeros((history, n_rows, n)), np.zeros((history, n_rows, n))
    rho = np.zeros((history, n_rows))
    count, gamma = np.zeros(n_rows, int), np.ones(n_rows)
    nit, backtracks = np.zeros(n_rows, int), np.zeros(n_rows, int)
    d, step, slope = np.zeros((n_rows, n)), np.zeros(n_rows), np.zeros(n_rows)
    running = np.full(n_rows, max_iter > 0)
    evaluations = 1

    def free(xs, gs):  # variables not held at the bound
        mask = np.ones(gs.shape, bool)
        if lower is not None:
            mask[:, -1] = ~((xs[:, -1] <= lower) & (gs[:, -1] > 0))
        return mask

    def start_line(rows):  # the next iteration's direction and first step for ``rows``
        mask = free(x[rows], g[rows])
        direction = -np.where(mask, _two_loop(np.where(mask, g[rows], 0.0), s_hist[:, rows], y_hist[:, rows],
                                              rho[:, rows], count[rows], gamma[rows]), 0.0)
        along = np.sum(g[rows] * direction, axis=1)
        uphill = along >= 0  # cannot happen with a positive definite approximation, but rounding
        direction[uphill] = -np.where(mask, g[rows], 0.0)[uphill]
        along[uphill] = np.sum(g[rows][uphill] * direction[uphill], axis=1)
        first = (count[rows] == 0) | uphill
        d[rows], slope[rows], backtracks[rows] = direction, along, 0
        step[rows] = np.where(first, 1.0 / np.maximum(np.linalg.norm(direction, axis=1), 1e-300), 1.0)
        running[rows[along >= 0]] = False  # a zero gradient: nothing to do

    # every row runs its own line searches: each call evaluates one trial point of every running row,
    # the first of a new iteration or a backtrack, so no row waits for another's backtracking
    start_line(np.flatnonzero(running))
    while np.any(running):
        rows = np.flatnonzero(running)
        trial = x[rows] + step[rows, None] * d[rows]
        if lower is not None:
            trial[:, -1] = np.maximum(trial[:, -1], lower)
        ft, gt = objective(trial, rows)
        evaluations += 1
        ok = ft <= f[rows] + armijo * step[rows] * slope[rows]
        back = rows[~ok]
        backtracks[back] += 1
        step[back] = _cubic_step(step[back], f[back], slope[back], ft[~ok], np.sum(gt[~ok] * d[back], axis=1))
        running[back[backtracks[back] >= max_backtracks]] = False  # no step decreases it
        moved = rows[ok]
        s, y = trial[ok] - x[moved], gt[ok] - g[moved]
        sy, yy = np.sum(s * y, axis=1), np.sum(y * y, axis=1)
        update = (sy > 1e-10 * yy) & (yy > 0)
        where = moved[update]
        slot = count[where] % history
        s_hist[slot, where], y_hist[slot, where] = s[update], y[update]
        rho[slot, where] = 1.0 / sy[update]
        gamma[where] = sy[update] / yy[update]
        count[where] += 1
        decrease = (f[moved] - ft[ok]) / np.maximum(np.maximum(np.abs(f[moved]), np.abs(ft[ok])), 1.0)
        x[moved], f[moved], g[moved] = trial[ok], ft[ok], gt[ok]
        nit[moved] += 1
        projected = np.max(np.abs(np.where(free(x[moved], g[moved]), g[moved], 0.0)), axis=1, initial=0.0)
        running[moved[(decrease <= ftol) | (projected <= gtol) | (nit[moved] >= max_iter)]] = False
        going = moved[running[moved]]
        if len(going):
            start_line(going)
    return BatchResult(x, f, nit, evaluations)


def _cubic_step(t, f0, slope0, ft, slope_t):
    """The minimiser of the cubic through the line's values and slopes at 0 and ``t``, within [0.1, 0.5] t.

    Nocedal and Wright eq. 3.59; the midpoint where the cubic has no minimum.
    """
    d1 = slope0 + slope_t - 3.0 * (ft - f0) / t
    radicand = d1 * d1 - slope0 * slope_t
    d2 = np.sqrt(np.maximum(radicand, 0.0))
    denominator = slope_t - slope0 + 2.0 * d2
    safe = (radicand >= 0) & (denominator != 0)
    cubic = t - t * (slope_t + d2 - d1) / np.where(safe, denominator, 1.0)
    return np.clip(np.where(safe & np.isfinite(cubic), cubic, 0.5 * t), 0.1 * t, 0.5 * t)


def _two_loop(q, s_hist, y_hist, rho, count, gamma):
    """H q for each row (Nocedal and Wright, Algorithm 7.4), newest pair first; rows keep ``count`` pairs."""
    history = len(rho)
    rows = np.arange(len(count))
    alphas = []
    for age in range(min(history, int(count.max(initial=0)))):
        slot = (count - 1 - age) % history
        valid = age < count
        r = np.where(valid, rho[slot, rows], 0.0)
        s, y = s_hist[slot, rows], y_hist[slot, rows]
        alpha = r * np.sum(s * q, axis=1)
        q = q - alpha[:, None] * y
        alphas.append((s, y, r, alpha))
    q = q * gamma[:, None]
    for s, y, r, alpha in reversed(alphas):
        beta = r * np.sum(y * q, axis=1)
        q = q + (alpha - beta)[:, None] * s
    return q
