r"""Measure an effect with an exponential sine sweep: impulse response, latency, polarity, distortion, a model.

The excitation is the exponential sine sweep (ESS) of Farina,

.. math:: x(t) = A \sin\!\Big(2 \pi f_1 L \big(e^{t/L} - 1\big)\Big), \qquad
          L = \frac{T}{\ln(f_2 / f_1)}, \qquad 0 \le t < T,

whose instantaneous frequency :math:`f_1 e^{t/L}` rises from :math:`f_1` to
:math:`f_2` in :math:`T` seconds, with half-Hann fades at both ends, leading
silence and a trailing silence that holds the effect's latency and tail;
``repeats`` such periods follow each other.  The :math:`k`-th harmonic of a
nonlinearity follows the sweep :math:`L \ln k` seconds early, so once the
recording is deconvolved the harmonic's impulse response lies
:math:`L \ln k` before the linear one, where windows separate them.

Deconvolution is regularised spectral division by the excitation actually
played,

.. math:: H(f) = \frac{Y(f)\, \overline{X(f)}}{|X(f)|^2 + \epsilon(f)},

with :math:`\epsilon` = :data:`REGULARISATION` times the peak of
:math:`|X|^2` inside the sweep's band, and a causal high-pass well below
:math:`f_1` (:func:`_low_edge`) where there is nothing to measure.  It is
exact where the sweep has energy, fades and the Fresnel ripple of its
spectrum included, which Farina's analytic inverse filter (the time-reversed
sweep with a -6 dB/octave envelope) only approximates near :math:`f_1` and
:math:`f_2`; beyond the band, :math:`\epsilon` keeps noise from being
amplified.  The :math:`k`-th harmonic's response :math:`H_k`, read at
:math:`k f`, is the ratio of that harmonic's amplitude to the input's when
the sweep passes :math:`f`; divided by :math:`|H_1(f)|` it is the harmonic
level relative to the fundamental.

References
----------
A. Farina, "Simultaneous measurement of impulse response and distortion with
a swept-sine technique", AES 108th Convention, Paris, 2000, preprint 5093.
A. V. Oppenheim and R. W. Schafer, *Discrete-Time Signal Processing*,
3rd ed., Pearson 2010, sec. 13.8 (minimum phase from the real cepstrum).
"""

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.fft
import scipy.signal

from . import bands
from ._validate import check_keys, short_repr, validate_fs, validate_positive, validate_signal
from .delay import estimate_delay
from .errors import ApftoolsTypeError, ApftoolsValueError
from .response import TransferFunction, default_nperseg, excess_phase, measured_group_delay, refine_latency

SWEEP_FORMAT = "apftools.sweep"
SWEEP_VERSION = 1
#: Defaults of :class:`SweepSpec`: a 10 s sweep from 10 Hz at -12 dBFS.
DEFAULT_SECONDS = 10.0
DEFAULT_F_START_HZ = 10.0
DEFAULT_LEVEL_DBFS = -12.0
DEFAULT_MAX_LATENCY_MS = 500.0
#: Silence before every sweep (s): the pre-ringing of a linear-phase effect and the recording's noise floor.
LEAD_S = 0.5
#: Silence after every sweep beyond the largest latency (s): the effect's tail.
TAIL_S = 1.0
#: Relative regularisation of the deconvolution inside the sweep's band (module docstring).
REGULARISATION = 1e-10
#: Harmonic orders measured.
HARMONIC_ORDERS = (2, 3, 4, 5)
#: The linear impulse response starts at most this long before the latency (s): pre-ringing of linear-phase
#: effects (6144 taps at 44.1 kHz ring 70 ms before their peak).
PRE_S = 0.2
#: Stage-1 starts of the fit to a measured response (``align`` uses 32 on music): on six real plugins
#: (bench/sweep.py) 16 gave the same worst bands as 32 within 0.02 dB on five, and measure runs faster than
#: align; on the sixth, a cabinet fitted to 16-21 degrees RMS, the seed moved its model's worst band on music
#: from -0.13 to -2.99 dB with 16 starts and -0.28 to -3.13 with 32 (seeds 0-3): more starts did not help, the
#: larger spec does (:data:`apftools.align.LARGER_SPEC`; -0.13 to -0.36 over seeds 0-4 with 16 starts).
N_STARTS = 16
#: Most samples (over channels and periods) a sweep file may hold: it is made in memory, 1 GiB in float64.
MAX_SAMPLES = 1 << 27
#: A recording whose linear response stands less than this far above the noise (dB) is not the sweep.
MIN_SNR_DB = 10.0


