r"""Bulk delay and polarity between a dry signal and an effect's output; fractional delays.

:func:`estimate_delay` finds the lag :math:`d` and sign :math:`s` with
:math:`w[n] \approx s\, x[n - d]` by the generalised cross-correlation with
phase transform (GCC-PHAT); :func:`apply_delay` renders a (fractional,
possibly negative) delay with a Kaiser-windowed sinc.

Reference: C. H. Knapp and G. C. Carter, "The generalized correlation method
for estimation of time delay", IEEE Trans. Acoustics, Speech, and Signal
Processing 24(4), 320-327, 1976.
"""

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal
import scipy.special

from ._validate import validate_fs, validate_positive, validate_signal
from .bands import audio_band
from .errors import ApftoolsTypeError, ApftoolsValueError

#: Below this peak prominence (``1 - second / first``) a delay estimate is flagged ambiguous.  Measured
#: at 48 kHz on 1 s of white noise: uncorrelated dry and wet reach 0.19 (99th percentile) over a 0.1 s
#: search and 0.27 over 0.01 s (fewer lags, larger gaps between chance peaks); a true delay scores 0.97,
#: 0.92 at -10 dB SNR and 0.73 at -20 dB.
AMBIGUOUS_CONFIDENCE = 0.4
#: Lags where the band's own correlation exceeds this fraction of its peak belong to the main lobe,
#: which the confidence measure skips.
MAIN_LOBE_LEVEL = 0.05
#: Whitening floor of the cross-spectrum, relative to its largest magnitude.
PHAT_EPS = 1e-10
#: Raised-cosine fade-in and fade-out (seconds) applied to both signals before the FFT, so the steps
#: at the ends of truncated signals do not swamp the weak high frequencies of tonal material.
EDGE_FADE_S = 0.005
#: Taps and Kaiser beta of the fractional-delay FIR used by :func:`apply_delay`.
FRACTIONAL_TAPS = 64
FRACTIONAL_BETA = 8.0


@dataclass(frozen=True)
class DelayEstimate:
    """The result of :func:`estimate_delay`.

    Attributes
    ----------
    delay_samples : float
        Bulk delay in samples (fractional); positive when the wet lags the dry,
        ``wet[n] ~ polarity * dry[n - delay_samples]``.
    polarity : int
        +1, or -1 when the wet is inverted.
    confidence : float
        Peak prominence in [0, 1]: ``1 - second / first`` with ``first`` the
        peak of :math:`|r|` and ``second`` the largest :math:`|r|` at searched
        lags outside the peak's main lobe.
    ambiguous : bool
        ``confidence < AMBIGUOUS_CONFIDENCE`` or the peak at the edge of the
        searched range (the true delay may lie beyond ``max_delay_samples``).
    max_delay_samples : int
        Lags in ``[-max_delay_samples, max_delay_samples]`` were searched.
    """

    delay_samples: float
    polarity: int
    confidence: float
    ambiguous: bool
    max_delay_samples: int


def _band_weight(freqs_hz, band_hz, fs):
    """Band-pass weight on ``freqs_hz``: 1 inside, half-Hann ramps over [lo, 2 lo] and [0.8 hi, hi], 0 outside.

    The tapered edges keep the correlation peak free of the sinc ringing of a hard mask.
    """
    try:
        lo, hi = band_hz
    except (TypeError, ValueError):
        raise ApftoolsTypeError(f"band_hz must be a pair (low_hz, high_hz), got {band_hz!r}") from None
    lo = 0.0 if lo is None else float(lo)
    hi = audio_band(fs)[1] if hi is None else float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi) and 0.0 <= lo < hi <= fs / 2):
        raise ApftoolsValueError(
            f"band_hz must satisfy 0 <= low < high <= fs/2 = {fs / 2:g} Hz, got {band_hz!r}")
    rise = np.clip((freqs_hz - lo) / lo, 0.0, 1.0) if lo > 0 else (freqs_hz >= 0).astype(float)
    fall = np.clip((hi - freqs_hz) / (0.2 * hi), 0.0, 1.0)
    weight = np.sin(0.5 * np.pi * rise) ** 2 * np.sin(0.5 * np.pi * fall) ** 2
    return weight


