r"""Fitting allpass cascades with L-BFGS: phase response first, then audio.

Stage 1 (:func:`fit_frequency`) fits the cascade's closed-form response to a
measured transfer function, in two steps.  The shape first: the group delay
plus a constant residual delay :math:`\tau` (samples), with the robust loss
:math:`L_\tau` of :func:`_shape_objective`.  Group delay is blind to polarity
and to phase wrapping, and each section adds a local bump, so this landscape
is far smoother than the phase's.  Then the phase:

.. math:: L_\varphi(\theta, \tau) = \sum_f w_f \big(1 - \cos(\varphi_{\mathrm{meas}}(f)
          - \varphi_\theta(f) + \omega_f \tau)\big), \qquad \sum_f w_f = 1,

half the weighted squared distance between unit phasors, so it needs no
unwrapping; it settles the polarity and the last fraction of a degree.  The
cost does not depend on the signal length, so it runs from many starts (the
landscape is multimodal and the sections are interchangeable; from random
starts about one time-domain fit in three reaches the optimum).  Starts come
from peaks of the measured group delay (a second-order allpass section has a
group-delay peak of about :math:`(1 + R)/(1 - R)` samples at its centre
frequency) and at random.  Both losses add :func:`ring_penalty`, which
holds every section's group-delay peak within :func:`group_delay_bound`
(narrower sections only ring).

Stage 2 (:func:`fit_time`) refines :math:`\theta` on the audio with exact
gradients through :func:`apftools.sosfilt`, on the loudest few seconds.

Reference: Bargum et al., "Differentiable all-pass filters for phase
response estimation and automatic signal alignment", DAFx 2023.
"""

import math
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.optimize
import scipy.signal
from autograd import value_and_grad

from . import _fitkernel, lbfgs
from . import structures as st
from ._validate import short_repr
from .cascade import Cascade, ResponseGrid
from .errors import ApftoolsValueError
from .losses import get_loss, loudest_segment, segment_loss


@dataclass
class FrequencyFit:
    r"""Result of :func:`fit_frequency`.

    Attributes
    ----------
    theta : ndarray
        Best unconstrained parameters.
    delay_samples : float
        Residual delay :math:`\tau` (samples) fitted with the phase.
    polarity : int
        Polarity of the wet relative to the dry, +1 or -1.
    loss : float
        :math:`L_\varphi` at the optimum (0 = every weighted bin in phase), on ``dense`` where given.
    shape_losses : list of float
        Final group-delay loss :math:`L_\tau` of every polished start, best first.
    anticausal_theta : ndarray or None
        Parameters of the anti-causal cascade, if one was fitted.
    ring_bound_samples : float
        The group-delay bound of :func:`ring_penalty` that held the fit (samples).
    other_polarity_loss : float or None
        :math:`L_\varphi` of the best result with the other polarity (as ``loss``): near ``loss``, the
        cascade takes up an inversion as well as the polarity does, and the measurement leaves the
        polarity open.
    alternative : FrequencyFit or None
        With ``anchor``, where an anchored start won: the best result of the same polarity from the shapes'
        own delays, for the mix to judge (:func:`apftools.align.align`).
    """

    theta: np.ndarray
    delay_samples: float
    polarity: int
    loss: float
    shape_losses: list = field(default_factory=list)
    anticausal_theta: np.ndarray = None
    ring_bound_samples: float = np.inf
    other_polarity_loss: float = None
    alternative: "FrequencyFit" = None


#: A section's group-delay peak may reach this multiple of the spread of the effect's measured group delay ...
GROUP_DELAY_FACTOR = 2.0
#: ... plus this margin (s).
GROUP_DELAY_MARGIN_S = 1e-3
#: Poles below the first frequency (Hz) are held by the looser bound :data:`LOW_GROUP_DELAY_S`, above the second
#: by the effect's bound (:func:`group_delay_bound`); a smooth gate between.
RING_GATE_HZ = (40.0, 50.0)
#: Group-delay peak (s) a section with its poles below the gate may reach (when the effect's bound is smaller):
#: a Q of about 2.5 at the gate's 40 Hz, where a high-pass needs well under 1 (2nd-order Butterworth 0.7).
LOW_GROUP_DELAY_S = 0.02
#: Weight of the ring penalty (:func:`ring_penalty`) in the shape and the phase loss.
RING_WEIGHTS = {"shape": 10.0, "phase": 1.0}


#: When one polarity's phase loss decides against the other's (:func:`decides`): below this fraction of it
#: while the other's is above :data:`POLARITY_FLOOR` (fits badly), or below :data:`POLARITY_CLEAR` of it.
POLARITY_MARGIN = 0.5
POLARITY_FLOOR = 0.02
POLARITY_CLEAR = 0.1


