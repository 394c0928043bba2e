r"""Measured transfer function of an effect: Welch estimate, coherence, group delay.

The dry-to-wet transfer function is the H1 estimate

.. math:: \hat H(f) = \frac{S_{dw}(f)}{S_{dd}(f)}, \qquad
          \gamma^2(f) = \frac{|S_{dw}(f)|^2}{S_{dd}(f)\, S_{ww}(f)},

from Welch-averaged cross and auto spectra summed over channels (one model
for all channels).  :math:`\gamma^2` near 1 means the wet is a linear,
time-invariant function of the dry at that frequency; noise, distortion and
time-varying effects (phaser, chorus) lower it.

Reference: Bendat and Piersol, *Random Data*, 4th ed., Wiley 2010, ch. 9.
"""

from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.ndimage

from ._validate import validate_fs
from .bands import audio_band, third_octave_centres, third_octave_index
from .errors import ApftoolsValueError


#: Without given ``bands``, weights ignore third-octave bands more than 60 dB below the strongest (power ratio).
LEVEL_FLOOR = 1e-6
#: The excess phase left after the latency counts as a line (a pure delay) below this weighted RMS (radians).
LINEAR_EXCESS_RAD = 0.05


@dataclass(frozen=True)
class TransferFunction:
    r"""A measured transfer function on a frequency grid.

    Attributes
    ----------
    freqs_hz : ndarray
        Frequencies in Hz.
    h : ndarray
        Complex response :math:`S_{dw}/S_{dd}` (wet relative to dry).
    coherence : ndarray
        Magnitude-squared coherence in [0, 1].
    power : ndarray
        Cross-spectral magnitude :math:`|S_{dw}|` (signal power present at each
        frequency, in units of squared amplitude per Hz).
    group_delay : ndarray
        :math:`-d\varphi/d\omega` in samples (see :func:`measured_group_delay`).
    fs : float
        Sample rate in Hz.
    bands : ndarray, optional
        Per third-octave band (:func:`~apftools.bands.third_octave_centres`):
        1 to weigh it, 0 not to, NaN to weigh it if it has energy
        (:attr:`weights`); by default NaN for all.
    """

    freqs_hz: np.ndarray
    h: np.ndarray
    coherence: np.ndarray
    power: np.ndarray
    group_delay: np.ndarray
    fs: float
    bands: np.ndarray = None

    @property
    def weights(self):
        r"""Band-balanced fitting weights, normalised to sum 1.

        Every third-octave band :math:`b` of the audio band
        (:mod:`apftools.bands`) with energy gets the same total weight, times
        its mean coherence; inside a band, bins share it by coherence times
        level:

        .. math:: w_f = \bar\gamma^2_b\, \frac{\gamma^2(f)\, P(f)}{\sum_{g \in b} \gamma^2(g)\, P(g)},
                  \qquad f \in b,

        with :math:`\bar\gamma^2_b` the mean coherence over the band's bins.
        The bands are those :attr:`bands` names (:func:`apftools.align.align`
        names the bands its metrics judge, so that the fit weighs each band
        the mix deficit is scored on, however quiet, and no other) and, where
        it says NaN, those with energy: whose mean level times width,
        :math:`\bar P_b\, \Delta f_b` (whatever share of its bins a log grid
        kept), is at least :data:`LEVEL_FLOOR` times the strongest band's.
        Bins outside every band or in other bands get 0.
        Measured on real effects: weights following power, or even level in
        dB, gave a band 16 dB down almost nothing, and the fit dug notches
        there; the mix deficit judges every band, so the fit weighs every band
        alike.
        """
        index = third_octave_index(self.freqs_hz, self.fs)
        inside = index >= 0
        centres = third_octave_centres(self.fs)
        n_bands = len(centres)
        share = self.coherence * self.power
        counts = np.bincount(index[inside], minlength=n_bands)
        width = centres * (2 ** (1 / 6) - 2 ** (-1 / 6))
        band_energy = np.bincount(index[inside], self.power[inside], n_bands) / np.maximum(counts, 1) * width
        band_share = np.bincount(index[inside], share[inside], n_bands)
        band_coherence = np.bincount(index[inside], self.coherence[inside], n_bands) / np.maximum(counts, 1)
        chosen = band_energy >= LEVEL_FLOOR * np.max(band_energy)
        if self.bands is not None:
            chosen = np.where(np.isnan(self.bands), chosen, self.bands == 1.0)
        has_energy = chosen & (band_share > 0)
        scale = np.where(has_energy, band_coherence / np.where(has_energy, band_share, 1.0), 0.0)
        w = np.zeros(len(self.freqs_hz))
        w[inside] = share[inside] * scale[index[inside]]
        total = np.sum(w)
        if total <= 0:  # no band with energy: fall back to coherence alone, so the fit stays defined
            w = self.coherence + 1e-12
            total = np.sum(w)
        return w / total

    def band_group_delay(self):
        """Mean group delay (samples) of every third octave, weighted by :attr:`weights`; NaN in bands without weight.

        Returns
        -------
        centres_hz, group_delay : ndarray
            The band centres (:func:`~apftools.bands.third_octave_centres`) and the means.
        """
        index = third_octave_index(self.freqs_hz, self.fs)
        inside = index >= 0
        centres = third_octave_centres(self.fs)
        w = self.weights[inside]
        total = np.bincount(index[inside], w, len(centres))
        mean = np.bincount(index[inside], w * self.group_delay[inside], len(centres)) / np.where(total > 0, total, 1)
        return centres, np.where(total > 0, mean, np.nan)

    def select(self, mask):
        """The transfer function at the frequencies where ``mask`` is true."""
        return TransferFunction(self.freqs_hz[mask], self.h[mask], self.coherence[mask], self.power[mask],
                                self.group_delay[mask], self.fs, self.bands)

    def in_audio_band(self):
        """The transfer function at its frequencies inside :func:`~apftools.bands.audio_band`."""
        low, high = audio_band(self.fs)
        return self.select((self.freqs_hz >= low) & (self.freqs_hz <= high))


