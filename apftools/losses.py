r"""Time-domain losses for fitting allpass cascades, differentiable with autograd.

Every loss compares the cascade output ``y`` (traced by autograd) with the
``target`` (the wet, a constant array of the same shape, ``(N,)`` or
``(C, N)``) and returns a scalar.  :data:`LOSSES` maps names to the losses
with the uniform signature ``(y, target, fs)``; :func:`get_loss` looks one up.

Losses run on every optimiser step over whole signals, so they check nothing
expensive, and the costly ones are autograd primitives with fused, exact
gradients instead of chains of traced elementwise operations: :func:`mse`
(one pass forward, one backward), and the STFT losses, split into a linear
STFT operator whose gradient is its adjoint (inverse FFT and overlap-add) and
a fused per-bin loss (together about 2x faster than the same loss traced by autograd).

Squared quantities under square roots and in denominators get ``1e-12``
added, so every loss and its gradient is finite at zero.

The audio fitters (stage 2, :func:`apftools.fit.fit_time`, and BiasNet) take
these losses on segments: :func:`loudest_segment` picks one,
:func:`segment_loss` evaluates a loss there with the filter state warmed up.
"""

import numbers
from typing import NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import validate_fs
from .errors import ApftoolsTypeError, ApftoolsValueError
from .response import frame_length

_EPS = 1e-12


@primitive
def mse(y, target):
    r"""Mean squared error :math:`\frac{1}{N} \sum_n (y[n] - t[n])^2` over all samples.

    Parameters
    ----------
    y, target : ndarray
        Arrays of the same shape (any number of channels).

    Returns
    -------
    float
    """
    error = np.ravel(y - target)
    return float(np.dot(error, error)) / error.size


def _mse_vjp(sign):
    def make(ans, y, target):
        def vjp(g):
            return (sign * 2.0 * g / np.size(y)) * (y - target)
        return vjp
    return make


defvjp(mse, _mse_vjp(1.0), _mse_vjp(-1.0))


def _check_same_shape(y, target):
    if np.shape(y) != np.shape(target):
        raise ApftoolsValueError(f"y and target must have the same shape, got {np.shape(y)} and {np.shape(target)}")


def esr(y, target):
    r"""Error-to-signal ratio, the energy of the error relative to the target's.

    .. math:: \mathrm{ESR} = \frac{\sum_n (t[n] - y[n])^2}{\sum_n t[n]^2 + \epsilon},
              \qquad \epsilon = 10^{-12}

    summed over all samples of all channels.  0 for ``y == target``, 1 for
    ``y == 0``.

    Parameters
    ----------
    y, target : ndarray, shape (N,) or (C, N)

    Returns
    -------
    float

    References
    ----------
    A. Wright and V. Välimäki, "Perceptual loss function for neural modelling
    of audio systems", Proc. IEEE ICASSP, 2020.
    """
    _check_same_shape(y, target)
    return mse(y, target) * np.size(target) / (anp.sum(target * target) + _EPS)


def ncc_loss(y, target):
    r"""One minus the normalised cross-correlation at lag 0 (the loss named ``"ncc"``).

    .. math:: L_{\mathrm{NCC}} = 1 - \frac{\sum_n y[n]\, t[n]}
              {\sqrt{\sum_n y[n]^2 \sum_n t[n]^2 + \epsilon}},
              \qquad \epsilon = 10^{-12}

    over all samples of all channels.  It ranges over [0, 2]: 0 when ``y`` is
    a positive multiple of ``target`` (correlation +1), 1 for uncorrelated
    signals, 2 for ``y = -target``.  It ignores gain, not polarity.

    The research code this package replaces had the sign the other way
    round, so minimising it drove the fit to correlation -1 (an inverted
    copy); here the minimum is at correlation +1.

    Parameters
    ----------
    y, target : ndarray, shape (N,) or (C, N)

    Returns
    -------
    float
    """
    _check_same_shape(y, target)
    return 1.0 - anp.sum(y * target) / anp.sqrt(anp.sum(y * y) * anp.sum(target * target) + _EPS)


