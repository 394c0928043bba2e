"""A self-contained demonstration of the engine on generated data.

A known allpass cascade plays the role of an effect; from random starts,
L-BFGS with exact gradients recovers its phase response from the dry and
wet signals alone.  (``apftools align`` on real files supersedes this.)
"""

import time

import numpy as np
import scipy.optimize
import scipy.signal
from autograd import value_and_grad

from ._threads import blas_single_thread
from .cascade import Cascade
from .losses import mse


def _median_ms(fun, repeats=7):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fun()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def run_demo(spec="3x2w,1w", fs=48000, seconds=1.0, n_starts=8, seed=0):
    """Fit ``spec`` to a dry/wet pair made by a random cascade of the same spec.

    Parameters
    ----------
    spec : str
        Cascade spec, e.g. ``"3x2w,1w"``.
    fs : float
        Sample rate in Hz.
    seconds : float
        Length of the white-noise dry signal.
    n_starts : int
        Random L-BFGS starts; the best is kept.
    seed : int
        Seeds the true cascade, the noise and the starts.

    Returns
    -------
    dict
        ``true_phase_deg`` and ``fitted_phase_deg`` at ``octaves_hz``,
        ``phase_error_deg`` (RMS
        over 20 Hz to 20 kHz, log-spaced), ``esr_db`` of the best fit,
        ``starts_at_optimum`` (starts whose ESR is below -60 dB),
        ``sosfilt_ms``, ``loss_grad_ms`` and ``fit_s``.
    """
    rng = np.random.default_rng(seed)
    cascade = Cascade(spec, fs)
    theta_true = cascade.init(rng)
    dry = rng.standard_normal(int(seconds * cascade.fs))
    wet = cascade.process(theta_true, dry)
    wet_power = float(np.mean(wet**2))

    def loss(theta):  # error-to-signal ratio
        return mse(cascade.process(theta, dry), wet) / wet_power

    loss_and_grad = value_and_grad(loss)
    with blas_single_thread():
        loss_and_grad(theta_true)  # compiles the kernels on first use
        sos = cascade.sos(theta_true)
        sosfilt_ms = _median_ms(lambda: scipy.signal.sosfilt(sos, dry))
        loss_grad_ms = _median_ms(lambda: loss_and_grad(theta_true))
        start = time.perf_counter()
        fits = [
            scipy.optimize.minimize(loss_and_grad, cascade.init(rng), jac=True, method="L-BFGS-B",
                                    options={"maxiter": 300})
            for _ in range(n_starts)
        ]
        fit_s = time.perf_counter() - start
    best = min(fits, key=lambda fit: fit.fun)
    freqs = np.geomspace(20.0, min(20000.0, 0.45 * cascade.fs), 512)
    difference = cascade.phase(best.x, freqs) - cascade.phase(theta_true, freqs)
    octaves = 1000.0 * 2.0 ** np.arange(-5, 5)
    octaves = octaves[octaves < 0.45 * cascade.fs]
    return {
        "spec": cascade.spec,
        "fs": cascade.fs,
        "octaves_hz": octaves,
        "true_phase_deg": np.degrees(cascade.phase(theta_true, octaves)),
        "fitted_phase_deg": np.degrees(cascade.phase(best.x, octaves)),
        "esr_db": 10 * np.log10(max(best.fun, 1e-30)),
        "phase_error_deg": float(np.degrees(np.sqrt(np.mean(difference**2)))),
        "starts_at_optimum": sum(fit.fun < 1e-6 for fit in fits),
        "n_starts": n_starts,
        "sosfilt_ms": sosfilt_ms,
        "loss_grad_ms": loss_grad_ms,
        "fit_s": fit_s,
    }
