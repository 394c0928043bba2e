r"""The saved alignment: delay, polarity and allpass cascade per channel group, as plain JSON.

An :class:`Alignment` is what :func:`apftools.align` returns and what
``apftools apply`` and ``apftools response`` read back.  It imports no
fitter.  Validation happens when a model is built, whether by a fitter or
from a file, so every model apftools writes, it reads back:

* ``delay_samples`` is a finite number within :data:`MAX_DELAY_S` seconds of
  zero, either sign, at the model's ``fs``;
* ``polarity`` is the integer 1 or -1;
* ``cascade`` and ``anticausal`` are each ``null`` or a cascade model whose
  parameters lie in the closed intervals of
  :func:`apftools.structures.param_bounds` (which the fitters' map from
  ``theta`` lands inside by construction);
* ``mode`` is ``"offline"`` or ``"causal"``; a causal model has no
  anti-causal cascade and no negative delay (an advance needs the future);
* every key is present (``cascade`` may be ``null`` but not missing) and no
  other key is.

Rendering is

.. math:: y = R\,A\,R\,C\,\big(s\, D_d\, x\big),

with :math:`D_d` the delay, :math:`s` the polarity, :math:`C` the causal
cascade, :math:`A` the anti-causal cascade run over the time-reversed signal
(:math:`R` reverses time).  :math:`A` run backwards has exactly the negated
phase of :math:`A`: a lead, which no stable causal allpass can give.  The
reversed pass starts from rest at the end of the signal, which is exact for
a finite signal (nothing follows it); what the anti-causal part would ring
before the first sample and the causal part after the last is outside the
output, as for any same-length rendering.  Offline files may use both parts;
real-time use needs ``mode: causal``.  :mod:`apftools.render` computes it block by
block, for arrays and files alike.

Channels: ``channels`` gives, for every output channel, the index of its
model in ``models``, and ``dry_channels`` how many channels the dry has: the
wet's count (each output from its own dry channel) or 1 (a mono dry feeding
every output, as a mono source through a stereo effect).  ``channels: null``
is one model for any number of channels.

JSON layout (``format`` ``"apftools.alignment"``, ``version`` 3; versions 1
and 2, with ``per_channel`` instead of ``channels`` and ``dry_channels``, and
version 1 without ``mode`` and ``anticausal``, still load; version 1 as an
offline model)::

    {"format": "apftools.alignment", "version": 3, "fs": 48000.0, "method": "lbfgs",
     "mode": "offline", "channels": [0, 0] or null, "dry_channels": 2 or null,
     "models": [{"delay_samples": 38.4, "polarity": -1, "cascade": {...} or null,
                 "anticausal": {...} or null}, ...]}
"""

import numbers
from dataclasses import dataclass, field

import numpy as np
import scipy.signal

from ._validate import check_keys, short_repr, validate_fs, validate_signal
from .bands import audio_band
from .cascade import Cascade
from .errors import ApftoolsTypeError, ApftoolsValueError
from .names import MAX_DELAY_S
from .render import ArrayReader, render, render_model

ALIGNMENT_FORMAT = "apftools.alignment"
ALIGNMENT_VERSION = 3
#: ``"offline"``: files, causal and anti-causal sections; ``"causal"``: real-time use and export.
MODES = ("offline", "causal")
#: Most channel models in one alignment.
MAX_MODELS = 1024
#: A model's ring time is how long its impulse response stays above this fraction of its peak (60 dB).
RING_LEVEL = 1e-3
#: What :attr:`Alignment.method` may say: a fitter, a polished fitter, or a fallback.
METHOD_LABELS = ("lbfgs", "biasnet", "biasnet+lbfgs", "delay-only", "none")

#: The keys of each format version: (alignment, channel model).
_KEYS = {1: ({"format", "version", "fs", "method", "per_channel", "models"}, {"delay_samples", "polarity", "cascade"}),
         2: ({"format", "version", "fs", "method", "mode", "per_channel", "models"},
             {"delay_samples", "polarity", "cascade", "anticausal"}),
         3: ({"format", "version", "fs", "method", "mode", "channels", "dry_channels", "models"},
             {"delay_samples", "polarity", "cascade", "anticausal"})}


