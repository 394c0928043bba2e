"""The saved alignment: delay, polarity and allpass cascade per channel group, as plain JSON.

An :class:`Alignment` is what :func:`apftools.align` returns and what
``apftools apply`` and ``apftools response`` read back.  It imports no
fitter.  Validation happens when a model is built, whether by a fitter or
from a file, so every model apftools writes, it reads back:

* ``delay_samples`` is a finite number within :data:`MAX_DELAY_S` seconds of
  zero, either sign, at the model's ``fs``;
* ``polarity`` is the integer 1 or -1;
* ``cascade`` is ``null`` (delay and polarity only) or a cascade model whose
  parameters lie in the closed intervals of
  :func:`apftools.structures.param_bounds` (which the fitters' map from
  ``theta`` lands inside by construction);
* every key is present (``cascade`` may be ``null`` but not missing) and no
  other key is.

JSON layout (``format`` ``"apftools.alignment"``, ``version`` 1)::

    {"format": "apftools.alignment", "version": 1, "fs": 48000.0, "method": "lbfgs",
     "per_channel": false,
     "models": [{"delay_samples": 38.4, "polarity": -1, "cascade": {...} or null}, ...]}
"""

import numbers
from dataclasses import dataclass, field

import numpy as np

from ._validate import check_keys, short_repr, validate_fs, validate_signal
from .cascade import Cascade
from .delay import apply_delay
from .errors import ApftoolsTypeError, ApftoolsValueError

ALIGNMENT_FORMAT = "apftools.alignment"
ALIGNMENT_VERSION = 1
#: Largest bulk delay of a model, either sign, in seconds at the model's sample rate.
MAX_DELAY_S = 10.0
#: Most channel models in one alignment.
MAX_MODELS = 1024
#: What :attr:`Alignment.method` may say: a fitter, a polished fitter, or a fallback.
METHOD_LABELS = ("lbfgs", "biasnet", "biasnet+lbfgs", "delay-only", "none")

_ALIGNMENT_KEYS = {"format", "version", "fs", "method", "per_channel", "models"}
_CHANNEL_KEYS = {"delay_samples", "polarity", "cascade"}