@dataclass(frozen=True)
class SweepSpec:
    """Every parameter of a sweep file: what ``sweep.json`` holds, so :func:`measure` knows the excitation.

    Attributes
    ----------
    fs : float
        Sample rate (Hz).
    seconds : float
        Duration :math:`T` of one sweep (s).
    f_start_hz, f_stop_hz : float
        Start and stop frequencies (Hz), :math:`0 < f_1 < f_2 \\le f_s/2`.
    level_dbfs : float
        Peak level (dB re full scale), at most 0.
    channels : int
        The same sweep on every channel of the file.
    repeats : int
        Periods (silence, sweep, silence) in the file; :func:`measure`
        averages them and reports how much they differ.
    max_latency_ms : float
        Largest latency of the effect the trailing silence leaves room for (ms).
    """

    fs: float
    seconds: float = DEFAULT_SECONDS
    f_start_hz: float = DEFAULT_F_START_HZ
    f_stop_hz: float = None
    level_dbfs: float = DEFAULT_LEVEL_DBFS
    channels: int = 1
    repeats: int = 1
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS

    def __post_init__(self):
        fs = validate_fs(self.fs)
        object.__setattr__(self, "fs", fs)
        object.__setattr__(self, "f_stop_hz", fs / 2 if self.f_stop_hz is None else self.f_stop_hz)
        for name in ("seconds", "f_start_hz", "f_stop_hz", "max_latency_ms"):
            object.__setattr__(self, name, validate_positive(getattr(self, name), name))
        if not self.f_start_hz < self.f_stop_hz <= fs / 2:
            raise ApftoolsValueError(f"the sweep needs 0 < f_start_hz < f_stop_hz <= fs/2 = {fs / 2:g} Hz, got "
                                     f"f_start_hz={self.f_start_hz:g} and f_stop_hz={self.f_stop_hz:g}")
        level = self.level_dbfs
        if isinstance(level, bool) or not isinstance(level, (int, float)):
            raise ApftoolsTypeError(f"level_dbfs must be a number of dBFS, got {short_repr(level)}")
        if not -120.0 <= level <= 0.0:
            raise ApftoolsValueError(f"level_dbfs must be in [-120, 0] dBFS, got {short_repr(level)}")
        for name, high in (("channels", 1024), ("repeats", 100)):
            value = getattr(self, name)
            if type(value) is not int:
                raise ApftoolsTypeError(f"{name} must be an integer, got {short_repr(value)}")
            if not 1 <= value <= high:
                raise ApftoolsValueError(f"{name} must be an integer in [1, {high}], got {short_repr(value)}")
        if self.seconds * self.fs < 1024:
            raise ApftoolsValueError(f"a sweep of {self.seconds:g} s at {fs:g} Hz has fewer than 1024 samples")
        if fs != int(fs):
            raise ApftoolsValueError(f"fs={fs:g} Hz: a sweep is written as a WAV file, whose sample rate is a whole "
                                     "number of Hz")
        samples = self.channels * self.repeats * self.period
        if samples > MAX_SAMPLES:
            raise ApftoolsValueError(
                f"the sweep file would hold {samples} samples ({samples * 8 / 2**30:.1f} GiB while it is made); at "
                f"most {MAX_SAMPLES} (1 GiB): shorten seconds (--seconds) or lower repeats or channels")

    @property
    def rate(self):
        """:math:`L = T / \\ln(f_2/f_1)` in seconds: the sweep takes :math:`L \\ln 2` per octave."""
        return self.seconds / math.log(self.f_stop_hz / self.f_start_hz)

    @property
    def period(self):
        """Samples of one period: :data:`LEAD_S`, the sweep, the latency room and :data:`TAIL_S`."""
        return self._lead + self._length + int(round((self.max_latency_ms / 1000.0 + TAIL_S) * self.fs))

    @property
    def _lead(self):
        return int(round(LEAD_S * self.fs))

    @property
    def _length(self):
        return int(round(self.seconds * self.fs))

    def sweep(self):
        """One sweep, shape (n,), with its fades (half-Hann: the first 3 cycles of :math:`f_1`, the last 1%)."""
        t = np.arange(self._length) / self.fs
        x = 10.0 ** (self.level_dbfs / 20.0) * np.sin(2 * np.pi * self.f_start_hz * self.rate * np.expm1(t / self.rate))
        n_in = min(int(3.0 / self.f_start_hz * self.fs), self._length // 10)
        n_out = max(1, self._length // 100)
        x[:n_in] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(n_in) / n_in)
        x[-n_out:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, n_out + 1) / n_out)
        return x

    def excitation(self):
        """One period as played: :data:`LEAD_S` of silence, the sweep, silence to :attr:`period` samples."""
        x = np.zeros(self.period)
        x[self._lead:self._lead + self._length] = self.sweep()
        return x

    def signal(self):
        """The whole file: ``repeats`` periods on every channel, shape (channels, repeats * period)."""
        return np.tile(self.excitation(), (self.channels, self.repeats))

    def to_dict(self):
        return {"format": SWEEP_FORMAT, "version": SWEEP_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data):
        """Rebuild from :meth:`to_dict` output, validating every field."""
        if not isinstance(data, dict):
            raise ApftoolsTypeError(f"a sweep description must be a JSON object, got {type(data).__name__}")
        if data.get("format") != SWEEP_FORMAT or data.get("version") != SWEEP_VERSION:
            raise ApftoolsValueError(f"not an apftools sweep description (format {SWEEP_FORMAT!r} version "
                                     f"{SWEEP_VERSION}): got {short_repr(data.get('format'))} "
                                     f"version {short_repr(data.get('version'))}")
        fields = ("fs", "seconds", "f_start_hz", "f_stop_hz", "level_dbfs", "channels", "repeats", "max_latency_ms")
        check_keys(data, {"format", "version", *fields}, "a sweep description")
        return cls(**{name: data[name] for name in fields})