@dataclass
class ChannelModel:
    """Delay, polarity, causal and anti-causal cascades applied to one group of channels.

    ``delay_samples`` may be fractional or negative (the wet leads);
    rendering is ``polarity * cascade(delay(x))`` followed by
    ``anticausal`` run over the time-reversed result (module docstring).
    Either cascade may be None.  The values are checked by the
    :class:`Alignment` that holds the model.
    """

    delay_samples: float
    polarity: int
    cascade: Cascade = None
    theta: np.ndarray = None
    anticausal: Cascade = None
    anticausal_theta: np.ndarray = None

    def parts(self):
        """``(cascade, theta, sign)`` of the parts present: sign +1 causal, -1 anti-causal (negated phase)."""
        return [(c, t, s) for c, t, s in ((self.cascade, self.theta, 1), (self.anticausal, self.anticausal_theta, -1))
                if c is not None]

    def apply(self, x):
        """Render ``x`` (time on the last axis) through delay, polarity and both cascades (:mod:`apftools.render`)."""
        x = validate_signal(x)
        return render_model(self, x.reshape(-1, x.shape[-1])).reshape(x.shape)

    def allpass_response(self, freqs_hz):
        """Phase (radians, unwrapped) and group delay (samples) of the cascades alone at ``freqs_hz`` (Hz).

        The anti-causal part counts negated (a lead); zero without cascades.
        """
        freqs_hz = np.asarray(freqs_hz, dtype=float)
        phase, delay = np.zeros(freqs_hz.shape), np.zeros(freqs_hz.shape)
        for cascade, theta, sign in self.parts():
            phase = phase + sign * cascade.phase(theta, freqs_hz)
            delay = delay + sign * cascade.group_delay(theta, freqs_hz)
        return phase, delay

    def impulse_response(self):
        """Times (samples) and values of the cascades' impulse response, bulk delay and polarity excluded.

        The anti-causal part rings before time 0, the causal part after it;
        each runs until it decays below a tenth of :data:`RING_LEVEL`.
        ``([0], [1.0])`` without cascades.
        """
        parts = {sign: cascade.impulse_response(theta, tol=0.1 * RING_LEVEL) for cascade, theta, sign in self.parts()}
        anticausal = parts.get(-1, np.ones(1))[::-1]
        h = scipy.signal.fftconvolve(anticausal, parts.get(1, np.ones(1)))
        return np.arange(len(h)) - (len(anticausal) - 1), h

    def ringing(self, fs):
        """The group delay of largest magnitude over the audio band, signed (negative: the model leads there; bulk
        delay excluded), and the 60 dB ring times, in ms.

        The ring times are how far before and after time 0 the
        :meth:`impulse_response` reaches above :data:`RING_LEVEL` of its peak:
        ``pre_ring_ms`` (the anti-causal part's pre-ringing), ``post_ring_ms``,
        and ``ring_time_ms`` the longer.  All zero for delay and polarity alone.
        """
        _, delay = self.allpass_response(np.geomspace(*audio_band(fs), 1024))
        times, h = self.impulse_response()
        loud = times[np.abs(h) >= RING_LEVEL * np.max(np.abs(h))]
        pre, post = max(-int(loud[0]), 0), max(int(loud[-1]), 0)
        return {"max_group_delay_ms": float(1000.0 * delay[np.argmax(np.abs(delay))] / fs),
                "ring_time_ms": 1000.0 * max(pre, post) / fs, "pre_ring_ms": 1000.0 * pre / fs,
                "post_ring_ms": 1000.0 * post / fs}

    def response(self, freqs_hz, fs, bulk=True):
        """Phase (radians, unwrapped) and group delay (samples) of the whole model at ``freqs_hz``.

        Both include the bulk delay unless ``bulk`` is False; the phase includes the polarity (pi when inverted).
        """
        phase, delay = self.allpass_response(freqs_hz)
        shift = self.delay_samples if bulk else 0.0
        omega = 2 * np.pi * np.asarray(freqs_hz, dtype=float) / fs
        return phase - omega * shift + (np.pi if self.polarity < 0 else 0.0), delay + shift

    def check(self, fs, where="model"):
        """Raise unless this model is valid at sample rate ``fs`` (Hz, validated): the rules of the module docstring."""
        delay, limit = self.delay_samples, MAX_DELAY_S * fs
        if isinstance(delay, bool) or not isinstance(delay, numbers.Real) or not np.isfinite(delay):
            raise ApftoolsValueError(f"{where}: delay_samples={short_repr(delay)} is not a finite number")
        if not -limit <= delay <= limit:
            raise ApftoolsValueError(f"{where}: delay_samples={delay!r} is outside [{-limit:g}, {limit:g}] samples "
                                     f"({MAX_DELAY_S:g} s either way at fs={fs:g} Hz)")
        if not isinstance(self.polarity, numbers.Integral) or isinstance(self.polarity, bool) \
                or self.polarity not in (1, -1):
            raise ApftoolsValueError(f"{where}: polarity={short_repr(self.polarity)} must be 1 or -1")
        for name, cascade, theta in (("cascade", self.cascade, self.theta),
                                     ("anticausal", self.anticausal, self.anticausal_theta)):
            if cascade is None:
                continue
            if not isinstance(cascade, Cascade):
                raise ApftoolsTypeError(f"{where}: {name} must be a Cascade or None, got {short_repr(cascade)}")
            if cascade.fs != fs:
                raise ApftoolsValueError(f"{where}: the {name} is at fs={cascade.fs:g} Hz, the model at fs={fs:g} Hz")
            cascade.theta_from_params(cascade.params(theta))  # the rules a file is loaded by

    @property
    def causal(self):
        """True when the model can run in real time: no anti-causal part and no advance."""
        return self.anticausal is None and self.delay_samples >= 0

    def to_dict(self):
        def part(cascade, theta):
            return None if cascade is None else cascade.to_dict(theta)

        return {"delay_samples": float(self.delay_samples), "polarity": int(self.polarity),
                "cascade": part(self.cascade, self.theta), "anticausal": part(self.anticausal, self.anticausal_theta)}

    @classmethod
    def from_dict(cls, data, fs, where="model", version=ALIGNMENT_VERSION):
        """Rebuild from :meth:`to_dict` output (or a version-1 model); ``fs`` is the alignment's (validated)."""
        check_keys(data, _KEYS[version][1], where)
        parts = []
        for name in ("cascade", "anticausal"):
            if data.get(name) is None:
                parts += [None, None]
                continue
            try:
                parts += Cascade.from_dict(data[name], fs=fs)
            except (ApftoolsTypeError, ApftoolsValueError) as error:
                raise type(error)(f"{where}.{name}: {error}") from None
        return cls(data["delay_samples"], data["polarity"], *parts)