def decides(loss, other_loss, margin=POLARITY_MARGIN, floor=POLARITY_FLOOR, clear=POLARITY_CLEAR):
    """Whether a polarity's phase ``loss`` is clearly better than the other's ``other_loss`` (:func:`fit_frequency`)."""
    return (loss < margin * other_loss and other_loss > floor) or loss < clear * other_loss


def polarity_ambiguous(loss, other_loss):
    """Whether neither polarity's phase loss :func:`decides` against the other's.

    The cascade can imitate an inversion over a band (its low first-order sections turn the phase by 180
    degrees), so the measurement cannot tell the two apart; :func:`fit_frequency` then keeps the
    expected polarity.
    """
    return not (decides(loss, other_loss) or decides(other_loss, loss))


def phase_loss_deg(loss):
    r"""About the RMS phase error (degrees) of a phase loss :math:`L_\varphi`: :math:`\sqrt{2 L}` radians,
    since :math:`1 - \cos r \approx r^2 / 2`."""
    return math.degrees(math.sqrt(2.0 * max(loss, 0.0)))


def group_delay_bound(tf, factor=GROUP_DELAY_FACTOR, margin_s=GROUP_DELAY_MARGIN_S):
    r"""Largest group-delay peak, in samples, that one section of a fit to ``tf`` may have.

    ``factor`` times the spread (max - min) of the measured third-octave
    group delays (:meth:`~apftools.response.TransferFunction.band_group_delay`,
    bands with energy), plus ``margin_s`` seconds.  A section needs no more to
    follow the effect: a first-order section with its corner at the lowest
    band (a high-pass's phase lead needs one) peaks, at DC, at twice the group
    delay it shows at its corner, hence the factor 2.  Narrower sections only
    ring: a fit once jumped a 360-degree phase wrap with a 17 ms group-delay
    spike at 1.1 kHz (R = 0.9992), invisible between the grid's frequencies,
    where the effect's own group delay varied by 1 ms.
    """
    tau = tf.band_group_delay()[1]
    tau = tau[np.isfinite(tau)]
    spread = float(np.ptp(tau)) if len(tau) else 0.0
    return factor * spread + margin_s * tf.fs


def ring_radius(cascade, bound_samples):
    r"""Largest prototype pole radius of each section whose group-delay peak stays within ``bound_samples``.

    A pole at radius :math:`r` adds a group-delay peak of about
    :math:`M (1 + r)/(1 - r)` samples (:math:`M` the stretch) and rings
    for about :math:`6.9 M / (1 - r)` samples to -60 dB, so bounding the
    peak bounds the ring time, about 3.5 times the bound.
    """
    ratio = bound_samples / np.array([k.stretch for k in cascade.kinds], dtype=float)
    return np.clip(1.0 - 2.0 / (ratio + 1.0), 0.1, st.R_MAX)


def _low_gate(a1, a2, c_on, c_off):
    r"""0 for poles below ``RING_GATE_HZ[0]``, 1 above ``RING_GATE_HZ[1]``, smooth between; and its derivatives.

    The pole angle of :math:`z^2 + a_1 z + a_2` has :math:`\cos\theta =
    -a_1 / (2 \sqrt{a_2})`; real poles (first-order sections too, where
    :math:`a_2 = 0`) count at DC when :math:`a_1 < 0` (the larger root is
    positive), at Nyquist otherwise.  ``c_on``/``c_off`` are the cosines of the gate's
    edges per section.  Returns ``(gate, d gate / d a1, d gate / d a2)``.
    """
    complex_poles = a1 * a1 < 4.0 * a2
    root = np.sqrt(np.where(complex_poles, a2, 1.0))
    cos = np.where(complex_poles, -a1 / (2.0 * root), -np.sign(a1))  # real poles: the dominant one's side
    x = np.clip((c_off - cos) / (c_off - c_on), 0.0, 1.0)
    gate = x * x * (3.0 - 2.0 * x)
    d_cos = np.where(complex_poles, 6.0 * x * (1.0 - x) / (c_on - c_off), 0.0)  # d gate / d cos
    return gate, d_cos * -1.0 / (2.0 * root), d_cos * a1 / (4.0 * root**3)


def _excess(a1, a2, rho):
    """Squared excess of the poles of :math:`z^2 + a_1 z + a_2` beyond radius ``rho`` (:func:`ring_penalty`); its
    derivatives in ``a1`` and ``a2``."""
    scale = 1.0 - rho
    c1 = np.maximum(a2 - rho**2, 0.0) / scale
    c2 = np.maximum(np.abs(a1) - rho - a2 / rho, 0.0) / scale
    return c1**2 + c2**2, 2.0 * c2 / scale * np.sign(a1), 2.0 * c1 / scale - 2.0 * c2 / scale / rho