@dataclass
class ChannelModel:
    """Delay, polarity and cascade applied to one group of channels.

    ``delay_samples`` may be fractional or negative (the wet leads);
    rendering is ``polarity * cascade(delay(x))``, and a model without a
    cascade (``cascade=None``) renders delay and polarity only.  The values
    are checked by the :class:`Alignment` that holds the model.
    """

    delay_samples: float
    polarity: int
    cascade: Cascade = None
    theta: np.ndarray = None

    def apply(self, x):
        """Render ``x`` (time on the last axis) through delay, polarity and cascade."""
        y = self.polarity * apply_delay(x, self.delay_samples)
        return y if self.cascade is None else self.cascade.process(self.theta, y)

    def response(self, freqs_hz, fs):
        """Phase (radians, unwrapped) and group delay (samples) of the whole model at ``freqs_hz``.

        Both include the bulk delay; the phase includes the polarity (pi when inverted).
        """
        freqs_hz = np.asarray(freqs_hz, dtype=float)
        phase = -2 * np.pi * freqs_hz / fs * self.delay_samples + (np.pi if self.polarity < 0 else 0.0)
        delay = np.full(freqs_hz.shape, float(self.delay_samples))
        if self.cascade is not None:
            phase = phase + self.cascade.phase(self.theta, freqs_hz)
            delay = delay + self.cascade.group_delay(self.theta, freqs_hz)
        return phase, delay

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
        if self.cascade is not None:
            if not isinstance(self.cascade, Cascade):
                raise ApftoolsTypeError(f"{where}: cascade must be a Cascade or None, got {short_repr(self.cascade)}")
            if self.cascade.fs != fs:
                raise ApftoolsValueError(f"{where}: the cascade is at fs={self.cascade.fs:g} Hz, "
                                         f"the model at fs={fs:g} Hz")
            self.cascade.theta_from_params(self.cascade.params(self.theta))  # the rules a file is loaded by

    def to_dict(self):
        cascade = None if self.cascade is None else self.cascade.to_dict(self.theta)
        return {"delay_samples": float(self.delay_samples), "polarity": int(self.polarity), "cascade": cascade}

    @classmethod
    def from_dict(cls, data, fs, where="model"):
        """Rebuild from :meth:`to_dict` output; ``fs`` is the alignment's (validated)."""
        check_keys(data, _CHANNEL_KEYS, where)
        if data["cascade"] is None:
            return cls(data["delay_samples"], data["polarity"])
        try:
            cascade, theta = Cascade.from_dict(data["cascade"], fs=fs)
        except (ApftoolsTypeError, ApftoolsValueError) as error:
            raise type(error)(f"{where}.cascade: {error}") from None
        return cls(data["delay_samples"], data["polarity"], cascade, theta)


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
        One model shared by all channels, or one per channel.
    method : str
        Which fitter produced the final model, one of :data:`METHOD_LABELS`
        (``"biasnet+lbfgs"``: BiasNet polished by L-BFGS; ``"delay-only"``,
        ``"none"``: the fallbacks).
    report : dict
        Metrics before and after, delay, polarity, confidence, warnings,
        diagnostics and timing (JSON-ready; not part of the saved model).
    """

    fs: float
    models: list
    method: str = "lbfgs"
    report: dict = field(default_factory=dict)

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

    @property
    def per_channel(self):
        return len(self.models) > 1

    @property
    def warnings(self):
        return self.report.get("warnings", [])

    def apply(self, x, fs=None):
        """The aligned version of ``x`` (same shape): delay, polarity, allpass.

        Parameters
        ----------
        x : array_like, shape (n_samples,) or (n_channels, n_samples)
        fs : float, optional
            Sample rate of ``x``; refused if it is not the model's.
        """
        if fs is not None and validate_fs(fs) != self.fs:
            raise ApftoolsValueError(
                f"the model was fitted at fs={self.fs:g} Hz, got a signal at fs={validate_fs(fs):g} Hz; "
                "resample the signal or align again at that rate"
            )
        x = validate_signal(x)
        if not self.per_channel:
            return self.models[0].apply(x)
        x2 = np.atleast_2d(x)
        if x2.shape[0] != len(self.models):
            raise ApftoolsValueError(
                f"this per-channel model has {len(self.models)} channels, the signal has {x2.shape[0]}")
        return np.stack([m.apply(x2[c]) for c, m in enumerate(self.models)]).reshape(x.shape)

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
                "method": self.method, "per_channel": self.per_channel,
                "models": [m.to_dict() for m in self.models]}

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
        if data.get("format") != ALIGNMENT_FORMAT or data.get("version") != ALIGNMENT_VERSION:
            raise ApftoolsValueError(
                f"not an apftools alignment model (format {ALIGNMENT_FORMAT!r} version {ALIGNMENT_VERSION}): "
                f"got format {short_repr(data.get('format'))} version {short_repr(data.get('version'))}")
        check_keys(data, _ALIGNMENT_KEYS, "an alignment model")
        model_fs = validate_fs(data["fs"])
        if fs is not None and validate_fs(fs) != model_fs:
            raise ApftoolsValueError(f"the model was fitted at fs={model_fs:g} Hz, not {validate_fs(fs):g} Hz")
        models = data["models"]
        if not isinstance(models, list) or not 1 <= len(models) <= MAX_MODELS:
            raise ApftoolsValueError(f"models must be a list of 1 to {MAX_MODELS} channel models, got {short_repr(models)}")
        if data["per_channel"] is not (len(models) > 1):
            raise ApftoolsValueError(f"per_channel={short_repr(data['per_channel'])} must be {len(models) > 1} "
                                     f"for {len(models)} channel model(s)")
        return cls(model_fs, [ChannelModel.from_dict(m, model_fs, f"models[{i}]") for i, m in enumerate(models)],
                   data["method"])

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