@dataclass
class Alignment:
    """How to render the dry in phase with the wet: what :func:`apftools.align` returns.

    Built only from valid parts (see the module docstring), so whatever
    :meth:`to_dict` writes, :meth:`from_dict` reads back.

    Attributes
    ----------
    fs : float
        Sample rate in Hz the model belongs to.
    models : list of ChannelModel
        One model per group of channels (see ``channels``).
    method : str
        Which fitter produced the final model, one of :data:`METHOD_LABELS`
        (``"biasnet+lbfgs"``: BiasNet polished by L-BFGS; ``"delay-only"``,
        ``"none"``: the fallbacks).
    report : dict
        Metrics before and after, delay, polarity, confidence, warnings,
        diagnostics and timing (JSON-ready; not part of the saved model).
    mode : {"offline", "causal"}
        ``"causal"`` promises real-time use: every model is :attr:`ChannelModel.causal`.
    channels : list of int, optional
        Index into ``models`` of every output channel; None (with one model):
        that model for any number of channels.
    dry_channels : int, optional
        With ``channels``: the dry's channel count, ``len(channels)`` (each
        output from its own dry channel) or 1 (a mono dry into every output).
    """

    fs: float
    models: list
    method: str = "lbfgs"
    report: dict = field(default_factory=dict)
    mode: str = "offline"
    channels: list = None
    dry_channels: int = None

    def __post_init__(self):
        self.fs = validate_fs(self.fs)
        if not isinstance(self.models, list) or not 1 <= len(self.models) <= MAX_MODELS:
            raise ApftoolsValueError(f"an alignment needs a list of 1 to {MAX_MODELS} channel models, "
                                     f"got {short_repr(self.models)}")
        for i, model in enumerate(self.models):
            if not isinstance(model, ChannelModel):
                raise ApftoolsTypeError(f"models[{i}] must be a ChannelModel, got {short_repr(model)}")
            model.check(self.fs, where=f"models[{i}]")
        if self.method not in METHOD_LABELS:
            raise ApftoolsValueError(f"method={short_repr(self.method)} must be one of {', '.join(METHOD_LABELS)}")
        if self.mode not in MODES:
            raise ApftoolsValueError(f"mode={short_repr(self.mode)} must be one of {', '.join(MODES)}")
        self._check_channels()
        if self.mode == "causal":
            for i, model in enumerate(self.models):
                if not model.causal:
                    raise ApftoolsValueError(
                        f"models[{i}] is not causal (anti-causal sections or delay_samples="
                        f"{model.delay_samples!r} < 0) but mode is 'causal'")

    def _check_channels(self):
        if self.channels is None:
            if len(self.models) != 1 or self.dry_channels is not None:
                raise ApftoolsValueError(f"channels=null needs exactly one model and dry_channels=null, got "
                                         f"{len(self.models)} models and dry_channels={short_repr(self.dry_channels)}")
            return
        n_models = len(self.models)
        if (not isinstance(self.channels, list) or not 1 <= len(self.channels) <= MAX_MODELS
                or any(type(m) is not int or not 0 <= m < n_models for m in self.channels)
                or set(self.channels) != set(range(n_models))):
            raise ApftoolsValueError(f"channels must list, for each of 1 to {MAX_MODELS} output channels, the index "
                                     f"of its model (each of 0..{n_models - 1} used), got {short_repr(self.channels)}")
        if type(self.dry_channels) is not int or self.dry_channels not in (1, len(self.channels)):
            raise ApftoolsValueError(f"dry_channels={short_repr(self.dry_channels)} must be 1 or "
                                     f"{len(self.channels)}, the number of output channels")

    def groups(self):
        """The output channels of each model, one list per model; None when one model serves any channel count."""
        if self.channels is None:
            return None
        return [[c for c, m in enumerate(self.channels) if m == i] for i in range(len(self.models))]

    @property
    def warnings(self):
        return self.report.get("warnings", [])

    def apply(self, x, fs=None):
        """The aligned version of ``x``: delay, polarity, allpass, one model per output channel.

        Parameters
        ----------
        x : array_like, shape (n_samples,) or (n_channels, n_samples)
            With :attr:`channels`, ``dry_channels`` channels; the result has
            ``len(channels)`` (a mono dry into a stereo model gives two).
        fs : float, optional
            Sample rate of ``x``; refused if it is not the model's.
        """
        if fs is not None and validate_fs(fs) != self.fs:
            raise ApftoolsValueError(
                f"the model was fitted at fs={self.fs:g} Hz, got a signal at fs={validate_fs(fs):g} Hz; "
                "resample the signal or align again at that rate"
            )
        x = validate_signal(x)
        x2 = np.atleast_2d(x)
        if x2.ndim != 2:
            raise ApftoolsValueError(f"the signal must have shape (N,) or (C, N), got {x.shape}")
        out = render(self, ArrayReader(x2, self.fs))
        return out[0] if x.ndim == 1 and out.shape[0] == 1 else out

    def mix(self, dry, wet, wet_ratio=0.5):
        """``(1 - wet_ratio) * apply(dry) + wet_ratio * wet``, on the common length."""
        if not 0.0 <= wet_ratio <= 1.0:
            raise ApftoolsValueError(f"wet_ratio must lie in [0, 1], got {wet_ratio!r}")
        aligned = self.apply(dry)
        wet = validate_signal(wet, "wet")
        n = min(aligned.shape[-1], wet.shape[-1])
        return (1.0 - wet_ratio) * aligned[..., :n] + wet_ratio * wet[..., :n]

    def to_dict(self):
        """Plain data (physical parameters only), for :func:`apftools.io.write_json`."""
        return {"format": ALIGNMENT_FORMAT, "version": ALIGNMENT_VERSION, "fs": self.fs,
                "method": self.method, "mode": self.mode, "channels": self.channels,
                "dry_channels": self.dry_channels, "models": [m.to_dict() for m in self.models]}

    @classmethod
    def from_dict(cls, data, fs=None):
        """Validate and rebuild an :class:`Alignment` (the rules of the module docstring).

        Raises
        ------
        ApftoolsTypeError, ApftoolsValueError
            On anything malformed, naming the key, its value and what was expected.
        """
        if not isinstance(data, dict):
            raise ApftoolsTypeError(f"an alignment model must be a JSON object, got {type(data).__name__}")
        version = data.get("version")
        if data.get("format") != ALIGNMENT_FORMAT or type(version) is not int or version not in _KEYS:
            raise ApftoolsValueError(
                f"not an apftools alignment model "
                f"(format {ALIGNMENT_FORMAT!r} version {' or '.join(map(str, _KEYS))}): "
                f"got format {short_repr(data.get('format'))} version {short_repr(version)}")
        check_keys(data, _KEYS[version][0], "an alignment model")
        model_fs = validate_fs(data["fs"])
        if fs is not None and validate_fs(fs) != model_fs:
            raise ApftoolsValueError(f"the model was fitted at fs={model_fs:g} Hz, not {validate_fs(fs):g} Hz")
        models = data["models"]
        if not isinstance(models, list) or not 1 <= len(models) <= MAX_MODELS:
            raise ApftoolsValueError(
                f"models must be a list of 1 to {MAX_MODELS} channel models, got {short_repr(models)}")
        if version < 3:  # per_channel: one model per channel, each from its own dry channel
            if data["per_channel"] is not (len(models) > 1):
                raise ApftoolsValueError(f"per_channel={short_repr(data['per_channel'])} must be {len(models) > 1} "
                                         f"for {len(models)} channel model(s)")
            channels, dry_channels = (list(range(len(models))), len(models)) if len(models) > 1 else (None, None)
        else:
            channels, dry_channels = data["channels"], data["dry_channels"]
        parts = [ChannelModel.from_dict(m, model_fs, f"models[{i}]", version) for i, m in enumerate(models)]
        # version 1 has no mode and made no causality promise: offline
        return cls(model_fs, parts, data["method"], mode=data.get("mode", "offline"), channels=channels,
                   dry_channels=dry_channels)

    def save(self, path, *, overwrite=False):
        """Write :meth:`to_dict` as JSON, atomically."""
        from .io import write_json

        write_json(path, self.to_dict(), overwrite=overwrite)

    @classmethod
    def load(cls, path, fs=None):
        """Read and validate a model written by :meth:`save`; errors name the file."""
        from .io import read_json

        data = read_json(path)
        try:
            return cls.from_dict(data, fs=fs)
        except (ApftoolsTypeError, ApftoolsValueError) as error:
            raise type(error)(f"{str(path)!r} is not a usable apftools model: {error}") from None