def ring_penalty(sos, d_sos, rho, c_on, c_off, rho_low=None):
    r"""How far the poles of each section lie beyond radius ``rho`` (``rho_low`` below the gate), squared and summed;
    its gradient.

    Both roots of :math:`z^2 + a_1 z + a_2` lie within :math:`\rho` exactly
    when (Jury's conditions on :math:`z = \rho w`) :math:`a_2 \le \rho^2` and
    :math:`|a_1| \le \rho + a_2 / \rho`, both linear in the coefficients:

    .. math:: E_s(\rho) = \frac{[a_2 - \rho^2]_+^2 + [|a_1| - \rho - a_2/\rho]_+^2}{(1 - \rho)^2}, \qquad
              P = \sum_s g_s E_s(\rho) + (1 - g_s) E_s(\rho_{low}),

    each excess measured against the distance :math:`1 - \rho` left to the
    unit circle.  The gate :math:`g_s` (:func:`_low_gate`) hands poles below
    :data:`RING_GATE_HZ` to the looser radius :math:`\rho_{low}` (none
    without ``rho_low``): a high-pass's phase lead needs a pole near DC
    whose group delay peaks below the measured band, where the effect's
    bound says nothing.  Without any bound there, a causal and an
    anti-causal section at 23-25 Hz grew peaks of 110 and 166 ms that
    almost cancelled (the shipped pair, one seed in six): 14 ms of
    pre-ringing for nothing.  0 inside the bounds, smooth.
    A batch of coefficients (leading axes) gives a batch of penalties.
    """
    a1, a2 = sos[..., 4], sos[..., 5]
    excess, d_a1, d_a2 = _excess(a1, a2, rho)
    gate, d_gate_a1, d_gate_a2 = _low_gate(a1, a2, c_on, c_off)
    low, low_a1, low_a2 = (0.0, 0.0, 0.0) if rho_low is None else _excess(a1, a2, rho_low)
    d_a1 = gate * d_a1 + (1.0 - gate) * low_a1 + (excess - low) * d_gate_a1
    d_a2 = gate * d_a2 + (1.0 - gate) * low_a2 + (excess - low) * d_gate_a2
    return (np.sum(gate * excess + (1.0 - gate) * low, axis=-1),
            np.sum(d_a1[..., None] * d_sos[..., 4, :] + d_a2[..., None] * d_sos[..., 5, :], axis=-2))


class ResponseModel:
    r"""Phase and group delay of a causal and an optional anti-causal cascade, with their derivatives in theta.

    Both cascades are evaluated as one :class:`~apftools.cascade.ResponseGrid`
    (no autograd: stage 1 evaluates it thousands of times) with
    the anti-causal sections signed -1: they run over the time-reversed
    signal, so their phase and group delay count negated.  ``theta`` is the
    causal parameters followed by the anti-causal ones.  With ``ring_bound``
    (samples), the model also gives :func:`ring_penalty` for poles beyond
    :func:`ring_radius`.
    """

    def __init__(self, cascade, freqs_hz, anticausal=None, ring_bound=None):
        parts = [cascade] + ([] if anticausal is None else [anticausal])
        signs = np.concatenate([np.full(c.n_sections, sign) for c, sign in zip(parts, (1.0, -1.0))])
        self.cascade = Cascade(",".join(c.spec for c in parts), cascade.fs)
        self.grid = ResponseGrid(self.cascade, freqs_hz, signs)
        self.omega = self.grid.omega
        self.rho = None if ring_bound is None else ring_radius(self.cascade, ring_bound)
        self.rho_low = None if ring_bound is None else ring_radius(
            self.cascade, max(ring_bound, LOW_GROUP_DELAY_S * cascade.fs))
        # the C library's cos, not numpy's (whose last bits follow the CPU: :mod:`apftools._fitkernel`)
        self.gate = [np.array([math.cos(2 * math.pi * f * m / cascade.fs) for m in self.cascade._stretch])
                     for f in RING_GATE_HZ[::-1]]
        self.kernels = _fitkernel.Geometry(
            self.omega, signs, [[k.order, k.stretch, k.warped] for k in self.cascade.kinds],
            [[o.get(name, -1) for name in ("R", "fc", "a")] for o in self.cascade.offsets], cascade.fs,
            [st.R_MAX, st.RANGES["a"].high, st.RANGES["fc"].low, st.RANGES["fc"].high, st.EDGE_MARGIN,
             st.FC_NYQUIST_FRACTION],
            None if self.rho is None else (self.rho, self.rho_low, *self.gate))

    def __call__(self, theta, phase=True, delay=True):
        """``(phase, group_delay, d phase / d theta, d group_delay / d theta, penalty, d penalty / d theta)``.

        Radians and samples; the penalty is 0 without ``ring_bound``.
        ``theta`` of shape (B, n_params) evaluates B parameter vectors at
        once (shapes (B, n_freqs), (B, n_freqs, n_params), (B,), (B, n_params)).
        ``phase=False`` or ``delay=False`` skips that half (None in its places).
        The numpy reference of the compiled :meth:`losses` and :meth:`response`.
        """
        sos, d_sos = self.cascade.sos_jacobian(theta)
        response = self.grid.from_sos(sos, d_sos, phase, delay)
        if self.rho is None:
            return (*response, np.zeros(np.shape(theta)[:-1]), np.zeros(np.shape(theta)))
        return (*response, *ring_penalty(sos, d_sos, self.rho, *self.gate, self.rho_low))

    def losses(self, params, mode, targets, target_of_row, weights, ring_weight, scale=0.0):
        """Compiled loss and gradient of rows ``(theta, tau)`` (:meth:`apftools._fitkernel.Geometry.objective`)."""
        return self.kernels.objective(params, mode, targets, target_of_row, weights, ring_weight, scale)

    def response(self, thetas):
        """Compiled ``(phasors, group_delay)`` of rows of theta (:meth:`apftools._fitkernel.Geometry.response`)."""
        return self.kernels.response(thetas)