@dataclass
class ChannelMeasurement:
    """What :func:`measure` finds for one output channel.

    Attributes
    ----------
    latency_samples : float
        Bulk delay (GCC-PHAT, sub-sample; :func:`apftools.delay.estimate_delay`).
    polarity : int
    delay_confidence : float
    ir : ndarray
        Linear impulse response from time 0 (the sweep's start) to the end of its tail: the window that
        keeps the harmonics out, zero before it (from :data:`PRE_S` before the latency).
    freqs_hz, h : ndarray
        Frequency response of the linear impulse response (uniform grid, time 0 at the sweep's start).
    excess_phase : ndarray
        Phase of ``h`` minus that of its minimum-phase counterpart (radians, unwrapped): the allpass part,
        latency included.
    harmonics_db : dict
        Order -> median level re the fundamental over input frequencies
        from 100 Hz to the band's top / order (dB).
    harmonic_curves : dict
        Order -> (input frequencies in Hz, level re fundamental in dB).
    thd_percent : float
    snr_db : float
        Energy of the linear response over that of the noise floor in a window as long.
    time_variance_db : float or None
        Largest RMS difference (dB, over the audio band) between one period's response and their mean; None
        with one period.
    periods : int
        Periods of the sweep found whole in the recording and averaged.
    """

    latency_samples: float
    polarity: int
    delay_confidence: float
    ir: np.ndarray
    freqs_hz: np.ndarray
    h: np.ndarray
    excess_phase: np.ndarray
    harmonics_db: dict
    harmonic_curves: dict
    thd_percent: float
    snr_db: float
    time_variance_db: float
    periods: int

    def transfer_function(self, fs):
        """The response with latency and polarity removed, over the audio band, for :func:`apftools.align.fit_response`.

        Sampled on the frequencies of ``align``'s Welch estimate
        (:func:`~apftools.response.default_nperseg` bins), so the fit sees
        the same grids as on music (and costs the same: the measurement's own
        grid, under 1 Hz apart, gave the log grid 40% more points).
        Coherence is 1 (the sweep has energy over the whole band)
        and the power follows the sweep's pink spectrum times :math:`|H|^2`,
        so the band-balanced weights of :class:`~apftools.response.TransferFunction` apply as for music.
        """
        shifted = self.polarity * self.h * np.exp(2j * np.pi * self.freqs_hz / fs * self.latency_samples)
        freqs = np.fft.rfftfreq(default_nperseg(fs, 2**62), 1.0 / fs)
        h = np.interp(freqs, self.freqs_hz, shifted.real) + 1j * np.interp(freqs, self.freqs_hz, shifted.imag)
        power = np.abs(h) ** 2 / np.maximum(freqs, bands.audio_band(fs)[0])
        return TransferFunction(freqs, h, np.ones(len(freqs)), power, measured_group_delay(freqs, h, fs),
                                fs).in_audio_band()

    def summary(self):
        """JSON-ready numbers (no arrays)."""
        return {"latency_samples": self.latency_samples, "polarity": self.polarity,
                "delay_confidence": self.delay_confidence, "snr_db": self.snr_db, "thd_percent": self.thd_percent,
                "harmonics_db": {str(k): v for k, v in self.harmonics_db.items()},
                "time_variance_db": self.time_variance_db, "periods": self.periods}


