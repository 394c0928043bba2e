r"""Objective measures of how well an aligned dry sums with a wet.

The headline number is the *mix deficit*: how much energy a 50/50 mix of the
dry and the level-matched wet loses to phase cancellation, measured on a
short-time Fourier transform (STFT) so that it follows the effect's phase
frequency by frequency,

.. math:: \Delta = 10 \log_{10} \frac{\sum_{c,f,t} |D + g W|^2}
                                     {\sum_{c,f,t} \left(|D| + |g W|\right)^2}
          \ \mathrm{dB},

with :math:`D, W` the STFTs of dry and wet (channels :math:`c`, frequencies
:math:`f`, frames :math:`t`) and :math:`g` from :func:`level_match_gain`.
:math:`\Delta = 0` dB when every bin adds in phase, -3.01 dB when the wet is
90 degrees off everywhere, and :math:`-\infty` (floored at :data:`MIN_DB`) when
it cancels the dry.  The triangle inequality keeps :math:`\Delta \le 0`.

STFT and Welch spectra use a Hann window of :func:`metric_nperseg` samples
(2048 at 48 kHz, about 43 ms at any rate); channels are summed, so a stereo
pair gets one number.

Reference for the ESR: A. Wright and V. Välimäki, "Perceptual loss function
for neural modelling of audio systems", Proc. IEEE ICASSP 2020, pp. 251-255.
"""

import numpy as np

from . import bands
from ._threads import together
from ._validate import validate_fs, validate_pair
from .errors import ApftoolsValueError
from .response import frame_length, frame_spectra, hann, transfer_function

MIN_DB = -120.0
"""Floor of every dB value here (stands in for :math:`-\\infty`, perfect cancellation)."""

BAND_FLOOR = 1e-6
"""A third-octave band with less energy than this fraction of the loudest band is reported as NaN."""

FIT_MARGIN_DB = 5.0
"""The fit also weighs bands up to this much below :data:`BAND_FLOOR` (:func:`fit_bands`)."""

MIN_SAMPLES = 64
"""Shortest signal the spectral metrics accept (one frame of at least this many samples)."""


def _db(ratio):
    """10 log10 of a non-negative power ratio, floored at :data:`MIN_DB` (no warning at 0)."""
    return 10.0 * np.log10(np.maximum(ratio, 10.0 ** (MIN_DB / 10.0)))


def metric_nperseg(fs, n_samples):
    """The metrics' STFT/Welch frame length: the power of two nearest 0.043 fs (2048 at 48 kHz), at most ``n_samples``.

    Raises
    ------
    ApftoolsValueError
        If ``n_samples`` is below :data:`MIN_SAMPLES`.
    """
    if n_samples < MIN_SAMPLES:
        raise ApftoolsValueError(
            f"signals of {n_samples} samples are too short for spectral metrics; at least {MIN_SAMPLES} are needed")
    return frame_length(fs, 0.043, n_samples)


def level_match_gain(dry, wet):
    r"""Gain that brings the wet to the dry's level: :math:`g = \sqrt{\sum D^2 / \sum W^2}`.

    Energies are time-domain sums over all channels and samples, so
    :math:`g\,w` has the dry's energy.  The mix deficit applies it so that a
    level difference is not mistaken for a phase problem.

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
        Same number of channels; the common length is used.

    Returns
    -------
    float
        Linear gain (> 0).

    Examples
    --------
    >>> level_match_gain([1.0, -1.0], [0.5, -0.5])
    2.0
    """
    return _gain(*validate_pair(dry, wet))


def _checked(dry, wet, fs):
    """The public functions' one validation: ``(dry, wet, fs)`` as float64 ``(channels, samples)`` and Hz.

    The private bodies below take what this returns and check nothing.
    """
    return (*validate_pair(dry, wet), validate_fs(fs))


def _gain(dry, wet):
    return float(np.sqrt(np.sum(dry**2) / np.sum(wet**2)))