class _Objective:
    """One of the stage-1 losses of a :class:`ResponseModel`: called on a batch of ``(theta, tau)`` rows as
    :func:`apftools.lbfgs.minimize` calls an objective, or minimised in compiled code (:meth:`minimize`)."""

    def __init__(self, model, mode, targets, negative, weights, ring_weight, scale=0.0):
        self.model, self.mode, self.targets, self.negative = model, mode, targets, negative
        self.weights, self.ring_weight, self.scale = weights, ring_weight, scale

    def _targets_of(self, n_rows, rows):
        which = self.negative if len(self.negative) == 1 else self.negative[np.arange(n_rows) if rows is None
                                                                             else rows]
        return np.broadcast_to(which, n_rows).astype(np.int64)

    def __call__(self, params, rows=None):
        """Values (B,) and gradients (B, P + 1) of rows ``params`` (``rows``: their indices, for per-row targets)."""
        return self.model.losses(params, self.mode, self.targets, self._targets_of(len(params), rows), self.weights,
                                 self.ring_weight, self.scale)

    def minimize(self, x0, max_iter, lower=None):
        """:func:`apftools.lbfgs.minimize` of this loss from every row of ``x0``, compiled
        (:meth:`apftools._fitkernel.Geometry.minimize`).

        Rows are independent problems and the kernel releases the GIL, so halves of the batch run side by
        side on two cores (:func:`apftools._threads.together`); each row's path, so the result, is the same
        either way.
        """
        from ._threads import together

        x0 = np.ascontiguousarray(x0, dtype=float)
        targets = self._targets_of(len(x0), None)

        def run(rows):
            return self.model.kernels.minimize(
                x0[rows], max_iter, -math.inf if lower is None else lower, self.mode, self.targets, targets[rows],
                self.weights, self.ring_weight, self.scale, *lbfgs.SETTINGS.values())

        parts = together(*(lambda rows=rows: run(rows) for rows in np.array_split(np.arange(len(x0)), 2) if len(rows)))
        x, fun, nit, evaluations = (np.concatenate(column) for column in zip(*parts))
        return lbfgs.BatchResult(x, fun, nit, int(evaluations.sum()))


def _shape_objective(model, tf, scale=2.0):
    r"""Group-delay loss :math:`L_\tau` of a batch of ``(theta, tau)`` rows, and its gradient.

    .. math:: L_\tau = \sum_f w_f\, c^2 \Big(\sqrt{1 + r_f^2 / c^2} - 1\Big), \qquad
              r_f = \tau_{\mathrm{meas}}(f) - \tau_\theta(f) - \tau,

    a soft-L1 loss with scale :math:`c` samples, robust to the spikes that
    phase noise leaves in a measured group delay.  Compiled
    (:meth:`apftools._fitkernel.Geometry.objective`).
    """
    return _Objective(model, 1, tf.group_delay[None].astype(complex), np.zeros(1, bool), settle(tf.weights),
                      RING_WEIGHTS["shape"], scale)


def _phase_objective(model, tf, polarity):
    r"""Phase loss :math:`L_\varphi` (module docstring) of a batch of ``(theta, tau)`` rows, and its gradient.

    ``polarity``: +1 or -1, or one of them per row of the batch, whose
    ``rows`` the objective's second argument picks (:func:`apftools.lbfgs.minimize`).
    Compiled (:meth:`apftools._fitkernel.Geometry.objective`).
    """
    measured = _fitkernel.phasors(tf.h)
    return _Objective(model, 0, np.array([measured, -measured]), np.reshape(polarity, -1) < 0, settle(tf.weights),
                      RING_WEIGHTS["phase"])


