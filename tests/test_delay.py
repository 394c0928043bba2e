"""Bulk delay by GCC-PHAT and fractional-delay rendering.

Delays are rendered independently of :func:`apply_delay` (slicing) wherever
they are integer; fractional delays are checked against analytic sinusoids.
"""

import numpy as np
import pytest
import scipy.signal

from apftools.delay import AMBIGUOUS_CONFIDENCE, DelayEstimate, apply_delay, estimate_delay
from apftools.errors import ApftoolsTypeError, ApftoolsValueError

FS = 48000


def shifted(x, d):
    """``x[n - d]`` with zeros shifted in, by slicing (integer ``d``)."""
    y = np.zeros_like(x)
    if d >= 0:
        y[..., d:] = x[..., :x.shape[-1] - d]
    else:
        y[..., :d] = x[..., -d:]
    return y


def white(seed, n=FS):
    return np.random.default_rng(seed).standard_normal(n)


def pink(seed, n=FS):
    """Noise with a -3 dB/octave spectrum (Kellet's pinking filter, as in J. O. Smith's 'Spectral Audio')."""
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    return scipy.signal.lfilter(b, a, white(seed, n))


def tonal(seed, seconds=1.5):
    """A sustained 55 Hz bass with four harmonics plus four decaying harmonic plucks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    x = sum(a * np.sin(2 * np.pi * 55 * k * t + rng.uniform(0, 2 * np.pi))
            for k, a in zip(range(1, 5), [1.0, 0.5, 0.3, 0.2]))
    for onset, f0 in zip([0.1, 0.5, 0.9, 1.2], [110.0, 165.0, 220.0, 82.5]):
        tt = np.clip(t - onset, 0.0, None)
        x += 0.5 * (t >= onset) * np.exp(-tt / 0.15) * sum(np.sin(2 * np.pi * f0 * k * tt) / k for k in range(1, 8))
    return x


@pytest.mark.parametrize("make", [white, pink])
@pytest.mark.parametrize("delay", [37, -120])
def test_integer_delay_recovered(make, delay):
    dry = make(1)
    est = estimate_delay(dry, shifted(dry, delay), FS)
    assert isinstance(est, DelayEstimate)
    assert round(est.delay_samples) == delay
    assert abs(est.delay_samples - delay) < 1e-3
    assert est.polarity == 1 and not est.ambiguous and est.confidence > 0.9
    assert est.max_delay_samples == round(0.1 * FS)


@pytest.mark.parametrize("delay", [10.3, -7.75, 0.5])
def test_fractional_delay_recovered(delay):
    # measured error ~1e-5 samples; the required 0.05 would not even separate a bias of a few hundredths
    dry = white(2)
    est = estimate_delay(dry, apply_delay(dry, delay), FS)
    assert abs(est.delay_samples - delay) < 1e-3


def test_inverted_polarity_detected():
    dry = pink(3)
    est = estimate_delay(dry, -0.5 * shifted(dry, 12), FS)
    assert est.polarity == -1
    assert abs(est.delay_samples - 12) < 1e-3 and not est.ambiguous


def test_stereo_shares_one_delay_and_uses_the_common_length():
    dry = np.stack([white(4), pink(5)])
    wet = shifted(dry, 23) * np.array([[1.0], [0.2]])
    est = estimate_delay(dry, wet[:, :-1000], FS)  # the wet is shorter
    assert abs(est.delay_samples - 23) < 1e-3 and est.polarity == 1 and not est.ambiguous


@pytest.mark.parametrize("delay", [0, 37])
def test_tonal_material_through_highpass_where_plain_xcorr_fails(delay):
    dry = tonal(6)
    sos = scipy.signal.butter(2, 100.0, "highpass", fs=FS, output="sos")
    wet = shifted(scipy.signal.sosfilt(sos, dry), delay)  # causal, no latency of its own
    max_lag = int(0.1 * FS)
    plain = scipy.signal.correlate(wet, dry, method="fft")
    lags = scipy.signal.correlation_lags(len(wet), len(dry))
    keep = np.abs(lags) <= max_lag
    plain_lag = lags[keep][np.argmax(np.abs(plain[keep]))]
    assert abs(plain_lag - delay) > 50  # the bass's phase shift drags the plain peak ~100 samples away

    est = estimate_delay(dry, wet, FS)
    assert abs(est.delay_samples - delay) < 2
    assert est.polarity == 1 and not est.ambiguous


@pytest.mark.parametrize("seed", range(5))
def test_uncorrelated_noise_is_ambiguous(seed):
    est = estimate_delay(white(seed), white(seed + 100), FS)
    assert est.ambiguous and est.confidence < AMBIGUOUS_CONFIDENCE


def test_noisy_wet_still_confident():
    dry = white(7)
    est = estimate_delay(dry, shifted(dry, 37) + np.sqrt(10) * white(8), FS)  # -10 dB SNR
    assert abs(est.delay_samples - 37) < 0.05
    assert 0.8 < est.confidence < 0.96 and not est.ambiguous  # lower than the clean 0.97


def test_delay_beyond_the_search_range_is_ambiguous():
    dry = white(9)
    far = estimate_delay(dry, shifted(dry, 600), FS, max_delay_s=0.005)  # 240 samples searched
    assert far.max_delay_samples == 240
    assert far.ambiguous and far.confidence < AMBIGUOUS_CONFIDENCE
    edge = estimate_delay(dry, shifted(dry, 240), FS, max_delay_s=0.005)  # clear peak, but on the edge
    assert edge.confidence > 0.9 and edge.ambiguous


def test_band_limits_are_honoured():
    # low band delayed by 5 samples, high band by 300: each band_hz sees only its own delay
    dry = white(10)
    low = scipy.signal.sosfiltfilt(scipy.signal.butter(8, 2000.0, fs=FS, output="sos"), dry)
    wet = shifted(low, 5) + shifted(dry - low, 300)
    assert abs(estimate_delay(dry, wet, FS, band_hz=(50.0, 1500.0)).delay_samples - 5) < 0.01
    assert abs(estimate_delay(dry, wet, FS, band_hz=(5000.0, None)).delay_samples - 300) < 0.01


@pytest.mark.parametrize("delay", [5, -7, 0, 49, -50])
def test_apply_integer_delay_is_a_zero_filled_roll(delay):
    x = np.random.default_rng(11).standard_normal((2, 3, 50))
    expected = np.roll(x, delay, axis=-1)
    if delay > 0:
        expected[..., :delay] = 0.0
    elif delay < 0:
        expected[..., delay:] = 0.0
    np.testing.assert_array_equal(apply_delay(x, delay), expected)
    np.testing.assert_array_equal(apply_delay(x, float(delay)), expected)


def test_apply_delay_beyond_the_length_gives_zeros():
    x = white(12, 100)
    np.testing.assert_array_equal(apply_delay(x, 250.5), np.zeros(100))
    np.testing.assert_array_equal(apply_delay(x, -100), np.zeros(100))


@pytest.mark.parametrize("delay", [3.7, -2.25, 0.5, 100.01])
def test_apply_fractional_delay_matches_shifted_sinusoids(delay):
    n = np.arange(4800)
    freqs = np.array([100.0, 1000.0, 10000.0, 18000.0])[:, None]  # up to 0.375 fs
    x = np.sin(2 * np.pi * freqs * n / FS + 0.3)
    y = apply_delay(x, delay)
    assert y.shape == x.shape
    expected = np.sin(2 * np.pi * freqs * (n - delay) / FS + 0.3)
    edge = 32 + int(np.ceil(abs(delay)))  # half the FIR plus the shift
    np.testing.assert_allclose(y[:, edge:-edge], expected[:, edge:-edge], rtol=0, atol=1e-4)


def test_delay_then_advance_restores_the_signal():
    x = scipy.signal.sosfilt(scipy.signal.butter(6, 15000.0, fs=FS, output="sos"), white(13, 4800))
    back = apply_delay(apply_delay(x, 17.4), -17.4)
    np.testing.assert_allclose(back[100:-100], x[100:-100], rtol=0, atol=1e-4 * np.max(np.abs(x)))


def test_zero_delay_is_an_exact_copy():
    x = white(14, 64).reshape(2, 32)
    y = apply_delay(x, 0)
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(x, y)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fs": 0}, ApftoolsValueError, "fs must be a positive finite sample rate in Hz, got 0.0"),
        ({"max_delay_s": -0.1}, ApftoolsValueError, r"max_delay_s must be positive and finite, got -0.1"),
        ({"max_delay_s": float("inf")}, ApftoolsValueError, r"max_delay_s must be positive and finite, got inf"),
        ({"max_delay_s": True}, ApftoolsTypeError, r"max_delay_s must be a real number, got True"),
        ({"max_delay_s": 1e-6}, ApftoolsValueError, r"nothing to search: max_delay_s=1e-06"),
        ({"wet": np.zeros((2, 4800))}, ApftoolsValueError, r"dry has 1 channel\(s\) and wet has 2"),
        ({"wet": np.zeros(4800)}, ApftoolsValueError, r"the wet signal is silent"),
        ({"dry": np.zeros((1, 1, 4800))}, ApftoolsValueError, r"got \(1, 1, 4800\) and \(4800,\)"),
        ({"dry": np.full(4800, np.nan)}, ApftoolsValueError, r"dry contains NaN or Inf"),
        ({"band_hz": (3000.0, 2000.0)}, ApftoolsValueError, r"0 <= low < high <= fs/2 = 24000 Hz, got \(3000.0"),
        ({"band_hz": (50.0, 30000.0)}, ApftoolsValueError, r"got \(50.0, 30000.0\)"),
        ({"band_hz": 50.0}, ApftoolsTypeError, r"band_hz must be a pair \(low_hz, high_hz\), got 50.0"),
        ({"band_hz": (1000.0, 1001.0)}, ApftoolsValueError, r"holds no frequency bin"),
    ],
)
def test_estimate_delay_validates_inputs(kwargs, error, match):
    args = {"dry": white(15, 4800), "wet": white(16, 4800), "fs": FS, "max_delay_s": 0.01} | kwargs
    band = args.pop("band_hz", (50.0, None))
    with pytest.raises(error, match=match):
        estimate_delay(**args, band_hz=band)


def test_estimate_delay_refuses_content_only_in_the_edge_fades():
    impulse = np.zeros(4800)
    impulse[0] = 1.0
    with pytest.raises(ApftoolsValueError, match=r"the dry signal has no content outside its first and last 5 ms"):
        estimate_delay(impulse, white(17, 4800), FS)


@pytest.mark.parametrize(
    ("x", "delay", "error", "match"),
    [
        (np.ones(8), float("nan"), ApftoolsValueError, "delay_samples must be finite, got nan"),
        (np.ones(8), "3", ApftoolsTypeError, "delay_samples must be a real number, got '3'"),
        (np.ones(8), None, ApftoolsTypeError, "delay_samples must be a real number, got None"),
        (np.ones(8, complex), 1.0, ApftoolsTypeError, "x must be a real array, got dtype complex128"),
        (np.ones(0), 1.0, ApftoolsValueError, r"at least one sample along its last axis, got shape \(0,\)"),
    ],
)
def test_apply_delay_validates_inputs(x, delay, error, match):
    with pytest.raises(error, match=match):
        apply_delay(x, delay)
