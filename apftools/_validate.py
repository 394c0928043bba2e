"""Input validation shared by the whole package (the one place fs is checked)."""

import numbers

import numpy as np

from .errors import ApftoolsTypeError, ApftoolsValueError

#: Most channels of a dry or a wet.
MAX_CHANNELS = 8



def validate_fs(fs):
    """Return the sample rate ``fs`` as a positive finite float in Hz.

    Raises
    ------
    ApftoolsTypeError
        If ``fs`` is not a real number (bools are refused too).
    ApftoolsValueError
        If ``fs`` is not finite and positive.
    """
    if isinstance(fs, bool) or not isinstance(fs, numbers.Real):
        raise ApftoolsTypeError(f"fs must be a real number in Hz, got {fs!r}")
    fs = float(fs)
    if not np.isfinite(fs) or fs <= 0:
        raise ApftoolsValueError(f"fs must be a positive finite sample rate in Hz, got {fs!r}")
    return fs


def validate_positive(value, name):
    """Return ``value`` as a positive finite float, or raise naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ApftoolsTypeError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ApftoolsValueError(f"{name} must be positive and finite, got {value!r}")
    return float(value)


def validate_sos(sos):
    """Return ``sos`` as a float64 array of shape (n_sections, 6) or raise.

    Rows are ``[b0, b1, b2, a0, a1, a2]`` with ``a0 == 1``, the layout of
    :func:`scipy.signal.sosfilt`.
    """
    sos = np.asarray(sos)
    if sos.dtype.kind not in "iuf":
        raise ApftoolsTypeError(f"sos must be a real array, got dtype {sos.dtype}")
    sos = sos.astype(np.float64, copy=False)
    if sos.ndim != 2 or sos.shape[1] != 6 or sos.shape[0] < 1:
        raise ApftoolsValueError(f"sos must have shape (n_sections, 6), got {sos.shape}")
    if not np.all(np.isfinite(sos)):
        raise ApftoolsValueError("sos contains NaN or Inf")
    if not np.all(sos[:, 3] == 1.0):
        raise ApftoolsValueError(f"sos[:, 3] (a0) should be all ones, got {sos[:, 3]!r}")
    return sos


def validate_signal(x, name="x"):
    """Return ``x`` as a float64 array of at least one dimension with finite samples.

    Time runs along the last axis.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise ApftoolsTypeError(f"{name} must be a real array, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ApftoolsValueError(f"{name} must have at least one sample along its last axis, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ApftoolsValueError(f"{name} contains NaN or Inf samples")
    return x


def check_keys(data, keys, what):
    """Raise unless ``data`` is a dict with exactly ``keys``; the message names ``what``, missing and unknown keys."""
    if not isinstance(data, dict):
        raise ApftoolsTypeError(f"{what} must be a JSON object, got {type(data).__name__}")
    if set(data) != set(keys):
        missing, unknown = sorted(set(keys) - set(data)), sorted(map(str, set(data) - set(keys)))
        raise ApftoolsValueError(f"{what} needs exactly the keys {sorted(keys)}"
                                 + (f"; missing {missing}" if missing else "")
                                 + (f"; unknown {short_repr(unknown)}" if unknown else ""))


def short_repr(value, limit=80):
    """``repr(value)`` cut to ``limit`` characters, for messages about untrusted data."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def validate_pair(dry, wet):
    """Validated float64 (C, N) views of dry and wet cut to their common length.

    Shapes (N,) or (C, N) with the same channel count; silent signals are refused.
    """
    dry, wet = validate_signal(dry, "dry"), validate_signal(wet, "wet")
    if dry.ndim > 2 or wet.ndim > 2:
        raise ApftoolsValueError(f"dry and wet must have shape (N,) or (C, N), got {dry.shape} and {wet.shape}")
    dry, wet = np.atleast_2d(dry), np.atleast_2d(wet)
    if dry.shape[0] != wet.shape[0]:
        raise ApftoolsValueError(f"dry has {dry.shape[0]} channel(s) and wet has {wet.shape[0]}; they must match")
    n = min(dry.shape[1], wet.shape[1])
    dry, wet = dry[:, :n], wet[:, :n]
    for name, signal in (("dry", dry), ("wet", wet)):
        if not np.any(signal):
            raise ApftoolsValueError(f"the {name} signal is silent (all {n} common samples are zero)")
    return dry, wet


def channel_layout(dry, wet):
    """The channel pairs to align: ``(dry, wet, dry_channels)`` as (C, N) stacks, row c paired with row c.

    N dry channels into N wet channels pair one to one; a mono dry into an
    N-channel wet feeds every wet channel (``dry_channels`` 1); an N-channel
    dry to a mono wet aligns each dry channel to the wet.  Up to
    :data:`MAX_CHANNELS`; other layouts are refused.
    """
    dry, wet = validate_signal(dry, "dry"), validate_signal(wet, "wet")
    if dry.ndim > 2 or wet.ndim > 2:
        raise ApftoolsValueError(f"dry and wet must have shape (N,) or (C, N), got {dry.shape} and {wet.shape}")
    dry, wet = np.atleast_2d(dry), np.atleast_2d(wet)
    n_dry, n_wet = dry.shape[0], wet.shape[0]
    if max(n_dry, n_wet) > MAX_CHANNELS:
        layout = "; arrays are (channels, samples): transpose soundfile's (samples, channels)" if min(
            dry.shape[1], wet.shape[1]) <= MAX_CHANNELS else ""
        raise ApftoolsValueError(f"dry has shape {dry.shape} and wet {wet.shape}, {n_dry} and {n_wet} channel(s); at "
                                 f"most {MAX_CHANNELS} are aligned{layout}")
    if n_dry != n_wet and 1 not in (n_dry, n_wet):
        raise ApftoolsValueError(f"dry has {n_dry} channels and wet {n_wet}: apftools aligns N channels to N, "
                                 "a mono dry into an N-channel wet, or an N-channel dry to a mono wet")
    n = max(n_dry, n_wet)
    dry, wet = validate_pair(*(x if len(x) == n else np.repeat(x, n, axis=0) for x in (dry, wet)))  # views if 1:1
    return dry, wet, n_dry