def _refine_peak(spectrum, omega, lag, polarity, r_neighbours):
    r"""Sub-sample maximum of :math:`s\,r(\tau)`, the band-limited interpolant of the correlation.

    Starts from the parabola through the three samples around the integer peak,
    then takes Newton steps on the analytic
    :math:`r(\tau) = \sum_k c_k \operatorname{Re}(W_k e^{j\omega_k\tau})`.
    """
    left, centre, right = polarity * r_neighbours
    curvature = left - 2 * centre + right
    tau = lag + (0.5 * (left - right) / curvature if curvature < 0 else 0.0)
    for _ in range(8):
        rotated = spectrum * np.exp(1j * omega * tau)
        slope = -polarity * np.sum(omega * rotated.imag)
        curvature = -polarity * np.sum(omega**2 * rotated.real)
        if curvature >= 0:
            break
        step = np.clip(-slope / curvature, -0.5, 0.5)
        tau = float(np.clip(tau + step, lag - 1.0, lag + 1.0))
        if abs(step) < 1e-9:
            break
    return tau


def estimate_delay(dry, wet, fs, max_delay_s=0.1, *, band_hz=(50.0, None)):
    r"""Bulk delay and polarity of ``wet`` relative to ``dry`` by GCC-PHAT.

    Both signals are faded in and out over ``EDGE_FADE_S`` (5 ms) and
    zero-padded; their cross-spectrum, summed over channels, is whitened and
    band-limited before the inverse FFT:

    .. math:: r(\tau) = \mathcal{F}^{-1}\left\{ B(f)\,
              \frac{G(f)}{|G(f)| + \epsilon} \right\}, \qquad
              G(f) = \sum_c X_c^*(f)\, W_c(f),

    with :math:`B` the band weight and :math:`\epsilon` = ``PHAT_EPS`` times
    :math:`\max|G|`.  The delay is the lag of :math:`\max|r|` within
    ``max_delay_s``, refined to a fraction of a sample by Newton steps on the
    band-limited interpolant of :math:`r`; the polarity is the sign of
    :math:`r` there.

    Why the phase transform: the plain cross-correlation is the inverse FFT of
    :math:`G` itself, dominated by the few strongest partials of tonal
    material; its peak then sits where those partials line up after the
    effect's phase shift, often hundreds of samples (a fraction of a bass
    period) from the true lag.  Whitening gives every frequency the same
    weight, so only the common linear-phase term survives and the peak is a
    narrow band-limited impulse at the bulk delay (Knapp and Carter 1976).

    Parameters
    ----------
    dry, wet : array_like, shape (n_samples,) or (n_channels, n_samples)
        Effect input and output, same channel count; lengths may differ (the
        common length is used).
    fs : float
        Sample rate in Hz.
    max_delay_s : float
        Largest delay searched, either sign, in seconds (capped at the signal
        length).
    band_hz : (float or None, float or None)
        Frequencies used, in Hz; ``None`` means 0 and ``min(20 kHz, 0.45 fs)``.
        The edges are tapered over an octave above the low edge and the top
        20% below the high edge.

    Returns
    -------
    DelayEstimate
        Positive ``delay_samples`` means the wet lags the dry.

    Notes
    -----
    ``confidence`` skips the peak's main lobe: the lags around it where the
    band weight's own correlation (the ideal peak shape,
    :math:`\mathcal{F}^{-1}\{B\}`) exceeds ``MAIN_LOBE_LEVEL`` of its
    maximum (7 samples either side for the default band at 48 kHz).  A search
    range no wider than that lobe leaves nothing to compare with, so the
    confidence is 1 and only the edge rule flags ambiguity.

    On white noise the fractional part of a delay rendered with
    :func:`apply_delay` is recovered to about 1e-4 samples (1 s at 48 kHz).

    The edge fades keep the steps where a recording is cut from reading as
    broadband content that the effect did not process; they also mean that
    content in the first and last 5 ms alone (an impulse at sample 0) is
    not seen.

    References
    ----------
    C. H. Knapp and G. C. Carter, "The generalized correlation method for
    estimation of time delay", IEEE Trans. ASSP 24(4), 320-327, 1976.

    Examples
    --------
    >>> import numpy as np
    >>> fs = 48000
    >>> dry = np.random.default_rng(0).standard_normal(fs)
    >>> wet = -apply_delay(dry, 25.5)
    >>> est = estimate_delay(dry, wet, fs)
    >>> round(est.delay_samples, 2), est.polarity, est.ambiguous
    (25.5, -1, False)
    """
    fs = validate_fs(fs)
    max_delay_s = validate_positive(max_delay_s, "max_delay_s")
    dry, wet = validate_signal(dry, "dry"), validate_signal(wet, "wet")
    if dry.ndim > 2 or wet.ndim > 2:
        raise ApftoolsValueError(
            f"dry and wet must have shape (n_samples,) or (n_channels, n_samples), got {dry.shape} and {wet.shape}")
    dry, wet = np.atleast_2d(dry), np.atleast_2d(wet)
    if dry.shape[0] != wet.shape[0]:
        raise ApftoolsValueError(f"dry has {dry.shape[0]} channel(s) and wet has {wet.shape[0]}; they must match")
    n = min(dry.shape[-1], wet.shape[-1])
    dry, wet = dry[:, :n], wet[:, :n]
    for name, signal in (("dry", dry), ("wet", wet)):
        if not np.any(signal):
            raise ApftoolsValueError(f"the {name} signal is silent (all zeros over the first {n} samples)")
    max_lag = min(int(round(max_delay_s * fs)), n - 1)
    if max_lag < 1:
        raise ApftoolsValueError(
            f"nothing to search: max_delay_s={max_delay_s!r} at fs={fs:g} Hz and {n} common samples "
            "allow no lag of one sample or more")

    nfft = scipy.fft.next_fast_len(n + max_lag, real=True)
    weight = _band_weight(scipy.fft.rfftfreq(nfft, 1.0 / fs), band_hz, fs)
    if not np.any(weight):
        raise ApftoolsValueError(
            f"band_hz={band_hz!r} holds no frequency bin of the {nfft}-point FFT (bins every {fs / nfft:.3g} Hz)")
    fade = scipy.signal.windows.tukey(n, min(1.0, 2 * EDGE_FADE_S * fs / n))
    cross, content = np.zeros(nfft // 2 + 1, complex), {"dry": False, "wet": False}
    for d, w in zip(dry, wet):  # a channel at a time, in place: long signals hold few spectra at once
        d, w = d * fade, w * fade
        content["dry"], content["wet"] = content["dry"] or np.any(d), content["wet"] or np.any(w)
        product = scipy.fft.rfft(d, nfft)
        del d
        np.conjugate(product, out=product)
        product *= scipy.fft.rfft(w, nfft)
        cross += product
        del w, product
    del fade
    for name, found in content.items():
        if not found:
            raise ApftoolsValueError(
                f"the {name} signal has no content outside its first and last {1000 * EDGE_FADE_S:g} ms, "
                "which are faded out; pad it with silence")
    magnitude = np.abs(cross)
    magnitude += max(PHAT_EPS * magnitude.max(), np.finfo(float).tiny)
    spectrum = cross  # weight * cross / (|cross| + eps), in place and in that order
    spectrum *= weight
    spectrum /= magnitude
    del magnitude
    r = scipy.fft.irfft(spectrum, nfft)
    lags = np.arange(-max_lag, max_lag + 1)
    searched = np.abs(r[lags])
    index = int(np.argmax(searched))
    if searched[index] == 0:
        raise ApftoolsValueError(f"dry and wet have no common content within band_hz={band_hz!r}")
    lag = int(lags[index])
    polarity = 1 if r[lag] >= 0 else -1

    own = np.abs(scipy.fft.irfft(weight, nfft)[:max_lag + 1])  # the band's own correlation peak, at lag 0
    guard = int(np.flatnonzero(own > MAIN_LOBE_LEVEL * own[0])[-1]) + 1
    outside = searched[np.abs(lags - lag) > guard]
    second = outside.max() if outside.size else 0.0
    confidence = float(np.clip(1.0 - second / searched[index], 0.0, 1.0))

    # r(tau) = sum_k c_k Re(W_k exp(j w_k tau)) / nfft over the bins in the band (c_k = 2 except DC, Nyquist)
    bins = np.flatnonzero(weight)
    scale = np.where((bins == 0) | (2 * bins == nfft), 1.0, 2.0) / nfft
    omega = 2 * np.pi * bins / nfft
    delay = _refine_peak(scale * spectrum[bins], omega, lag, polarity, r[[lag - 1, lag, lag + 1]])
    ambiguous = confidence < AMBIGUOUS_CONFIDENCE or abs(lag) >= max_lag
    return DelayEstimate(float(delay), polarity, confidence, bool(ambiguous), max_lag)


def _fractional_delay_fir(mu, n_taps=FRACTIONAL_TAPS, beta=FRACTIONAL_BETA):
    r"""Kaiser-windowed sinc delaying by ``n_taps // 2 - 1 + mu`` samples, ``0 <= mu < 1``.

    .. math:: h[m] = \operatorname{sinc}(t_m)\, w_\beta(t_m), \qquad t_m = m - (L/2 - 1) - \mu,

    with :math:`w_\beta(t) = I_0(\beta\sqrt{1 - (2t/L)^2}) / I_0(\beta)` the
    continuous Kaiser window of length :math:`L` = ``n_taps`` centred on the
    delayed sample, so the window moves with the fractional delay.
    """
    t = np.arange(n_taps) - (n_taps // 2 - 1) - mu
    window = scipy.special.i0(beta * np.sqrt(np.clip(1.0 - (2.0 * t / n_taps) ** 2, 0.0, None)))
    return np.sinc(t) * window / scipy.special.i0(beta)


def delayed_range(read, start, stop, delay_samples):
    r"""Samples ``start`` to ``stop`` of a signal delayed by ``delay_samples``, reading only what they need.

    ``read(a, b)`` returns the signal's samples ``a`` to ``b`` (time on the
    last axis), zeros outside it.  The integer part :math:`k = \lfloor d
    \rfloor` of the delay is a shift; the fractional part :math:`\mu = d - k`
    is a :func:`_fractional_delay_fir` whose own bulk delay of
    :math:`L/2 - 1` samples is taken off the shift:

    .. math:: y[n] = \sum_{m=0}^{L-1} h[m]\, x[n - k + L/2 - 1 - m].

    Rendering a long file block by block with this gives what
    :func:`apply_delay` gives on the whole signal.
    """
    whole = int(np.floor(delay_samples))
    mu = float(delay_samples) - whole
    if mu == 0.0:
        return read(start - whole, stop - whole)
    h = _fractional_delay_fir(mu)
    lead = whole - (FRACTIONAL_TAPS // 2 - 1)
    x = read(start - lead - (FRACTIONAL_TAPS - 1), stop - lead)
    # direct convolution, row by row: 1.7x faster than overlap-add for 64 taps, and no FFT rounding
    rows = x.reshape(-1, x.shape[-1])
    out = np.empty((rows.shape[0], stop - start))
    for row, y in zip(rows, out):
        y[:] = np.convolve(row, h, mode="valid")
    return out.reshape(x.shape[:-1] + (stop - start,))


def zero_padded(x):
    """``read(a, b)`` of :func:`delayed_range` for an array: ``x[..., a:b]``, zeros outside ``x``."""

    def read(start, stop):
        out = np.zeros(x.shape[:-1] + (stop - start,))
        first, last = max(start, 0), min(stop, x.shape[-1])
        if first < last:
            out[..., first - start:last - start] = x[..., first:last]
        return out

    return read


def apply_delay(x, delay_samples):
    r"""Delay ``x`` by ``delay_samples`` (fractional, either sign), keeping its shape.

    .. math:: y[n] = x[n - d],

    with zeros shifted in: at the start for :math:`d > 0`, at the end for
    :math:`d < 0` (an advance).  The integer part :math:`\lfloor d \rfloor` is
    a shift; the fractional part :math:`\mu = d - \lfloor d \rfloor` is a
    :func:`_fractional_delay_fir` (64 taps, Kaiser :math:`\beta = 8`: error
    below about 1e-4 of full scale up to 0.4 fs); see :func:`delayed_range`.
    A delay of 0 returns an exact copy.

    Parameters
    ----------
    x : array_like, shape (..., n_samples)
        Signal, time on the last axis.
    delay_samples : float
        Delay in samples; positive delays, negative advances.

    Returns
    -------
    ndarray, float64, same shape as ``x``

    Examples
    --------
    >>> apply_delay([1.0, 2.0, 3.0, 4.0], 2)
    array([0., 0., 1., 2.])
    >>> apply_delay([1.0, 2.0, 3.0, 4.0], -1)
    array([2., 3., 4., 0.])
    """
    x = validate_signal(x)
    if isinstance(delay_samples, bool) or not isinstance(delay_samples, numbers.Real):
        raise ApftoolsTypeError(f"delay_samples must be a real number, got {delay_samples!r}")
    if not np.isfinite(delay_samples):
        raise ApftoolsValueError(f"delay_samples must be finite, got {delay_samples!r}")
    return delayed_range(zero_padded(x), 0, x.shape[-1], delay_samples)