def _low_edge(freqs, spec):
    r"""The causal high-pass that ends the measurement below the sweep: Butterworth, order 4, at f1 / 4.

    Dividing by the sweep leaves nothing to measure far below :math:`f_1`;
    a zero-phase cut there (a step or a smooth rise of :math:`\epsilon`)
    rings before the impulse as long as after it, and the window that keeps
    the harmonics out cut that ringing short: 0.8 degree and 0.05 dB of
    error at 20 Hz on a flat EQ.  A causal high-pass rings only after the
    impulse, inside the window, and its known response is divided out again
    (:func:`_measure_channel`): under 0.03 degree and 0.01 dB.
    """
    sos = scipy.signal.butter(4, spec.f_start_hz / 4, "highpass", fs=spec.fs, output="sos")
    return scipy.signal.sosfreqz(sos, worN=freqs, fs=spec.fs)[1]


def _deconvolve(x, y, spec, n_fft):
    r"""Regularised spectral division of ``y`` by ``x`` (module docstring), both zero-padded to ``n_fft``.

    Above :math:`f_2`, when it is below Nyquist, :math:`\epsilon` rises to
    the sweep's peak power over an octave; below :math:`f_1`,
    :func:`_low_edge` ends the response.
    """
    X, Y = scipy.fft.rfft(x, n_fft), scipy.fft.rfft(y, n_fft)
    freqs = scipy.fft.rfftfreq(n_fft, 1.0 / spec.fs)
    power = np.abs(X) ** 2
    peak = np.max(power[(freqs >= spec.f_start_hz) & (freqs <= spec.f_stop_hz)])
    above = 0.5 - 0.5 * np.cos(np.pi * np.clip(np.log2(np.maximum(freqs, 1e-300) / spec.f_stop_hz), 0.0, 1.0))
    return Y * np.conj(X) / (power + peak * (REGULARISATION + (1.0 - REGULARISATION) * above)) * _low_edge(freqs, spec)


def _window(ir, start, length, taper):
    """``ir[start:start + length]`` read circularly, the last ``taper`` samples faded out (half-Hann)."""
    piece = np.take(ir, np.arange(start, start + length), mode="wrap")
    if taper:
        piece[-taper:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, taper + 1) / taper)
    return piece


