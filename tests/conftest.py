"""Shared test configuration: hypothesis profiles and scipy reference helpers."""

import os

import numpy as np
import scipy.signal
from hypothesis import HealthCheck, settings

# Deterministic in CI (same examples every run, no example database); random locally.
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def upsample_section(row, stretch):
    """(b, a) polynomials of one section evaluated at z**stretch (zeros between taps)."""
    b = np.zeros(2 * stretch + 1, dtype=np.asarray(row).dtype)
    a = np.zeros_like(b)
    b[::stretch], a[::stretch] = row[:3], row[3:]
    return b, a


def reference_process(cascade, sos, x):
    """The cascade's output computed with scipy.signal.lfilter on expanded polynomials.

    Works in complex arithmetic, so it serves as the complex-step reference.
    """
    y = np.asarray(x)
    for row, kind in zip(sos, cascade.kinds):
        b, a = upsample_section(row, kind.stretch)
        y = scipy.signal.lfilter(b, a, y, axis=-1)
    return y


def random_stable_sos(rng, n_sections, max_radius=0.99):
    """Random biquads with poles and zeros inside ``max_radius`` (torchlpc-style)."""
    def pair():
        r = rng.uniform(0.0, max_radius, n_sections)
        w = rng.uniform(0.0, np.pi, n_sections)
        return -2 * r * np.cos(w), r * r

    a1, a2 = pair()
    z1, z2 = pair()
    gain = rng.uniform(0.5, 2.0, n_sections)
    return np.stack([gain, gain * z1, gain * z2, np.ones(n_sections), a1, a2], axis=1)