def _mix_sums(dry, wet, fs):
    r"""STFT bin frequencies (Hz) and per-bin sums, shape (4, n_bins), from which any mix ratio's deficit follows.

    The rows are :math:`\sum |D|^2`, :math:`\sum |gW|^2`,
    :math:`\sum \mathrm{Re}(D\, \overline{gW})` and :math:`\sum |D|\,|gW|`
    over channels and frames (:func:`_at_ratio`).  Only whole frames are used
    (Hann, 75% overlap, no zero-padded edges), so every frame tapers to zero.
    """
    wet = _gain(dry, wet) * wet
    nperseg = metric_nperseg(fs, dry.shape[1])
    freqs = np.fft.rfftfreq(nperseg, 1.0 / fs)
    sums = np.zeros((4, len(freqs)))
    for _, (d, w) in frame_spectra((dry, wet), nperseg, nperseg // 4):  # bounded memory on long signals
        # |D|^2 written as Re(D conj D), like the cross term, so an inverted wet cancels to exactly 0
        sums += [np.sum(x, axis=(0, 1)) for x in (d.real**2 + d.imag**2, w.real**2 + w.imag**2,
                                                 d.real * w.real + d.imag * w.imag, np.abs(d) * np.abs(w))]
    sums /= np.sum(hann(nperseg)) ** 2  # scipy.signal.stft's scaling
    return freqs, sums


def _at_ratio(sums, ratio):
    r"""Per-bin :math:`\sum |(1 - r) D + r g W|^2` and :math:`\sum ((1 - r)|D| + r|gW|)^2` at wet ratio ``r``.

    Expanded in the sums of :func:`_mix_sums`: with :math:`a = (1 - r)^2`,
    :math:`b = r^2`, :math:`c = 2 r (1 - r)`, the numerator is
    :math:`a |D|^2 + b |gW|^2 + c\, \mathrm{Re}(D \overline{gW})` and the
    denominator the same with :math:`|D||gW|` for the cross term.
    """
    dd, ww, cross, product = sums
    a, b, c = (1.0 - ratio) ** 2, ratio**2, 2.0 * ratio * (1.0 - ratio)
    return a * dd + b * ww + c * cross, a * dd + b * ww + c * product


def _deficit(numerator, denominator):
    return float(_db(np.sum(numerator) / np.sum(denominator)))


def mix_deficit_db(dry, wet, fs):
    r"""Energy a 50/50 mix loses to phase cancellation, in dB (0 = perfectly coherent sum).

    .. math:: \Delta = 10 \log_{10} \frac{\sum |D + g W|^2}{\sum (|D| + |g W|)^2}

    over all STFT bins, frames and channels (module docstring), with
    :math:`g` = :func:`level_match_gain`, so the value does not depend on the
    wet's level.  Perfect cancellation (:math:`-\infty`) is reported as
    :data:`MIN_DB`.

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
        Same number of channels; the common length is used.
    fs : float
        Sample rate in Hz.

    Returns
    -------
    float
        Deficit in dB, in [MIN_DB, 0].  Hand values: identical signals 0;
        wet 90 degrees off at every frequency :math:`10\log_{10}(2/4) = -3.01`;
        inverted wet :data:`MIN_DB`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(48000)
    >>> round(mix_deficit_db(x, 0.5 * x, fs=48000), 6)
    0.0
    """
    _, sums = _mix_sums(*_checked(dry, wet, fs))
    return _deficit(*_at_ratio(sums, 0.5))


#: Wet ratios of :func:`mix_ratio_curve`: 0 (dry alone) to 1 (wet alone) in steps of 5%.
WET_RATIOS = tuple(np.round(np.linspace(0.0, 1.0, 21), 2).tolist())


def mix_ratio_curve(dry, wet, fs, ratios=WET_RATIOS):
    r"""The mix deficit, overall and in the worst band, at every wet ratio of a dry/wet knob.

    The mix at wet ratio :math:`r` is :math:`(1 - r) D + r g W` (the wet
    level-matched, :func:`level_match_gain`); its deficit is
    :math:`10 \log_{10} \sum |(1 - r) D + r g W|^2 / \sum ((1 - r)|D| + r|gW|)^2`,
    :func:`mix_deficit_db` at :math:`r = 1/2`, 0 dB at 0 and 1 (one signal
    alone).  Hand values: identical signals 0 dB at every ratio; an inverted
    wet :math:`20 \log_{10} |1 - 2r|` (the floor :data:`MIN_DB` at 50%).
    One STFT pass serves every ratio.

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
    fs : float
        Sample rate in Hz.
    ratios : sequence of float
        Wet ratios in [0, 1].

    Returns
    -------
    dict
        ``wet_ratio``, ``mix_deficit_db`` and ``worst_band_db`` (the lowest
        third-octave band deficit with energy, None if no band has energy),
        lists of floats, one per ratio.
    """
    ratios = np.asarray(ratios, dtype=float)
    if ratios.ndim != 1 or not np.all((ratios >= 0) & (ratios <= 1)):
        raise ApftoolsValueError(f"ratios must be a 1-D sequence of wet ratios in [0, 1], got {ratios!r}")
    dry, wet, fs = _checked(dry, wet, fs)
    return _ratio_curve(*_mix_sums(dry, wet, fs), fs, ratios)


def _ratio_curve(freqs, sums, fs, ratios):
    overall, worst = [], []
    for ratio in ratios:
        numerator, denominator = _at_ratio(sums, ratio)
        overall.append(_deficit(numerator, denominator))
        _, band_db = worst_band(*_windows(freqs, numerator, denominator, fs))
        worst.append(None if np.isnan(band_db) else band_db)
    return {"wet_ratio": [float(r) for r in ratios], "mix_deficit_db": overall, "worst_band_db": worst}


def third_octave_centres(fs):
    """Third-octave centres in Hz at sample rate ``fs`` (see :func:`apftools.bands.third_octave_centres`)."""
    return bands.third_octave_centres(validate_fs(fs))


def _window_sums(freqs, values, fs):
    """``values`` summed over the bins of every third-octave window (:func:`apftools.bands.window_centres`).

    The even windows are the IEC bands and the odd ones the bands halfway between; neither set overlaps
    itself, so each is one ``bincount``.
    """
    centres = bands.window_centres(fs)
    sums = np.empty(len(centres))
    for first in (0, 1):
        own = centres[first::2]
        edges = np.append(own * 2 ** (-1 / 6), own[-1] * 2 ** (1 / 6))
        index = np.searchsorted(edges, freqs, side="right") - 1
        inside = (index >= 0) & (index < len(own))
        sums[first::2] = np.bincount(index[inside], values[inside], len(own))
    return sums


def _band_deficit(band_num, band_den):
    valid = band_den > BAND_FLOOR * np.max(band_den)
    deficit = np.full(len(band_den), np.nan)
    deficit[valid] = _db(band_num[valid] / band_den[valid])
    return deficit


def _windows(freqs, numerator, denominator, fs):
    """Window centres (Hz) and the mix deficit in each (dB; NaN below :data:`BAND_FLOOR`): the judged bands."""
    return bands.window_centres(fs), _band_deficit(_window_sums(freqs, numerator, fs),
                                                   _window_sums(freqs, denominator, fs))


def fit_bands(band_level_db):
    """Which third-octave bands a fit should weigh: 1 within :data:`FIT_MARGIN_DB` of being judged, else 0.

    ``band_level_db`` is :func:`mix_summary`'s (the unaligned pair's);
    NaN where it is None: the STFT has no bin in the band (the lowest bands
    at high rates), so the fit decides by its own measure
    (:class:`~apftools.response.TransferFunction`'s ``bands``).  A band's
    level moves by a dB or two between the candidates an alignment
    compares, so one that the unaligned pair left just below
    :data:`BAND_FLOOR` may be judged after alignment: a 90-degree phase
    rotator's 16 kHz band, 61 dB down, was, and a fit that had left it out
    (its own measure put it 71 dB down) lost 4 dB there.  Bands that are
    not judged are not weighed either: fitting a cabinet's 70 dB-down top
    octave too cost its causal fit 0.5 dB in a band that counts (-0.45 to
    -0.97 dB).
    """
    level = np.array([np.nan if v is None else v for v in band_level_db], dtype=float)
    return np.where(np.isnan(level), np.nan, level >= 10.0 * np.log10(BAND_FLOOR) - FIT_MARGIN_DB)


def band_mix_deficit_db(dry, wet, fs, windows=False):
    r"""The mix deficit (:func:`mix_deficit_db`) per third-octave band, or per judged window.

    Bands are centred on :func:`third_octave_centres` with edges
    :math:`f_c\, 2^{\pm 1/6}`; each band sums the STFT bins in
    :math:`[f_c 2^{-1/6}, f_c 2^{1/6})`.  With ``windows``, the same for
    every window of :func:`apftools.bands.window_centres` (the bands and
    those halfway between them): what the worst band and the harm are
    judged on, so that a notch split between two bands counts fully.

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
        Same number of channels; the common length is used.
    fs : float
        Sample rate in Hz.
    windows : bool
        Every judged window rather than the IEC bands alone.

    Returns
    -------
    centres_hz : ndarray
        Band centres in Hz.
    deficit_db : ndarray
        Deficit per band in dB, in [MIN_DB, 0].  NaN where the band holds
        no STFT bin (the lowest bands, narrower than the bin spacing
        :math:`f_s / 2048` at 48 kHz) or where its energy
        :math:`\sum (|D| + |gW|)^2` is below :data:`BAND_FLOOR` times that of
        the loudest band (no signal there to judge).
    """
    dry, wet, fs = _checked(dry, wet, fs)
    freqs, sums = _mix_sums(dry, wet, fs)
    centres, deficit = _windows(freqs, *_at_ratio(sums, 0.5), fs)
    return (centres, deficit) if windows else (centres[::2], deficit[::2])


def worst_band(centres, deficit):
    """The band with the lowest (most negative) deficit, ignoring NaN bands.

    Parameters
    ----------
    centres, deficit : ndarray
        As returned by :func:`band_mix_deficit_db`.

    Returns
    -------
    (float, float)
        ``(centre_hz, deficit_db)``; ``(nan, nan)`` if every band is NaN.
    """
    centres, deficit = np.asarray(centres, dtype=float), np.asarray(deficit, dtype=float)
    if centres.shape != deficit.shape:
        raise ApftoolsValueError(f"centres and deficit must have the same shape, got {centres.shape} and "
                                 f"{deficit.shape}")
    valid = ~np.isnan(deficit)
    if not np.any(valid):
        return float("nan"), float("nan")
    i = np.flatnonzero(valid)[np.argmin(deficit[valid])]
    return float(centres[i]), float(deficit[i])


def band_harm_db(before_db, after_db):
    """The largest loss of any band between two :func:`band_mix_deficit_db` results, in dB (0 = no band lost).

    ``min(0, min_b(after_b - before_b))`` over the bands where both are
    defined (both have energy above :data:`BAND_FLOOR`): -3 means that some
    band's deficit got 3 dB worse, whatever the others gained.  The "do no
    harm" measure of an alignment, with ``before`` the unaligned pair.

    Examples
    --------
    >>> band_harm_db([-1.0, -6.0, np.nan], [-0.5, -8.0, -20.0])
    -2.0
    """
    before_db, after_db = np.asarray(before_db, dtype=float), np.asarray(after_db, dtype=float)
    if before_db.shape != after_db.shape:
        raise ApftoolsValueError(f"band deficits must have the same shape, got {before_db.shape} and {after_db.shape}")
    change = (after_db - before_db)[~(np.isnan(before_db) | np.isnan(after_db))]
    return float(min(0.0, np.min(change, initial=0.0)))


def _welch(dry, wet, fs):
    """Welch transfer function (channels summed) restricted to the audio band (:func:`apftools.bands.audio_band`)."""
    return transfer_function(dry, wet, fs, nperseg=metric_nperseg(fs, dry.shape[1])).in_audio_band()


def _phase_error(tf):
    weights = tf.coherence * tf.power
    total = np.sum(weights)
    if total <= 0:
        return float("nan")
    phase = np.degrees(np.angle(tf.h))
    return float(np.sqrt(np.sum(weights * phase**2) / total))


def phase_error_deg(dry, wet, fs):
    r"""Weighted RMS phase of the dry-to-wet cross-spectrum, in degrees.

    .. math:: \varphi_\mathrm{rms} = \sqrt{\frac{\sum_f w_f\, \varphi_f^2}{\sum_f w_f}},
              \qquad \varphi_f = \angle S_{dw}(f), \quad w_f = \gamma^2(f)\, |S_{dw}(f)|,

    with Welch spectra summed over channels
    (:func:`apftools.response.transfer_function`, frame :func:`metric_nperseg`)
    over 20 Hz to :math:`\min(20\ \mathrm{kHz}, 0.45 f_s)`.  The angle lies in
    (-180, 180], so the result is in [0, 180]; it does not depend on levels.

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
        Same number of channels; the common length is used.
    fs : float
        Sample rate in Hz.

    Returns
    -------
    float
        Degrees.  Hand values: identical 0, Hilbert transform 90, inverted
        180.  NaN if dry and wet share no energy in the band.
    """
    return _phase_error(_welch(*_checked(dry, wet, fs)))


def esr(dry, wet):
    r"""Error-to-signal ratio :math:`\sum (w - d)^2 / \sum w^2` (Wright and Välimäki 2020).

    Unlike the mix deficit it is level-sensitive: a wet at another level
    counts as error even when perfectly in phase.  0 for identical signals, 4
    for an inverted wet.

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
        Same number of channels; the common length is used.

    Returns
    -------
    float
    """
    return _esr(*validate_pair(dry, wet))


def _esr(dry, wet):
    return float(np.sum((wet - dry) ** 2) / np.sum(wet**2))


def esr_db(dry, wet):
    """:func:`esr` in dB, :math:`10 \\log_{10}` ESR floored at :data:`MIN_DB` (identical signals give MIN_DB)."""
    return float(_db(esr(dry, wet)))


def ncc(dry, wet):
    r"""Zero-lag normalised cross-correlation :math:`\sum d w / \sqrt{\sum d^2 \sum w^2}` in [-1, 1].

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
        Same number of channels; the common length is used.

    Returns
    -------
    float
        1 for identical (or scaled) signals, -1 for inverted, about 0 for
        uncorrelated or 90-degree-shifted ones.
    """
    return _ncc(*validate_pair(dry, wet))


def _ncc(dry, wet):
    return float(np.clip(np.sum(dry * wet) / np.sqrt(np.sum(dry**2) * np.sum(wet**2)), -1.0, 1.0))


def _coherence(tf):
    total = np.sum(tf.power)
    if total <= 0:
        return 0.0
    return float(np.sum(tf.coherence * tf.power) / total)


def coherence_summary(dry, wet, fs):
    r"""Power-weighted mean magnitude-squared coherence in [0, 1].

    .. math:: \bar\gamma^2 = \frac{\sum_f |S_{dw}(f)|\, \gamma^2(f)}{\sum_f |S_{dw}(f)|}

    over 20 Hz to :math:`\min(20\ \mathrm{kHz}, 0.45 f_s)`, Welch spectra
    summed over channels (:func:`apftools.response.transfer_function`).  Near
    1 when the wet is a linear time-invariant function of the dry; near 0
    for unrelated signals (Welch bias about 1 / number of segments).

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
        Same number of channels; the common length is used.
    fs : float
        Sample rate in Hz.

    Returns
    -------
    float
    """
    return _coherence(_welch(*_checked(dry, wet, fs)))


def residual_delay_samples(dry, wet, fs):
    """Delay of the wet relative to the dry left after alignment, in samples; of several channels, the largest.

    From :func:`apftools.delay.estimate_delay` (positive: the wet lags),
    channel by channel: summed over channels, the cross-spectra of channels
    of opposite polarity cancel.  Channels with a silent side have none
    (NaN if every channel has one).
    """
    return _residual_delay(*_checked(dry, wet, fs))


def _residual_delay(dry, wet, fs):
    from .delay import estimate_delay

    return largest_delay(together(*(lambda d=d, w=w: estimate_delay(d, w, fs).delay_samples
                                    for d, w in zip(dry, wet) if d.any() and w.any())))  # channels side by side


def largest_delay(delays):
    """The delay of largest magnitude, signed, of several channels' (NaN for none)."""
    return max((float(d) for d in delays), key=abs, default=float("nan"))


def mix_summary(dry, wet, fs):
    """The mix deficit, overall and per third-octave band, from one STFT pass (the first keys of :func:`mix_report`).

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
        Same number of channels; the common length is used.
    fs : float
        Sample rate in Hz.

    Returns
    -------
    dict
        ``mix_deficit_db``, ``worst_band_hz``, ``worst_band_db`` (the worst
        judged window, NaN only if every one is NaN), ``worst_band`` (its
        label, "12.5 kHz" or "1.25-1.6 kHz": :func:`apftools.bands.window_label`),
        ``bands_hz``, ``band_labels`` and ``band_deficit_db``
        (:func:`band_mix_deficit_db` as lists, None for its NaN bands),
        ``band_level_db`` (each band's energy :math:`\\sum (|D| + |gW|)^2`
        re the loudest window's, dB; None where it has no bin),
        ``window_labels`` and ``window_deficit_db`` (every judged window's,
        ``band_mix_deficit_db(windows=True)``), and ``mix_ratio_curve``
        (:func:`mix_ratio_curve`, whose worst band is a window's too).
    """
    return _summary(*_checked(dry, wet, fs))


def _summary(dry, wet, fs):
    freqs, sums = _mix_sums(dry, wet, fs)
    numerator, denominator = _at_ratio(sums, 0.5)
    energy = _window_sums(freqs, denominator, fs)
    windows, deficit = bands.window_centres(fs), _band_deficit(_window_sums(freqs, numerator, fs), energy)
    band_hz, band_db = worst_band(windows, deficit)
    level = np.full(len(energy), -np.inf)
    level[energy > 0] = 10.0 * np.log10(energy[energy > 0] / np.max(energy))

    def listed(values):  # JSON: no NaN
        return [None if not np.isfinite(v) else float(v) for v in values]

    return {
        "mix_deficit_db": _deficit(numerator, denominator),
        "worst_band_hz": band_hz,
        "worst_band_db": band_db,
        "worst_band": None if np.isnan(band_hz) else bands.window_label(band_hz),
        "bands_hz": windows[::2].tolist(),
        "band_labels": [bands.band_label(c) for c in windows[::2]],
        "band_deficit_db": listed(deficit[::2]),
        "band_level_db": listed(level[::2]),
        "window_labels": [bands.window_label(c) for c in windows],
        "window_deficit_db": listed(deficit),
        "mix_ratio_curve": _ratio_curve(freqs, sums, fs, WET_RATIOS),
    }


def mix_report(dry, wet, fs, summary=None, residual_delay_samples=None):
    """All metrics in one JSON-ready dict of plain floats.

    Parameters
    ----------
    dry, wet : ndarray, shape (N,) or (C, N)
        Same number of channels; the common length is used.
    fs : float
        Sample rate in Hz.
    summary : dict, optional
        :func:`mix_summary` of the same pair, if already computed (candidates
        are compared on their summaries; the kept one gets the rest).
    residual_delay_samples : float, optional
        The pair's delay, if already estimated (:func:`apftools.align.align`
        has each channel's before it fits, over its own ``max_delay_s``).

    Returns
    -------
    dict
        The keys of :func:`mix_summary`, then ``phase_error_deg``, ``esr``,
        ``ncc``, ``coherence`` and ``residual_delay_samples``.
    """
    dry, wet, fs = _checked(dry, wet, fs)
    residual, tf, *computed = together(
        lambda: _residual_delay(dry, wet, fs) if residual_delay_samples is None else float(residual_delay_samples),
        lambda: _welch(dry, wet, fs), *([lambda: _summary(dry, wet, fs)] if summary is None else []))
    summary = computed[0] if summary is None else summary
    return {
        **summary,
        "phase_error_deg": _phase_error(tf),
        "esr": _esr(dry, wet),
        "ncc": _ncc(dry, wet),
        "coherence": _coherence(tf),
        "residual_delay_samples": residual,
    }
