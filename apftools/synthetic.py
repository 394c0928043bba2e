r"""Synthetic dry/wet pairs with a known answer, for tests and benchmarks.

The wet is the dry through a known effect:

.. math:: w[n] = p \cdot (E * A_\theta * d)[n - D] + \sigma\, e[n],

with :math:`A_\theta` a random allpass cascade, :math:`D` a (possibly
fractional or negative) delay in samples, :math:`p = \pm 1` the polarity,
:math:`E` an optional minimum-phase peaking EQ (RBJ Audio EQ Cookbook) that
colours the magnitude, and :math:`e` white noise at ``noise_db`` below the
wet.  The dry is noise with a pink (-3 dB/octave) spectrum, like music on
average.
"""

from dataclasses import dataclass

import numpy as np
import scipy.signal

from ._validate import validate_fs
from .cascade import Cascade
from .delay import apply_delay


@dataclass(frozen=True)
class SyntheticPair:
    """A dry/wet pair and the effect that made it (see the module docstring)."""

    dry: np.ndarray
    wet: np.ndarray
    fs: float
    cascade: Cascade
    theta: np.ndarray
    delay_samples: float
    polarity: int
    eq_sos: np.ndarray


def pink_noise(n_samples, fs, rng, n_channels=1):
    """Noise with a -3 dB/octave spectrum above 20 Hz, unit RMS, shape (n_channels, n_samples)."""
    spectrum = np.fft.rfft(rng.standard_normal((n_channels, n_samples)), axis=-1)
    freqs = np.fft.rfftfreq(n_samples, 1.0 / fs)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))
    x = np.fft.irfft(spectrum, n_samples, axis=-1)
    return x / np.sqrt(np.mean(x**2))


def random_params(cascade, rng, radius=(0.3, 0.95), fc_hz=(50.0, 10000.0), warp=(-0.5, 0.5)):
    """Physical parameters drawn in musically plausible ranges (fc log-uniform)."""
    params = cascade.params(cascade.init(rng))
    for section in params:
        section["fc"] = float(np.exp(rng.uniform(*np.log(fc_hz))))
        if "R" in section:
            section["R"] = float(rng.uniform(*radius))
        if "a" in section:
            section["a"] = float(rng.uniform(*warp))
    return params


def peaking_eq(gain_db, fc_hz, q, fs):
    """RBJ cookbook peaking biquad as one sos row (minimum phase for any gain)."""
    amplitude, w0 = 10 ** (gain_db / 40), 2 * np.pi * fc_hz / fs
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * amplitude, -2 * np.cos(w0), 1 - alpha * amplitude]
    a = [1 + alpha / amplitude, -2 * np.cos(w0), 1 - alpha / amplitude]
    return scipy.signal.tf2sos(b, a)


def make_pair(spec="3x2w,1w", fs=48000, seconds=4.0, *, delay_samples=37.4, polarity=-1, eq_db=0.0,
              noise_db=-60.0, n_channels=1, rng=None):
    """A pink-noise dry and its wet through delay, polarity, a random cascade and an EQ.

    Parameters
    ----------
    spec : str
        Cascade spec of the true allpass.
    fs : float
        Sample rate in Hz.
    seconds : float
        Length.
    delay_samples : float
        Bulk delay (fractional and negative allowed).
    polarity : {1, -1}
    eq_db : float
        Gain of a peaking EQ (Q 0.7, log-uniform random centre 200 Hz - 5 kHz);
        0 for none.
    noise_db : float
        Noise level relative to the wet's RMS.
    n_channels : int
    rng : None, int or numpy.random.Generator

    Returns
    -------
    SyntheticPair
    """
    fs = validate_fs(fs)
    rng = np.random.default_rng(rng)
    cascade = Cascade(spec, fs)
    theta = cascade.theta_from_params(random_params(cascade, rng))
    dry = pink_noise(int(round(seconds * fs)), fs, rng, n_channels)
    eq_sos = peaking_eq(eq_db, float(np.exp(rng.uniform(np.log(200.0), np.log(5000.0)))), 0.7, fs)
    wet = polarity * apply_delay(scipy.signal.sosfilt(eq_sos, cascade.process(theta, dry)), delay_samples)
    wet = wet + 10 ** (noise_db / 20) * np.sqrt(np.mean(wet**2)) * rng.standard_normal(wet.shape)
    return SyntheticPair(dry, wet, fs, cascade, theta, float(delay_samples), int(polarity), eq_sos)