def phase_loss(cascade, tf, theta, delay_samples, polarity, anticausal=None, anticausal_theta=None):
    r""":math:`L_\varphi` of a fitted model on a (held-out) measured response."""
    model = ResponseModel(cascade, tf.freqs_hz, anticausal)
    params = np.concatenate([theta, [] if anticausal is None else anticausal_theta, [delay_samples]])
    return float(_phase_objective(model, tf, polarity)(params[None])[0][0])


def peak_start(cascade, tf, rng, sign=1):
    """A start whose second-order sections sit on the largest peaks of ``sign`` times the measured group delay.

    ``sign=-1`` for an anti-causal cascade, whose sections supply the troughs (leads).
    """
    theta = cascade.init(rng)
    params = cascade.params(theta)
    tau = sign * tf.group_delay
    peaks, props = scipy.signal.find_peaks(tau, prominence=0.5)
    order = np.argsort(props["prominences"] * tf.weights[peaks])[::-1]
    peaks = list(peaks[order])
    for section, kind in zip(params, cascade.kinds):
        if kind.order != 2 or not peaks:
            continue
        peak = peaks.pop(0)
        if kind.warped:
            section["a"] = 0.0
        r_high = float(st.radius_bound(0.0, kind.stretch))
        height = max(tau[peak], 1.0)
        section["R"] = float(np.clip((height - 1.0) / (height + 1.0), 0.05, 0.99 * r_high))
        low, high = (float(b) for b in st.fc_bounds(2, cascade.fs, kind.stretch, 0.0))
        section["fc"] = float(np.clip(tf.freqs_hz[peak], low * 1.001, high * 0.999))
    return cascade.theta_from_params(params)


def _weighted_median(values, weights):
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def _distinct(losses, rtol=1e-6):
    """Indices of ``losses`` (sorted) without those equal to an earlier one's to ``rtol``: shapes that converged
    to one optimum would be polished on the phase to one result, twice."""
    kept = []
    for i, loss in enumerate(losses):
        if all(abs(loss - losses[k]) > rtol * abs(losses[k]) for k in kept):
            kept.append(i)
    return kept


#: Significant bits the fit's inputs keep (:func:`settle`): 1e-6 relative, far below any measurement's noise.
SETTLE_BITS = 20


def settle(x):
    r"""``x`` rounded to :data:`SETTLE_BITS` significant bits (real and imaginary parts apart).

    The fit's inputs go through it: how the machine measured them (its BLAS
    kernel, numpy's SIMD code) moves their last bits, and the multi-start
    fit would amplify that into another optimum.  Rounding is exact, so a
    value lands on another machine's value unless the two straddle one of
    its steps: for values k units in the last place apart, with probability
    about :math:`k\, 2^{-52} / 2^{-20} = k\, 2^{-32}`, so a fit's few thousand
    inputs all land alike but about once in 10^5 fits.
    """
    x = np.asarray(x)
    if np.iscomplexobj(x):
        out = np.empty_like(x)
        out.real, out.imag = settle(x.real), settle(x.imag)
        return out
    mantissa, exponent = np.frexp(x)
    return np.ldexp(np.round(mantissa * 2.0**SETTLE_BITS), exponent - SETTLE_BITS)


def _settled(tf):
    """``tf`` with every measured array rounded by :func:`settle`."""
    return replace(tf, h=settle(tf.h), coherence=settle(tf.coherence), power=settle(tf.power),
                   group_delay=settle(tf.group_delay))


#: Rows of parameters :func:`_dense_losses` and :func:`_anchor_delays` evaluate at once (their arrays grow with
#: the dense response's bins).
DENSE_ROWS = 8


