"""Speed of the differentiable cascade against scipy's sosfilt and a naive baseline.

Measured, in one run and with BLAS pinned to one thread
(:func:`apftools._threads.blas_single_thread`):

* the median wall time of one ``scipy.signal.sosfilt(sos, x)`` forward pass of
  a ``"{K}x2"`` cascade at fs = 48 kHz (``sos`` precomputed);
* the median wall time of one loss and gradient,
  ``autograd.value_and_grad(loss)(theta)`` with ``loss`` the mean squared
  error of ``Cascade.process(theta, x)`` against a noise target;
* their ratio, over N in {48 000, 480 000, 4 800 000} samples and
  K in {4, 8, 16, 32} sections;
* the baseline this replaces: a per-sample Python loop that builds the
  direct-form-II-transposed recursion in the autograd graph (K = 4, small N),
  with its time extrapolated linearly to N = 48 000;
* the cost of state: a loss and gradient through ``apftools.sosfilt(sos, x,
  zi=zi)`` (gradients with respect to ``sos``, ``x`` and ``zi``, a loss on
  ``zf`` too) against the same without ``zi``, K = 8, N = 480 000
  (target at most 1.1x), measured alternately in the same run.

Every timed function is called once untimed first (numba compiles its kernels
on first use); the garbage collector is off while timing, as in :mod:`timeit`.
Absolute times vary a lot between machines and between runs on a busy
machine; the ratios to sosfilt measured in the same run are the stable
quantity, and the targets are stated in terms of them.

Usage
-----
::

    python bench/speed.py               # full grid, about a minute on 2 cores
    python bench/speed.py --quick       # smoke run: N in {4800, 48000}, K in {4, 8}
    python bench/speed.py --repeats 9   # more repeats (fewer for the largest N)

The script exits with status 0 whether or not the targets are met: it is a
benchmark, not a test.
"""

import argparse
import gc
import statistics
import time

import autograd
import autograd.numpy as anp
import numpy as np
import scipy.signal

from apftools import Cascade
from apftools._threads import blas_single_thread
from apftools.losses import mse

FS = 48000
SEED_THETA = 0
SEED_X = 1
SEED_TARGET = 2

FULL_N = (48_000, 480_000, 4_800_000)
FULL_K = (4, 8, 16, 32)
QUICK_N = (4_800, 48_000)
QUICK_K = (4, 8)
BASELINE_N = (480, 4_800)
BASELINE_K = 4
EXTRAPOLATE_N = 48_000
LARGE_N = 1_000_000  # at or above this, at most LARGE_REPEATS repeats
LARGE_REPEATS = 3

# (N, K, maximum ratio loss+grad / sosfilt)
TARGETS = ((480_000, 8, 5.0), (48_000, 4, 10.0))