def frame_length(fs, seconds, max_samples=None):
    """The power of two nearest ``seconds * fs`` samples (at least 4), at most ``max_samples`` rounded down to one.

    The one rule for STFT and Welch frames here, so they scale with the sample rate.
    """
    n = 2 ** max(2, int(round(np.log2(seconds * fs))))
    return n if max_samples is None else min(n, 2 ** int(np.log2(max_samples)))


#: Samples of frames (STFT) or segments (Welch) transformed at once, per channel: memory stays bounded however long
#: the signal (256 of the metrics' 2048-sample frames; 64 of the transfer function's 8192).
CHUNK_SAMPLES = 1 << 19


def frame_chunks(n_samples, nperseg, hop, chunk):
    """``(start, stop, frames)``: pieces of a signal holding consecutive whole frames, ``chunk`` at most each.

    Frames of ``nperseg`` samples start every ``hop`` samples, whole frames
    only (no padding); piece ``[start, stop)`` holds ``frames`` of them, so
    sums and means over frames can be taken piece by piece.
    """
    total = 1 + (n_samples - nperseg) // hop
    for first in range(0, total, chunk):
        frames = min(chunk, total - first)
        yield first * hop, first * hop + (frames - 1) * hop + nperseg, frames


def default_nperseg(fs, n_samples):
    """Welch segment length: about 0.17 s (8192 samples at 48 kHz), at most a quarter of the signal, at least 64."""
    return max(64, frame_length(fs, 0.17, max(n_samples // 4, 64)))


def hann(n):
    r"""The periodic Hann window of ``n`` samples, :math:`\tfrac12 - \tfrac12 \cos(2\pi k / n)` (scipy's ``"hann"``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def frame_spectra(signals, nperseg, hop, detrend=False, chunk_samples=CHUNK_SAMPLES):
    r"""Spectra of Hann-windowed frames, ``chunk_samples // nperseg`` frames at a time: ``(frames, spectra)`` for
    each piece.

    Whole frames of ``nperseg`` samples every ``hop`` samples
    (:func:`frame_chunks`); each is windowed by :func:`hann` (after its mean
    is removed, with ``detrend``) and transformed with ``numpy.fft.rfft``,
    unscaled.  ``signals`` is a sequence of arrays of one shape
    (..., n_samples); each piece gives one array per signal, shape (...,
    frames, nperseg // 2 + 1).  The frames are views into the signals, so
    memory is bounded by ``chunk_samples`` however long they are.  The
    spectra of :func:`scipy.signal.stft`, :func:`~scipy.signal.welch` and
    :func:`~scipy.signal.csd` before their scaling, each transform done
    once for all three: a transfer function of 8 s took 4 times less time,
    the metrics' 2048-sample Welch estimate 6 times less, than with those.
    """
    window = hann(nperseg)
    for start, stop, frames in frame_chunks(signals[0].shape[-1], nperseg, hop, max(1, chunk_samples // nperseg)):
        spectra = []
        for x in signals:
            framed = np.lib.stride_tricks.sliding_window_view(x[..., start:stop], nperseg, axis=-1)[..., ::hop, :]
            if detrend:
                framed = framed - np.mean(framed, axis=-1, keepdims=True)
            spectra.append(np.fft.rfft(framed * window, axis=-1))
        yield frames, spectra


def transfer_function(dry, wet, fs, *, nperseg=None):
    """Welch estimate of the dry-to-wet transfer function and coherence.

    Parameters
    ----------
    dry, wet : ndarray, shape (..., n_samples)
        Same shape; channels are summed into one estimate.
    fs : float
        Sample rate in Hz.
    nperseg : int, optional
        Segment length (Hann window, 50% overlap, each segment's mean
        removed: :func:`scipy.signal.csd`'s defaults); default
        :func:`default_nperseg`.

    Returns
    -------
    TransferFunction
        On the FFT grid from DC to fs/2; :attr:`~TransferFunction.power` in
        the units of :func:`scipy.signal.csd` (density).
    """
    fs = validate_fs(fs)
    dry = np.atleast_2d(np.asarray(dry, dtype=float))
    wet = np.atleast_2d(np.asarray(wet, dtype=float))
    if dry.shape != wet.shape:
        raise ApftoolsValueError(f"dry and wet must have the same shape, got {dry.shape} and {wet.shape}")
    if nperseg is None:
        nperseg = default_nperseg(fs, dry.shape[-1])
    if dry.shape[-1] < nperseg:
        raise ApftoolsValueError(f"signals of {dry.shape[-1]} samples are shorter than one Welch segment ({nperseg})")
    freqs = np.fft.rfftfreq(nperseg, 1.0 / fs)
    s_dw, s_dd, s_ww = np.zeros(len(freqs), complex), np.zeros(len(freqs)), np.zeros(len(freqs))
    segments = 0
    for frames, (d, w) in frame_spectra((dry, wet), nperseg, nperseg // 2, detrend=True):  # summed over channels
        d, w = d.reshape(-1, len(freqs)), w.reshape(-1, len(freqs))
        s_dw += np.sum(np.conj(d) * w, axis=0)
        s_dd += np.sum(d.real**2 + d.imag**2, axis=0)
        s_ww += np.sum(w.real**2 + w.imag**2, axis=0)
        segments += frames
    scale = np.full(len(freqs), 2.0 / (fs * np.sum(hann(nperseg) ** 2) * segments))  # one-sided density
    scale[0] /= 2
    if nperseg % 2 == 0:
        scale[-1] /= 2
    s_dw, s_dd, s_ww = s_dw * scale, s_dd * scale, s_ww * scale
    tiny = max(1e-30 * max(np.max(s_dd), np.max(s_ww)), 1e-300)  # and no 0 / 0 where both are silent
    h = s_dw / np.maximum(s_dd, tiny)
    coherence = np.clip(np.abs(s_dw) ** 2 / np.maximum(s_dd * s_ww, max(tiny**2, np.finfo(float).tiny)), 0.0, 1.0)
    return TransferFunction(freqs, h, coherence, np.abs(s_dw), measured_group_delay(freqs, h, fs), fs)


def log_grid(tf, n_points=512):
    """The measured bins nearest to ``n_points`` log-spaced frequencies over the audio band (each bin once).

    All bins are kept at low frequencies, where bins are sparser than the
    log grid; high frequencies are thinned to about ``n_points`` in all.
    The band is :func:`apftools.bands.audio_band`.
    """
    f_low, f_high = audio_band(tf.fs)
    targets = np.geomspace(f_low, f_high, n_points)
    index = np.unique(np.searchsorted(tf.freqs_hz, targets).clip(0, len(tf.freqs_hz) - 1))
    mask = np.zeros(len(tf.freqs_hz), bool)
    mask[index] = True
    return tf.select(mask).in_audio_band()


#: :func:`low_frequency_sign` reads bins with at least this coherence ...
LOW_COHERENCE = 0.9
#: ... whose magnitude is at least this fraction of the median over the audio band (not rolled off).
LOW_MAGNITUDE = 0.5


def low_frequency_sign(tf):
    r"""The sign of the response below the audio band: :math:`\sum w \cos\varphi / \sum w` in [-1, 1], or NaN.

    Over the bins above 0 Hz and below :func:`~apftools.bands.audio_band`'s
    low edge with coherence at least :data:`LOW_COHERENCE` and magnitude at
    least :data:`LOW_MAGNITUDE` times the median over the audio band,
    weighted by :attr:`TransferFunction.power`; NaN if there are none.
    Every allpass section is exactly +1 at DC, so where the effect passes
    the lowest frequencies unchanged in level, this is the polarity no
    cascade can change.  GCC-PHAT's polarity is the sign where the cross
    spectrum is strongest, which for a Linkwitz-Riley low-pass (-180
    degrees around its crossover, 0 at DC) is the wrong one; the fit then
    imitated the inversion with a section near DC and lost 0.25 dB at
    25 Hz.  A roll-off (a high-pass) leaves no bin to read.
    """
    low, high = audio_band(tf.fs)
    band = (tf.freqs_hz >= low) & (tf.freqs_hz <= high)
    magnitude = np.abs(tf.h)
    use = ((tf.freqs_hz > 0) & (tf.freqs_hz < low) & (tf.coherence >= LOW_COHERENCE)
           & (magnitude >= LOW_MAGNITUDE * np.median(magnitude[band])))
    total = np.sum(tf.power[use])
    return float(np.sum(tf.power[use] * np.cos(np.angle(tf.h[use]))) / total) if total > 0 else float("nan")


def measured_group_delay(freqs_hz, h, fs, smooth_bins=5):
    r"""Group delay in samples, :math:`-d\varphi/d\omega`, of a response on a uniform grid.

    The phase is unwrapped along the full-resolution grid (before any
    thinning, where steps between kept bins could exceed pi) and
    differentiated with ``numpy.gradient``; a moving average over
    ``smooth_bins`` bins (edges repeated, so the ends are not pulled towards
    zero) tames estimation noise.
    """
    omega = 2 * np.pi * np.asarray(freqs_hz) / fs
    tau = -np.gradient(np.unwrap(np.angle(h)), omega)
    return scipy.ndimage.uniform_filter1d(tau, smooth_bins, mode="nearest")


def minimum_phase(h):
    """The minimum-phase response with the magnitude of ``h`` (an rfft half spectrum), from the real cepstrum."""
    n = 2 * (len(h) - 1)
    log_magnitude = np.log(np.maximum(np.abs(h), 1e-10 * np.max(np.abs(h))))
    cepstrum = scipy.fft.irfft(log_magnitude, n)
    fold = np.zeros(n)
    fold[0], fold[n // 2] = cepstrum[0], cepstrum[n // 2]
    fold[1:n // 2] = 2 * cepstrum[1:n // 2]
    return np.exp(scipy.fft.rfft(fold))


def excess_phase(h):
    """The unwrapped phase of ``h`` (an rfft half spectrum) beyond its :func:`minimum_phase`: delay and allpass part."""
    return np.unwrap(np.angle(h / minimum_phase(h)))


def refine_latency(freqs, h, excess, coarse, polarity, fs):
    r"""An effect's latency (samples): the slope of the excess (allpass) phase of ``h`` after the estimate ``coarse``.

    ``h`` is the effect's response (an rfft half spectrum from DC to
    :math:`f_s/2`, ``freqs`` in Hz), ``excess`` its :func:`excess_phase`,
    with ``coarse`` samples of delay and ``polarity`` still in it.  A
    minimum-phase effect (an EQ, a filter) has no excess phase but its
    delay's, exactly linear, so its latency is that delay, where GCC-PHAT
    lands off by the phase the magnitude brings (0.023 samples on an RBJ EQ
    chain, 1.35 on the fixture's EQ with a 9 kHz low-pass).  Weighted least squares over the audio band where the
    magnitude is within 20 dB of its peak (the cepstrum's phase is least
    reliable where the level is low), weights :math:`|H|^2`; kept only if
    the excess phase is a line (weighted RMS residual under
    :data:`LINEAR_EXCESS_RAD`): an allpass effect's is not, and ``coarse``
    stands.  Reference: Oppenheim and Schafer, *Discrete-Time Signal
    Processing*, 3rd ed., ch. 5.6 and 13 (minimum phase from the cepstrum).
    """
    low, high = audio_band(fs)
    omega = 2 * np.pi * freqs / fs
    band = (freqs >= low) & (freqs <= high)  # the peak in the band: above it a Welch estimate divides by nothing
    use = band & (np.abs(h) >= 0.1 * np.max(np.abs(h[band]), initial=0.0))
    residual = np.angle(polarity * np.exp(1j * (excess[use] + omega[use] * coarse)))
    weights = np.abs(h[use]) ** 2
    if not np.sum(weights) > 0:  # no bin within 20 dB of the peak in the band (or none with energy)
        return coarse
    correction = -np.sum(weights * omega[use] * residual) / np.sum(weights * omega[use] ** 2)
    misfit = np.sqrt(np.sum(weights * (residual + omega[use] * correction) ** 2) / np.sum(weights))
    return float(coarse + correction) if misfit < LINEAR_EXCESS_RAD else coarse