def _row_chunks(n_rows):
    """Indices of ``n_rows`` rows in chunks of at most :data:`DENSE_ROWS`."""
    return np.array_split(np.arange(n_rows), -(-n_rows // DENSE_ROWS))


def _fft_bins(dense, fs):
    """``(n, bins)``: the length of the FFT on whose bins ``dense`` is measured, at ``fs``, and their indices;
    raises unless it is one (:func:`_anchor_delays` needs it)."""
    freqs = dense.freqs_hz
    n = int(round(fs / np.min(np.diff(freqs)))) if len(freqs) > 1 else 0
    bins = freqs * n / fs
    if dense.fs != fs or n < 1 or not np.allclose(bins, np.round(bins)):
        raise ApftoolsValueError(f"dense must be the response measured at fs={fs:g} Hz on the bins of one FFT "
                                 f"(every bin of the band), got {len(freqs)} frequencies at fs={dense.fs:g} Hz "
                                 f"from {short_repr(freqs)}")
    return n, np.round(bins).astype(int)


#: Residual delays per sample that :func:`_anchor_delays` tries.
ANCHOR_STEPS = 8
#: The farthest (s) :func:`fit_frequency` takes a start's delay to anchor it.
ANCHOR_WINDOW_S = 2e-3


def _anchor_delays(model, dense, signs, params, min_delay=None):
    r"""For each row of ``(theta, tau)`` ``params`` (polarity ``signs``), the residual delay that minimises
    :math:`L_\varphi` on ``dense`` with theta held, in steps of 1 / :data:`ANCHOR_STEPS` sample.

    With theta held, :math:`1 - L_\varphi(\tau) = \mathrm{Re} \sum_f w_f e^{j(\varphi_{\mathrm{meas}}(f)
    - \varphi_\theta(f))} e^{j \omega_f \tau}`: the weighted, phase-only cross-correlation of the measured
    response with the cascades' (GCC-PHAT of what the cascades leave), one inverse FFT over every delay
    the bins resolve, since ``dense`` sits on the bins of one FFT.  ``model``: a
    :class:`ResponseModel` on ``dense.freqs_hz``; delays below ``min_delay`` are not tried.
    """
    n, bins = _fft_bins(dense, dense.fs)
    size = n * ANCHOR_STEPS
    delays = np.fft.fftfreq(size, 1.0 / n)  # tau = j / ANCHOR_STEPS, negative in the upper half
    anchored = np.empty(len(params))
    measured = _fitkernel.phasors(dense.h)
    for chunk in _row_chunks(len(params)):
        residual = np.zeros((len(chunk), size), complex)
        model_phasors = model.response(params[chunk, :-1])[0]
        residual[:, bins] = settle(dense.weights) * signs[chunk, None] * measured * np.conj(model_phasors)
        match = np.fft.ifft(residual, axis=1).real
        if min_delay is not None:
            match[:, delays < min_delay] = -np.inf
        anchored[chunk] = delays[np.argmax(match, axis=1)]
    return anchored


def _dense_losses(model, dense, signs, params):
    r""":math:`L_\varphi` of each row of ``(theta, tau)`` ``params`` (polarity ``signs``) on the response ``dense``
    (``model``: a :class:`ResponseModel` on its frequencies)."""
    objective = _phase_objective(model, dense, signs)
    return np.concatenate([objective(params[chunk], chunk)[0] for chunk in _row_chunks(len(params))])


def fit_frequency(cascade, tf, *, anticausal=None, min_delay_samples=None, polarity=1, n_starts=16, n_polish=16,
                  rng=0, max_iter=200, scout_iter=60, polarity_margin=POLARITY_MARGIN, polarity_floor=POLARITY_FLOOR,
                  polarity_clear=POLARITY_CLEAR, ring_bound_samples=None, dense=None, anchor=False):
    r"""Stage 1: fit the cascades' phase, a residual delay and the polarity to a measured response.

    First the shape: :math:`L_\tau` (group delay, blind to polarity and to
    phase wrapping, so its landscape is far smoother than the phase's) from
    ``n_starts`` starts, each scouted for ``scout_iter`` iterations.  Then the
    ``n_polish`` best shapes run to convergence and the distinct ones are
    polished on :math:`L_\varphi` for both polarities, each step in compiled
    code (:meth:`apftools._fitkernel.Geometry.minimize`).  The opposite polarity wins if its
    loss is below ``polarity_margin`` times the given one's while the given
    one's is above ``polarity_floor`` (it fits badly: a causal cascade that
    cannot follow an EQ's lead fitted 0.19 against 0.017 inverted), or below
    ``polarity_clear`` times it (clearly better).  A margin of 0.9 flipped a
    causal cabinet that fitted 0.086 against 0.053 inverted (and mixed
    0.1 dB better so) but, offline, let the polarity follow the seed on 7
    of 30 real cases, against 5 with 0.5 (both with 30 scouting
    iterations; 3 with 60, one of them the nonlinear control).  A cascade can imitate an inversion over a
    limited band, so both polarities often fit: on the shipped fixture both
    reached 0.0003 to 0.02 (1 to 11 degrees RMS, under 0.05 dB in the mix)
    and which was lower followed the seed, as on 27 of 30 real-effect cases
    (within a factor 1/5 to 5); where GCC-PHAT's polarity was wrong (a
    Linkwitz-Riley low-pass) the other measured below 1/30 of it.  The
    choice still follows the seed where the search misses one polarity's
    optimum altogether.  Scouting ``scout_iter=60`` iterations, not 30,
    and polishing ``n_polish=16`` shapes (half of align's 32 starts), not 8
    or 4: the scouts' ranking, and the shape's, missed the basin that fits
    the phase best on some seeds (phase losses 10 to 18 times the other
    seeds' on an RIAA and a 10-band EQ case; 0.079 against 0.04 and a worst
    band of -1.9 dB against -0.4 on a cabinet at 96 kHz, with 30).  With 16,
    a guitar cabinet's phase loss fell from 0.035-0.040 to 0.012-0.023 on 4
    seeds of 5 (worst band -0.62 to -0.20 dB) and the polarity of the 96
    kHz cabinet and the deficit of a stereo widener stopped following the
    seed; phase-fitting only the 8 best of the 16 shapes lost it all again.
    It costs about a fifth more time.

    With ``dense``, the polished results are compared, and the polarity
    chosen, on :math:`L_\varphi` over every measured bin of the band
    rather than the grid's: between two grid frequencies (68 Hz apart at 5
    kHz on a 512-point log grid) a fit can turn its phase by a whole
    circle and match the grid with a phase that is wrong in between.  On a
    phaser, the best results on the grid fitted it to 0.02-0.03 on every
    seed, but on two seeds of five they were 0.08-0.09 on every bin and
    dug 3-4 dB notches at 4-5 kHz into the mix.

    With ``anchor`` too, the starts of the expected polarity are also
    polished from the delay that fits their phase best on ``dense``
    (:func:`_anchor_delays`), where that is half a sample to
    :data:`ANCHOR_WINDOW_S` from the shape's: a noisy group delay can
    misplace every shape's delay.  On a nonlinear preamp, one seed's shapes
    all sat 2 to 70 samples from the delays the phase wanted and the fit
    missed (0.19 against 0.04; -2.6 dB in the mix's worst band against
    -0.5); on a chorus, one seed's both fits mixed worse than unaligned.
    Anchored starts won there, 3 to 37 samples (0.07-0.8 ms) from the
    shape's.  Farther peaks (up to 14 ms) and the other polarity's never
    won; moving the shapes' delays instead of adding starts lost a stereo
    widener, whose anchors sat at a spurious peak 0.8 ms away.  Where an
    anchored start wins, the best from the shapes' own delays comes back too
    (``alternative``): the phase loss over the bins and the mix weigh
    frequencies differently, and on a 48 kHz guitar cabinet the one that
    fitted worse (0.015 against 0.012) mixed better (-0.012 against -0.035 dB
    overall).

    Parameters
    ----------
    cascade : Cascade
        The causal sections.
    tf : TransferFunction
        Measured response, typically on a log grid (:func:`~apftools.response.log_grid`),
        after the bulk delay and polarity have been removed; its
        :attr:`~apftools.response.TransferFunction.weights` weight the fit.
    anticausal : Cascade, optional
        Sections run over the time-reversed signal: their phase counts
        negated, so they can lead where the effect leads.
    min_delay_samples : float, optional
        Lower bound of the residual delay :math:`\tau` (samples); ``-bulk``
        keeps the total delay non-negative, as real-time use needs.
    polarity : {1, -1}
        Expected polarity of the wet relative to the dry.
    polarity_margin, polarity_floor, polarity_clear : float
        When the opposite polarity wins (above).
    n_starts, n_polish : int
        Starts (the first from group-delay peaks and troughs, the rest
        random) and how many of the best are polished on the phase.
    rng : int or numpy.random.Generator
        Draws the random starts.  The default, 0, is one fixed design, which
        :func:`apftools.align.align` always uses: with the compiled
        objectives (:mod:`apftools._fitkernel`) and the inputs rounded by
        :func:`settle`, the fit gives the same answer bit for bit on every
        run and machine, not one that follows a seed.
    max_iter : int
        L-BFGS iterations per polished start.
    ring_bound_samples : float, optional
        Largest group-delay peak of any one section, in samples, held by
        :func:`ring_penalty` in both losses; default
        :func:`group_delay_bound` of ``tf``, ``math.inf`` for none.
    dense : TransferFunction, optional
        The response ``tf`` was thinned from, at every bin of the band
        (:meth:`~apftools.response.TransferFunction.in_audio_band`, with
        ``tf``'s ``bands``), on which the results are compared (above);
        on the bins of one FFT.
    anchor : bool
        Also polish starts from anchored delays (above; needs ``dense``).

    Returns
    -------
    FrequencyFit
    """
    if cascade.fs != tf.fs:
        raise ApftoolsValueError(f"cascade at fs={cascade.fs:g} Hz cannot fit a response measured at {tf.fs:g} Hz")
    if dense is not None:
        _fft_bins(dense, tf.fs)
    elif anchor:
        raise ApftoolsValueError("anchor=True anchors the delays on dense, the response at every bin; got dense=None")
    rng = np.random.default_rng(rng)
    tf = _settled(tf)
    dense = None if dense is None else _settled(dense)
    if ring_bound_samples is None:
        ring_bound_samples = float(settle(group_delay_bound(tf)))
    model = ResponseModel(cascade, tf.freqs_hz, anticausal, ring_bound=ring_bound_samples)
    parts = [(cascade, 1)] + ([(anticausal, -1)] if anticausal is not None else [])
    n_causal = cascade.n_params
    thetas = [np.concatenate([peak_start(c, tf, rng, sign) for c, sign in parts])]
    thetas += [np.concatenate([c.init(rng) for c, _ in parts]) for _ in range(max(n_starts, 1) - 1)]
    thetas = settle(thetas)
    # each start's residual delay begins where its group delay meets the measured one (weighted median):
    # starting at 0 left the shape fit stranded when the bulk estimate was off by a few samples
    weights = settle(tf.weights)  # a property that recomputes the band sums
    delays = [_weighted_median(tf.group_delay - tau, weights) for tau in model.response(thetas)[1]]
    if min_delay_samples is not None:
        delays = np.maximum(delays, min_delay_samples)
    shape = _shape_objective(model, tf)
    # successive halving: every start gets a short run, the best few run to convergence
    scouts = shape.minimize(np.column_stack([thetas, delays]), scout_iter, min_delay_samples)
    best = np.argsort(scouts.fun)[:n_polish]
    shaped = shape.minimize(scouts.x[best], max_iter, min_delay_samples)
    order = np.argsort(shaped.fun)
    kept = order[_distinct(shaped.fun[order])]
    signs = np.repeat([polarity, -polarity], len(kept))  # both polarities from every distinct shape, at once
    shapes = shaped.x[kept]
    starts = np.tile(shapes, (2, 1))
    dense_model = None if dense is None else ResponseModel(cascade, dense.freqs_hz, anticausal)
    if anchor:  # the expected polarity's shapes also from the delays that best fit their phase on every bin
        anchored = shapes.copy()
        anchored[:, -1] = _anchor_delays(dense_model, dense, np.full(len(kept), polarity), shapes,
                                         min_delay_samples)
        shift = np.abs(anchored[:, -1] - shapes[:, -1])
        anchored = anchored[(shift >= 0.5) & (shift <= ANCHOR_WINDOW_S * tf.fs)]
        starts, signs = np.vstack([starts, anchored]), np.concatenate([signs, np.full(len(anchored), polarity)])
    phased = _phase_objective(model, tf, signs).minimize(starts, max_iter, min_delay_samples)
    losses = phased.fun if dense is None else _dense_losses(dense_model, dense, signs, phased.x)
    best = {sign: np.flatnonzero(signs == sign)[np.argmin(losses[signs == sign])] for sign in (1, -1)}
    expected, other = losses[best[polarity]], losses[best[-polarity]]
    flip = decides(other, expected, polarity_margin, polarity_floor, polarity_clear)
    sign = -polarity if flip else polarity

    def result(row, alternative=None):
        x = phased.x[row]
        return FrequencyFit(x[:n_causal], float(x[-1]), sign, float(losses[row]), [float(f) for f in shaped.fun[kept]],
                            x[n_causal:-1] if anticausal is not None else None, float(ring_bound_samples),
                            float(losses[best[-sign]]), alternative)

    own = np.flatnonzero(signs[:2 * len(kept)] == sign)  # the rows polished from the shapes' own delays
    unanchored = own[np.argmin(losses[own])]
    return result(best[sign], result(unanchored) if best[sign] != unanchored else None)


@dataclass
class TimeFit:
    """Result of :func:`fit_time`: ``theta``, the loss ``history`` (normalised to 1 at the start), the segment used."""

    theta: np.ndarray
    loss: float
    history: list
    segment: tuple


def fit_time(cascade, theta, dry, wet, fs, *, loss="mse", max_iter=60, segment_s=4.0, callback=None):
    """Stage 2: refine ``theta`` on audio, with exact gradients.

    The loss is evaluated on the loudest ``segment_s`` seconds of the wet,
    with the filter state warmed up (:func:`segment_loss`).

    Parameters
    ----------
    cascade : Cascade
    theta : ndarray
        Start (e.g. :attr:`FrequencyFit.theta`).
    dry, wet : ndarray, shape (..., n_samples)
        Dry with delay and polarity already applied, and the wet.
    fs : float
    loss : str
        A name from :data:`apftools.losses.LOSSES`.
    max_iter : int
    segment_s : float
    callback : callable, optional
        Called with the normalised loss after every iteration.

    Returns
    -------
    TimeFit
    """
    cascade.check_fs(fs)
    loss_fn = get_loss(loss)
    start, stop = loudest_segment(wet, fs, segment_s)
    raw = segment_loss(cascade, loss_fn, dry, wet, fs, (start, stop), theta)
    scale = float(raw(theta)) or 1.0
    objective = value_and_grad(lambda t: raw(t) / scale)
    history = [1.0]

    def record(intermediate_result):  # scipy passes the iterate's loss, no re-evaluation
        history.append(float(intermediate_result.fun))
        if callback is not None:
            callback(history[-1])

    result = scipy.optimize.minimize(objective, theta, jac=True, method="L-BFGS-B",
                                     options={"maxiter": max_iter}, callback=record)
    return TimeFit(result.x, float(result.fun) * scale, history, (start, stop))