def stft_frame_length(fs, frame_s):
    """STFT frame length in samples: the power of two nearest ``frame_s * fs`` (at least 4).

    The default durations are powers of two at 48 kHz, so they give 512,
    2048 and 8192 samples there, twice that at 96 kHz.

    Parameters
    ----------
    fs : float
        Sample rate in Hz.
    frame_s : float
        Frame duration in seconds.

    Returns
    -------
    int
    """
    fs = validate_fs(fs)
    if isinstance(frame_s, bool) or not isinstance(frame_s, numbers.Real):
        raise ApftoolsTypeError(f"frame_s must be a real number of seconds, got {frame_s!r}")
    if not np.isfinite(frame_s) or frame_s <= 0:
        raise ApftoolsValueError(f"frame_s must be a positive finite duration in seconds, got {frame_s!r}")
    return frame_length(fs, frame_s)


class _StftPlan(NamedTuple):
    """Framing of an ``n``-sample signal and the band of bins kept (``k0:k1``)."""

    n: int
    frame: int
    hop: int
    n_frames: int
    pad: tuple  # zeros before and after the signal
    window: np.ndarray
    k0: int
    k1: int
    adjoint_weight: np.ndarray  # irfft weights of the kept bins in the adjoint


def _stft_plan(n, fs, frame_s, band_hz):
    """Frames of a Hann STFT, hop frame/4, padded so that every sample is seen by four frames.

    With ``frame - hop`` zeros before the signal and enough after it, the
    squared windows over every sample sum to the same 1.5, so the ends of
    the signal weigh as much as its middle.
    """
    frame = stft_frame_length(fs, frame_s)
    hop = frame // 4
    try:
        low, high = np.asarray(band_hz, dtype=float)
    except (TypeError, ValueError):
        raise ApftoolsTypeError(f"band_hz must be two frequencies (low, high) in Hz, got {band_hz!r}") from None
    high = min(high, fs / 2)
    k0, k1 = np.ceil(low * frame / fs), np.floor(high * frame / fs) + 1  # kept bins k0 <= k < k1
    if not (0 <= low < high and k0 < k1):
        raise ApftoolsValueError(
            f"band_hz must be (low, high) in Hz with 0 <= low < high (high clipped to fs/2) holding at least "
            f"one STFT bin (frame {frame} at fs={fs!r} Hz), got {band_hz!r}"
        )
    k0, k1 = int(k0), int(k1)
    if n < 1:
        raise ApftoolsValueError(f"y and target must have at least one sample along their last axis, got {n}")
    n_frames = (n - 1) // hop + frame // hop
    before = frame - hop
    after = (n_frames - 1) * hop + frame - before - n
    k = np.arange(k0, k1)
    weight = np.where((k == 0) | (k == frame // 2), frame, frame / 2)  # irfft counts interior bins twice
    window = np.hanning(frame + 1)[:-1]  # periodic Hann
    return _StftPlan(n, frame, hop, n_frames, (before, after), window, k0, k1, weight)


@primitive
def _spectra(x, plan):
    """Band-limited STFT of ``x`` (..., n) -> complex (..., n_frames, k1 - k0)."""
    padded = np.pad(x, [(0, 0)] * (np.ndim(x) - 1) + [plan.pad])
    frames = sliding_window_view(padded, plan.frame, axis=-1)[..., ::plan.hop, :]
    return np.fft.rfft(frames * plan.window, axis=-1)[..., plan.k0:plan.k1]


def _spectra_vjp(ans, x, plan):
    r"""Adjoint of the STFT: inverse FFT of the kept bins, window, overlap-add.

    With autograd's convention the cotangent of a bin is
    :math:`c_k = \partial L/\partial \Re X_k - i\, \partial L/\partial \Im X_k`, and
    :math:`\partial L / \partial x_w[m] = \Re \sum_k \bar c_k e^{2\pi i k m / F}`
    for the windowed frame :math:`x_w`, an ``irfft`` with weights ``F/2``
    (``F`` at DC and Nyquist).
    """
    def vjp(g):
        bins = np.zeros(g.shape[:-1] + (plan.frame // 2 + 1,), dtype=complex)
        bins[..., plan.k0:plan.k1] = np.conj(g) * plan.adjoint_weight
        frames = np.fft.irfft(bins, n=plan.frame, axis=-1) * plan.window
        ratio = plan.frame // plan.hop
        chunks = frames.reshape(frames.shape[:-2] + (plan.n_frames, ratio, plan.hop))
        out = np.zeros(frames.shape[:-2] + (plan.n_frames + ratio - 1, plan.hop))
        for q in range(ratio):  # chunk q of frame j lands on block j + q
            out[..., q:q + plan.n_frames, :] += chunks[..., q, :]
        start = plan.pad[0]
        return out.reshape(out.shape[:-2] + (-1,))[..., start:start + plan.n]
    return vjp


defvjp(_spectra, _spectra_vjp)


def _magnitude(z):
    return np.sqrt(np.abs(z) ** 2 + _EPS)


@primitive
def _phase_sum(Y, T):
    """Fused bin loss of :func:`stft_sum` on spectra ``Y`` and ``T``."""
    total = _magnitude(Y) + _magnitude(T)
    return float(np.sum(np.abs(total - _magnitude(Y + T))) / np.sum(total))


def _phase_sum_vjp(ans, Y, T):
    r"""Cotangent of :func:`_phase_sum` with respect to ``Y`` (swap the arguments for ``T``).

    With :math:`S = Y + T`, :math:`D = |Y| + |T| - |S|`, :math:`L = \sum |D| / B`
    and :math:`B = \sum (|Y| + |T|)`, and :math:`\partial |Y| / \partial Y = Y / |Y|`
    read as the vector (Re, Im):

    .. math:: \frac{\partial L}{\partial Y} = \frac{1}{B}\left[\operatorname{sign}(D)
              \left(\frac{Y}{|Y|} - \frac{S}{|S|}\right) - L\, \frac{Y}{|Y|}\right],

    conjugated for autograd's convention.
    """
    S = Y + T
    mag_y, mag_s = _magnitude(Y), _magnitude(S)
    total = mag_y + _magnitude(T)
    sign, scale = np.sign(total - mag_s), 1.0 / np.sum(total)
    cotangent = np.conj((scale * (sign - ans) / mag_y) * Y - (scale * sign / mag_s) * S)
    return lambda g: g * cotangent


defvjp(_phase_sum, _phase_sum_vjp, lambda ans, Y, T: _phase_sum_vjp(ans, T, Y))


def stft_sum(y, target, fs, *, frame_s=0.0427, band_hz=(20.0, 20000.0)):
    r"""Phase loss: how far the STFT bins of ``y`` and ``target`` are from adding in phase.

    .. math:: L = \frac{\sum_{c,m,k} \bigl|\, |Y| + |T| - |Y + T| \,\bigr|}
                       {\sum_{c,m,k} \bigl( |Y| + |T| \bigr)}
              , \qquad |Z| = \sqrt{\Re Z^2 + \Im Z^2 + \epsilon}, \quad \epsilon = 10^{-12}

    over channels ``c``, frames ``m`` and the bins ``k`` whose frequencies lie
    in ``band_hz`` (the upper limit clipped to ``fs / 2``); that is, the mean
    of the L1 bin term normalised by the mean of :math:`|Y| + |T|`.  By the
    triangle inequality the bin term is zero exactly when ``Y`` and ``T``
    have the same phase, whatever their magnitudes: the loss ignores
    magnitude colouration and gain (``y = 3 * target`` gives 0) and is
    scale-free.  It is 1 for ``y = -target`` and :math:`1 - \sqrt{2}/2` for a
    90-degree shift at equal magnitudes.  ``eps`` (auraloss convention) keeps
    the gradient finite where a magnitude is 0.

    The STFT uses a periodic Hann window of :func:`stft_frame_length`
    ``(fs, frame_s)`` samples (about 2048 at 48 kHz), hop a quarter frame,
    and zero padding so that every sample is in four frames.

    Parameters
    ----------
    y, target : ndarray, shape (N,) or (C, N)
    fs : float
        Sample rate in Hz.
    frame_s : float
        Frame duration in seconds.
    band_hz : (float, float)
        Lowest and highest frequency compared, in Hz.

    Returns
    -------
    float

    References
    ----------
    A. R. Bargum, S. Serafin, C. Erkut and J. D. Parker, "Differentiable
    all-pass filters for phase response estimation and automatic signal
    alignment", Proc. DAFx 2023.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.random.default_rng(0).standard_normal(48000)
    >>> round(stft_sum(-t, t, fs=48000), 6)
    1.0
    """
    _check_same_shape(y, target)
    plan = _stft_plan(np.shape(target)[-1] if np.ndim(target) else 0, validate_fs(fs), frame_s, band_hz)
    return _phase_sum(_spectra(y, plan), _spectra(target, plan))


def mr_stft_sum(y, target, fs, *, frames_s=(0.0107, 0.0427, 0.1707), band_hz=(20.0, 20000.0)):
    """Mean of :func:`stft_sum` over several frame durations (512, 2048, 8192 samples at 48 kHz).

    Short frames resolve transients, long ones low frequencies.

    Parameters
    ----------
    y, target : ndarray, shape (N,) or (C, N)
    fs : float
        Sample rate in Hz.
    frames_s : sequence of float
        Frame durations in seconds.
    band_hz : (float, float)
        Lowest and highest frequency compared, in Hz.

    Returns
    -------
    float

    References
    ----------
    C. J. Steinmetz and J. D. Reiss, "auraloss: Audio focused loss functions
    in PyTorch", Digital Music Research Network One-day Workshop, 2020
    (multi-resolution STFT loss).
    """
    frames_s = tuple(frames_s)
    if not frames_s:
        raise ApftoolsValueError(f"frames_s must hold at least one frame duration in seconds, got {frames_s!r}")
    return sum(stft_sum(y, target, fs, frame_s=f, band_hz=band_hz) for f in frames_s) / len(frames_s)


def _ignoring_fs(loss):
    def wrapped(y, target, fs):
        return loss(y, target)
    wrapped.__name__ = wrapped.__qualname__ = loss.__name__
    wrapped.__doc__ = f"``{loss.__name__}(y, target)`` with the signature ``(y, target, fs)``; ``fs`` is ignored."
    return wrapped


LOSSES = {
    "mse": _ignoring_fs(mse),
    "esr": _ignoring_fs(esr),
    "ncc": _ignoring_fs(ncc_loss),
    "stft_sum": stft_sum,
    "mr_stft_sum": mr_stft_sum,
}
"""Loss name -> function ``(y, target, fs) -> float``; the names are :data:`apftools.names.LOSS_NAMES`."""


def get_loss(name):
    """The loss called ``name`` in :data:`LOSSES`.

    Raises
    ------
    ApftoolsTypeError
        If ``name`` is not a str.
    ApftoolsValueError
        If no loss has that name.
    """
    if not isinstance(name, str):
        raise ApftoolsTypeError(f"loss name must be a str, got {name!r}")
    if name not in LOSSES:
        raise ApftoolsValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")
    return LOSSES[name]


# ------------------------------------------------------------------ segments of audio


def loudest_segment(x, fs, seconds):
    """(start, stop) sample indices of the loudest ``seconds`` of ``x`` (windows hop by a quarter)."""
    n = x.shape[-1]
    length = min(n, max(1, int(round(seconds * fs))))
    if length == n:
        return 0, n
    hop = max(1, length // 4)
    energy = np.cumsum(np.r_[0.0, np.sum(np.reshape(x, (-1, n)) ** 2, axis=0)])
    starts = np.arange(0, n - length + 1, hop)
    start = int(starts[np.argmax(energy[starts + length] - energy[starts])])
    return start, start + length


#: Warm-up before a loss segment: until the impulse response decays below WARMUP_TOL, at most MAX_WARMUP_S.
WARMUP_TOL = 1e-3
MAX_WARMUP_S = 1.0


def segment_loss(cascade, loss_fn, dry, wet, fs, window, theta):
    """The loss on the wet's ``window = (start, stop)`` as a function of theta, the filter state warmed up.

    Filtering starts ``min(start, impulse-response length of theta to WARMUP_TOL, MAX_WARMUP_S)``
    samples early, and the loss leaves that warm-up out, so a segment is not
    judged on a filter restarted from rest (the research code's bug).
    """
    start, stop = window
    warm = min(start, cascade.impulse_response_length(theta, tol=WARMUP_TOL), int(MAX_WARMUP_S * fs))
    x, target = dry[..., start - warm:stop], wet[..., start:stop]
    return lambda t: loss_fn(cascade.process(t, x)[..., warm:], target, fs)