def median_time(fn, repeats, warm_up=True):
    """Median wall time in seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    if warm_up:
        fn()
    # Like timeit: collect once, then keep the collector out of the timed loop
    # (a gc.collect() before every call would also evict the caches).
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        if was_enabled:
            gc.enable()
    return statistics.median(times)


def make_signals(n_samples):
    """Standard normal input and target, fixed seeds."""
    x = np.random.default_rng(SEED_X).standard_normal(n_samples)
    target = np.random.default_rng(SEED_TARGET).standard_normal(n_samples)
    return x, target


def fast_loss(cascade, x, target):
    """Loss of the library path: ``Cascade.process`` then MSE."""
    return lambda theta: mse(cascade.process(theta, x), target)


def naive_loss(cascade, x, target):
    """Loss of the naive baseline: the DF2T biquad recursion, one Python step per sample.

    Every multiply and add of every sample is a node of the autograd graph,
    which is what per-sample autodiff research code does.
    """
    x = [float(v) for v in x]

    def loss(theta):
        sos = cascade.sos(theta)
        signal = x
        for s in range(cascade.n_sections):
            a0 = sos[s, 3]
            b0, b1, b2 = sos[s, 0] / a0, sos[s, 1] / a0, sos[s, 2] / a0
            a1, a2 = sos[s, 4] / a0, sos[s, 5] / a0
            z1 = z2 = 0.0
            out = []
            for v in signal:
                y = b0 * v + z1
                z1 = b1 * v - a1 * y + z2
                z2 = b2 * v - a2 * y
                out.append(y)
            signal = out
        return mse(anp.array(signal), target)

    return loss


def repeats_for(n_samples, repeats):
    return min(repeats, LARGE_REPEATS) if n_samples >= LARGE_N else repeats


def run_grid(n_values, k_values, repeats):
    """Rows (N, K, sosfilt s, loss+grad s) of the main grid."""
    rows = []
    for n_samples in n_values:
        x, target = make_signals(n_samples)
        r = repeats_for(n_samples, repeats)
        for k in k_values:
            cascade = Cascade(f"{k}x2", FS)
            theta = cascade.init(rng=SEED_THETA)
            sos = np.asarray(cascade.sos(theta))
            t_sos = median_time(lambda: scipy.signal.sosfilt(sos, x), r)
            value_and_grad = autograd.value_and_grad(fast_loss(cascade, x, target))
            t_grad = median_time(lambda: value_and_grad(theta), r)
            rows.append((n_samples, k, t_sos, t_grad))
            gc.collect()
    return rows


def run_baseline(n_values, repeats):
    """Rows (N, naive s, fast s, relative loss difference) for the per-sample baseline."""
    cascade = Cascade(f"{BASELINE_K}x2", FS)
    theta = cascade.init(rng=SEED_THETA)
    rows = []
    for n_samples in n_values:
        x, target = make_signals(n_samples)
        naive = autograd.value_and_grad(naive_loss(cascade, x, target))
        fast = autograd.value_and_grad(fast_loss(cascade, x, target))
        naive_value, _ = naive(theta)  # also the warm-up calls
        fast_value, _ = fast(theta)
        rel = abs(naive_value - fast_value) / abs(fast_value)
        t_naive = median_time(lambda: naive(theta), min(repeats, 3), warm_up=False)
        t_fast = median_time(lambda: fast(theta), repeats, warm_up=False)
        rows.append((n_samples, t_naive, t_fast, rel))
    return rows


STATE_N, STATE_K, STATE_TARGET = 480_000, 8, 1.1


def run_state(repeats):
    """Median times of loss+gradient through sosfilt with and without zi, measured alternately."""
    from apftools import sosfilt

    rng = np.random.default_rng(SEED_X)
    sos = scipy.signal.butter(2 * STATE_K, 0.1, output="sos")  # STATE_K sections
    x, target = make_signals(STATE_N)
    zi = rng.standard_normal((sos.shape[0], 2))

    def without(s, xx):
        return anp.mean((sosfilt(s, xx) - target) ** 2)

    def with_state(s, xx, z):
        y, zf = sosfilt(s, xx, zi=z)
        return anp.mean((y - target) ** 2) + anp.sum(zf**2)

    plain = autograd.value_and_grad(without, (0, 1))
    state = autograd.value_and_grad(with_state, (0, 1, 2))
    plain(sos, x), state(sos, x, zi)  # compile
    times = {"plain": [], "state": []}
    for _ in range(repeats):
        times["plain"].append(median_time(lambda: plain(sos, x), 1, warm_up=False))
        times["state"].append(median_time(lambda: state(sos, x, zi), 1, warm_up=False))
    return statistics.median(times["plain"]), statistics.median(times["state"])


def print_grid(rows):
    print("Main grid: one sosfilt forward vs one loss+gradient (median wall time)")
    header = f"{'N':>10}  {'K':>3}  {'sosfilt ms':>12}  {'loss+grad ms':>13}  {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for n_samples, k, t_sos, t_grad in rows:
        print(f"{n_samples:>10}  {k:>3}  {1e3 * t_sos:>12.3f}  {1e3 * t_grad:>13.3f}  {t_grad / t_sos:>7.2f}")


def print_baseline(rows):
    print(f"Baseline: naive per-sample autograd loop vs fast loss+gradient (K={BASELINE_K}, median wall time)")
    header = f"{'N':>10}  {'naive ms':>12}  {'fast ms':>10}  {'naive/fast':>11}  {'loss rel diff':>13}  {'check':>5}"
    print(header)
    print("-" * len(header))
    for n_samples, t_naive, t_fast, rel in rows:
        check = "ok" if rel <= 1e-9 else "FAIL"
        print(
            f"{n_samples:>10}  {1e3 * t_naive:>12.1f}  {1e3 * t_fast:>10.3f}  {t_naive / t_fast:>11.0f}"
            f"  {rel:>13.2e}  {check:>5}"
        )
    n_ref, t_ref = rows[-1][0], rows[-1][1]
    extrapolated = t_ref * EXTRAPOLATE_N / n_ref
    print(
        f"EXTRAPOLATED (linear in N from N={n_ref}, not measured): naive loss+grad at "
        f"N={EXTRAPOLATE_N}, K={BASELINE_K} ~ {extrapolated:.1f} s"
    )
    return extrapolated


def print_targets(rows, quick):
    print("Targets (ratio loss+grad / sosfilt)")
    measured = {(n, k): t_grad / t_sos for n, k, t_sos, t_grad in rows}
    for n_samples, k, limit in TARGETS:
        label = f"ratio <= {limit:g} at N={n_samples}, K={k}"
        if (n_samples, k) not in measured:
            why = " (omitted by --quick)" if quick else ""
            print(f"  {label}: not measured{why}")
            continue
        ratio = measured[(n_samples, k)]
        verdict = "MET" if ratio <= limit else "NOT MET"
        print(f"  {label}: {verdict} (measured {ratio:.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid for a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per case (default 7, quick 3)")
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 7)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    n_values, k_values = (QUICK_N, QUICK_K) if args.quick else (FULL_N, FULL_K)

    with blas_single_thread():
        start = time.perf_counter()
        grid = run_grid(n_values, k_values, repeats)
        baseline = run_baseline(BASELINE_N, repeats)
        plain, state = run_state(repeats)
        elapsed = time.perf_counter() - start

    print(f"apftools speed benchmark: fs={FS} Hz, spec '{{K}}x2', repeats={repeats} "
          f"(at most {LARGE_REPEATS} for N >= {LARGE_N}), BLAS pinned to 1 thread")
    print()
    print_grid(grid)
    print()
    print_baseline(baseline)
    print()
    print_targets(grid, args.quick)
    print()
    verdict = "met" if state / plain <= STATE_TARGET else "NOT met"
    print(f"State (zi in, zf out), N={STATE_N}, K={STATE_K}: loss+grad {1e3 * plain:.2f} ms without zi, "
          f"{1e3 * state:.2f} ms with, ratio {state / plain:.3f} (target {STATE_TARGET}: {verdict})")
    print()
    print(f"total benchmark time {elapsed:.1f} s")


if __name__ == "__main__":
    main()