def _measure_channel(spec, x, periods):
    """:class:`ChannelMeasurement` of one output channel from its recorded periods, shape (k, period)."""
    fs, period = spec.fs, spec.period
    n_fft = scipy.fft.next_fast_len(2 * period, real=True)
    responses = np.array([_deconvolve(x, y, spec, n_fft) for y in periods])
    mean = np.mean(responses, axis=0)
    ir = scipy.fft.irfft(mean, n_fft)
    estimate = estimate_delay(x, np.mean(periods, axis=0), fs, period / fs / 2)
    latency, polarity = float(estimate.delay_samples), int(estimate.polarity)
    lag = int(round(latency))
    octave = spec.rate * math.log(2) * fs  # samples between the linear response and the 2nd harmonic's
    pre = int(min(PRE_S * fs, octave / 2))
    if estimate.ambiguous or not -pre <= lag <= spec.max_latency_ms / 1000.0 * fs:
        raise ApftoolsValueError(
            f"this does not look like the sweep through an effect: the best delay is {lag / fs * 1000:.1f} ms "
            f"(prominence {estimate.confidence:.2f}), outside -{pre / fs * 1000:.0f} to {spec.max_latency_ms:g} ms "
            "or ambiguous; is it a recording of this sweep, and is max_latency_ms large enough?")
    room = period - spec._lead - spec._length - max(lag, 0)  # the trailing silence left after the latency
    start = max(0, lag - pre)
    linear = _window(ir, start, lag + room - start, max(1, room // 8))
    n_lin = scipy.fft.next_fast_len(max(len(linear), 4 * int(fs / bands.F_LOW_HZ)), real=True)
    freqs = scipy.fft.rfftfreq(n_lin, 1.0 / fs)
    h = scipy.fft.rfft(linear, n_lin) * np.exp(-2j * np.pi * freqs * start / fs)
    edge = _low_edge(freqs, spec)
    h = np.where(np.abs(edge) > 0.5, h / np.where(np.abs(edge) > 0.5, edge, 1.0), h)  # undone where it passes
    excess = excess_phase(h)
    latency = refine_latency(freqs, h, excess, latency, polarity, fs)

    low, high = bands.audio_band(fs)
    top = min(high, spec.f_stop_hz)
    harmonics_db, curves, ratios = {}, {}, []
    for order in HARMONIC_ORDERS:
        centre = lag - int(round(spec.rate * math.log(order) * fs))
        half = int(spec.rate * math.log((order + 1) / order) * fs / 2)
        piece = _window(ir, centre - half, 2 * half, max(1, half // 4))
        n_h = scipy.fft.next_fast_len(max(2 * half, n_lin), real=True)
        harmonic = np.abs(scipy.fft.rfft(piece, n_h))
        inputs = np.geomspace(100.0, top / order, 64) if top / order > 100.0 else np.array([])
        level = (np.interp(order * inputs, scipy.fft.rfftfreq(n_h, 1.0 / fs), harmonic)
                 / np.maximum(np.interp(inputs, freqs, np.abs(h)), 1e-300))
        curves[order] = (inputs, 20 * np.log10(np.maximum(level, 1e-12)))
        harmonics_db[order] = float(np.median(curves[order][1])) if len(inputs) else None
        if len(inputs):
            ratios.append(10.0 ** (harmonics_db[order] / 20.0))
    # the noise floor: the quiet stretch between the end of the linear tail and the harmonics' windows
    quiet_start = lag + room
    quiet_stop = n_fft + lag - int(round(spec.rate * math.log(HARMONIC_ORDERS[-1] + 1) * fs)) - pre
    noise = _window(ir, quiet_start, max(quiet_stop - quiet_start, 1), 0)
    signal_energy = np.sum(linear**2)
    noise_energy = np.mean(noise**2) * len(linear)
    snr = float(10 * np.log10(signal_energy / max(noise_energy, 1e-300 * signal_energy)))
    variance = None
    if len(periods) > 1:
        grid = np.fft.rfftfreq(n_fft, 1.0 / fs)
        inside = (grid >= low) & (grid <= high)
        variance = float(max(np.sqrt(np.mean((20 * np.log10(np.abs(r[inside]) / np.abs(mean[inside]))) ** 2))
                             for r in responses))
    linear_ir = np.zeros(lag + room)
    linear_ir[start:] = linear  # time 0 at the sweep's start; what precedes the window (harmonics) left out
    return ChannelMeasurement(latency, polarity, float(estimate.confidence), linear_ir, freqs, h,
                              excess, harmonics_db, curves, float(100.0 * math.sqrt(sum(r * r for r in ratios))),
                              snr, variance, len(periods))


def measure(spec, recorded, fs):
    """Measure the effect that turned the sweep file of ``spec`` into ``recorded``.

    Parameters
    ----------
    spec : SweepSpec
    recorded : ndarray, shape (n,) or (C, n)
        The effect's output, time 0 where the sweep file starts; longer or
        shorter than the file (the periods recorded in full are used), any
        level.  A mono sweep into a C-channel effect gives one measurement
        per output channel; a C-channel sweep needs a C-channel recording.
    fs : float
        Sample rate of ``recorded`` (Hz); it must be the sweep's.

    Returns
    -------
    list of ChannelMeasurement
        One per output channel.

    Raises
    ------
    ApftoolsValueError
        Another sample rate, a channel count that does not map, not one
        whole period recorded, or a recording that is not the sweep through
        an effect (its linear response less than :data:`MIN_SNR_DB` above
        the noise, or no clear delay peak).
    """
    fs = validate_fs(fs)
    if fs != spec.fs:
        raise ApftoolsValueError(f"the recording is at {fs:g} Hz but the sweep at {spec.fs:g} Hz; record (or "
                                 "resample) at the sweep's rate")
    recorded = np.atleast_2d(validate_signal(recorded, "recorded"))
    if recorded.ndim != 2:
        raise ApftoolsValueError(f"recorded must have shape (n,) or (channels, n), got {recorded.shape}")
    if spec.channels not in (1, recorded.shape[0]):
        raise ApftoolsValueError(f"a {spec.channels}-channel sweep cannot give a {recorded.shape[0]}-channel "
                                 "recording: play a mono sweep into any effect, or one channel per output")
    period = spec.period
    whole = min(spec.repeats, recorded.shape[1] // period)
    if whole < 1 and recorded.shape[1] >= period - int(round(TAIL_S * fs)):
        whole, recorded = 1, np.pad(recorded, ((0, 0), (0, period - recorded.shape[1])))  # the tail cut short
    if whole < 1:
        raise ApftoolsValueError(f"the recording holds {recorded.shape[1]} samples, less than one period of the "
                                 f"sweep ({period} samples, {period / fs:.1f} s)")
    x = spec.excitation()
    out = []
    for c, channel in enumerate(recorded):
        periods = channel[:whole * period].reshape(whole, period)
        if not np.any(periods):
            raise ApftoolsValueError(f"channel {c + 1} of the recording is silent")
        try:
            measured = _measure_channel(spec, x, periods)
        except ApftoolsValueError as error:
            raise ApftoolsValueError(f"channel {c + 1}: {error}") from None
        if measured.snr_db < MIN_SNR_DB:
            raise ApftoolsValueError(
                f"channel {c + 1} does not look like the sweep through an effect: its linear response stands "
                f"{measured.snr_db:.1f} dB above the noise (at least {MIN_SNR_DB:g} dB needed); is it the "
                "recording of this sweep?")
        out.append(measured)
    return out


def fit_models(spec, measurements, *, sections=None, causal=False):
    """The alignment model of every output channel, fitted to its measured response like :func:`apftools.align`.

    Returns
    -------
    (Alignment, list of dict)
        The model, in the format ``align`` writes (one channel model per
        output channel: a mono sweep into a stereo effect gives a mono-dry
        model), and per channel the fit's report entries with
        ``phase_error_deg``: the weighted RMS phase difference between the
        model and the measured response over the audio band.
    """
    from .align import fit_response
    from .model import Alignment

    models, reports = [], []
    for measured in measurements:
        response = measured.transfer_function(spec.fs)
        model, report = fit_response(response, measured.latency_samples, measured.polarity, sections=sections,
                                     causal=causal, n_starts=N_STARTS)
        omega = 2 * np.pi * response.freqs_hz / spec.fs
        h = measured.polarity * response.h * np.exp(-1j * omega * measured.latency_samples)  # as measured
        error = np.angle(h * np.exp(-1j * model.response(response.freqs_hz, spec.fs)[0]))
        weights = response.weights
        report["phase_error_deg"] = float(np.degrees(np.sqrt(np.sum(weights * error**2) / np.sum(weights))))
        report.update(delay_samples=float(model.delay_samples), polarity=int(model.polarity),
                      spec=model.cascade.spec, anticausal_spec=model.anticausal and model.anticausal.spec,
                      **model.ringing(spec.fs))
        models.append(model)
        reports.append(report)
    several = len(models) > 1
    alignment = Alignment(spec.fs, models, "lbfgs", mode="causal" if causal else "offline",
                          channels=list(range(len(models))) if several else None,
                          dry_channels=spec.channels if several else None)
    return alignment, reports
