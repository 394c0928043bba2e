r"""Automatic dry/wet alignment: bulk delay, polarity and an allpass cascade.

:func:`align` estimates how an effect delays and phase-shifts its input and
returns an :class:`Alignment` that renders a dry signal in phase with the wet:

1. bulk delay and polarity by GCC-PHAT (:func:`apftools.delay.estimate_delay`);
2. the dry-to-wet transfer function and coherence of the delay-compensated
   pair (:mod:`apftools.response`), with band-balanced weights;
3. the phase of a causal cascade, minus that of an anti-causal one (offline
   mode), plus the fractional remainder of the delay, fitted to the measured
   phase from several starts, for both polarities
   (:func:`apftools.fit.fit_frequency`).  This is the whole fit: a
   time-domain refinement on the loudest seconds was measured to trade quiet
   bands for loud ones;
4. metrics before and after on every third-octave band
   (:func:`apftools.metrics.mix_report`); among the fitted model, delay and
   polarity alone, and nothing, the best mix that harms no band is kept
   (:func:`_choose`), and the report says what was weighed.

Channels (:func:`apftools._validate.channel_layout`): N into N, a mono dry into N wet channels,
or N dry channels into a mono wet; channels whose measured responses agree
share one model (:func:`_link`), each group fitted and chosen on its own.

Reference: Bargum et al., "Differentiable all-pass filters for phase
response estimation and automatic signal alignment", DAFx 2023.
"""

import time
from dataclasses import dataclass, field, replace

import numpy as np

from . import fit as fitting
from . import metrics
from . import structures as st
from ._threads import blas_single_thread, together
from ._validate import channel_layout, validate_fs, validate_positive
from .bands import audio_band
from .cascade import Cascade
from .delay import apply_delay, estimate_delay
from .errors import ApftoolsValueError
from .model import MAX_DELAY_S, Alignment, ChannelModel
from .names import METHODS
from .response import excess_phase, log_grid, low_frequency_sign, refine_latency, transfer_function

#: Specs tried, in order, by ``sections="auto"``.
AUTO_SPECS = ("1x2w", "2x2w", "3x2w", "3x2w,1w", "4x2w,1w", "5x2w,1w", "6x2w,1w", "8x2w,1w", "10x2w,1w")
#: The default spec: causal sections | anti-causal sections (offline files).
DEFAULT_SPEC = "3x2w,1w|2x2w,1w"
#: The default spec of causal (real-time) mode.
DEFAULT_CAUSAL_SPEC = "3x2w,1w"
#: Offline, with the default spec: where its phase loss exceeds :data:`REFIT_PHASE_LOSS`, this larger spec is
#: fitted too and the mix judges between the two (:func:`_choose`).  Cabinets need it: their many resonances
#: left 3x2w,1w|2x2w,1w at phase losses of 0.02-0.06 and overall deficits 0.03-0.07 dB from the best possible,
#: 6x2w,1w|3x2w,1w within 0.04 on every seed; fitted everywhere, it cost a third more time.  With the fit four
#: times faster, 9x2w,1w|4x2w,1w: on the real-effects bench it took the 48 kHz cabinet's worst window from
#: -0.13 to -0.07 dB (oracle -0.05), the widener's channels from -1.35 and -0.23 to -0.67 and -0.04, the
#: preamp's harm from -0.13 to -0.00, at 0.008 dB of the 96 kHz cabinet's overall deficit; no other case
#: moved by 0.05 dB.  Causal mode has no larger spec: there the cabinet's limit is its lead, which more
#: causal sections cannot supply.
LARGER_SPEC = "9x2w,1w|4x2w,1w"
#: The phase loss (about 8 degrees RMS) above which :data:`LARGER_SPEC` is fitted too; every EQ, crossover,
#: rotator and tone stack of the real-effects bench fits below 0.005, cabinets and the controls above 0.02.
REFIT_PHASE_LOSS = 0.01
#: A band more than this much worse than unaligned counts as harm (dB).
HARM_TOLERANCE_DB = 0.5
#: Below this power-weighted coherence a static allpass cannot explain the wet.
MIN_COHERENCE = 0.9
#: Below this power-weighted coherence there is nothing to align: the dry explains under a fifth of the wet's power
#: (unrelated noise measured 0.004 to 0.07 for 8 to 0.5 s, the Welch estimator's bias; the real-effects bench's
#: lowest, a chorus, 0.56).  :func:`align` refuses such a pair rather than fit a model to noise.
MIN_ALIGNABLE_COHERENCE = 0.2
#: Phase change between the two halves of the signal (degrees, weighted RMS) flagged as time-varying.
MAX_PHASE_DRIFT_DEG = 20.0
#: How channels get models: grouped by measurement, all linked, or each its own.
LINKS = ("auto", "linked", "separate")
#: ``link="auto"`` links channels whose bulk delays differ by at most this (samples), whose polarities agree ...
LINK_DELAY_SAMPLES = 1.0
#: ... and whose measured phase responses differ by at most this (degrees, weighted RMS over the audio band).
LINK_PHASE_DEG = 10.0
#: Below this :func:`~apftools.response.low_frequency_sign` the fit expects the opposite of GCC-PHAT's polarity.
LOW_SIGN_FLIP = -0.8


def _phase_difference_deg(first, second):
    """Weighted RMS phase difference (degrees) of two measured responses on one grid, over the audio band.

    Each bin weighs by the smaller coherence times the geometric mean power.
    """
    first, second = first.in_audio_band(), second.in_audio_band()
    weight = np.minimum(first.coherence, second.coherence) * np.sqrt(first.power * second.power)
    difference = np.angle(first.h * np.conj(second.h))
    return float(np.degrees(np.sqrt(np.sum(weight * difference**2) / max(np.sum(weight), 1e-300))))


def _phase_drift_deg(dry, wet, fs):
    """Weighted RMS phase change of the measured response between the two halves of the signal."""
    half = dry.shape[-1] // 2
    first = transfer_function(dry[..., :half], wet[..., :half], fs)
    second = transfer_function(dry[..., half:], wet[..., half:], fs, nperseg=len(first.freqs_hz) * 2 - 2)
    return _phase_difference_deg(first, second)


class NothingToAlign(ApftoolsValueError):
    """A group of channels with nothing to align: a silent side, or a wet the dry does not explain.

    :func:`align` raises it when every group is so; otherwise those groups
    keep the identity (``method`` ``"none"``) and a warning says why.
    """


def _link(dry, wet, fs, link, estimates):
    """Groups of channels that share one model, and the report of how they were chosen.

    ``link="auto"``: channel c joins the first group whose first channel
    agrees with it: bulk delays within :data:`LINK_DELAY_SAMPLES`, the same
    polarity, and phase responses (both compensated by the group's delay and
    polarity) within :data:`LINK_PHASE_DEG`.  Otherwise it starts a group;
    so does a channel with a silent side, linked to none.  ``estimates``:
    each channel's :class:`~apftools.delay.DelayEstimate`, None where a side is silent.
    """
    n = dry.shape[0]
    if n == 1 or link != "auto":
        groups = [[c] for c in range(n)] if link == "separate" else [list(range(n))]
        return groups, {"link": link, "groups": groups, "pairs": []}

    def compare(i, j):
        shift = estimates[i]
        if shift is None or estimates[j] is None:
            return {"channels": [i, j], "silent": True, "linked": False}
        delay_difference = estimates[j].delay_samples - shift.delay_samples
        polarity_differs = estimates[j].polarity != shift.polarity
        phase = None
        if abs(delay_difference) <= LINK_DELAY_SAMPLES and not polarity_differs:
            first, second = (transfer_function(shift.polarity * apply_delay(dry[c], shift.delay_samples), wet[c], fs)
                             for c in (i, j))
            phase = _phase_difference_deg(first, second)
        return {"channels": [i, j], "delay_difference_samples": float(delay_difference),
                "polarity_differs": bool(polarity_differs), "phase_difference_deg": phase,
                "linked": phase is not None and phase <= LINK_PHASE_DEG}

    groups, pairs = [], []
    for c in range(n):
        for group in groups:
            pairs.append(compare(group[0], c))
            if pairs[-1]["linked"]:
                group.append(c)
                break
        else:
            groups.append([c])
    return groups, {"link": link, "groups": groups, "pairs": pairs,
                    "rule": f"linked when bulk delays differ by at most {LINK_DELAY_SAMPLES:g} samples, polarities "
                            f"agree and phase responses differ by at most {LINK_PHASE_DEG:g} degrees RMS"}


def split_spec(sections, causal):
    """``(causal spec, anti-causal spec or None)`` of ``sections``; None picks the default of the mode.

    A spec is ``CAUSAL`` or ``CAUSAL|ANTICAUSAL`` (e.g. ``"3x2w,1w|2x2w,1w"``):
    the sections after ``|`` run over the time-reversed signal.  ``CAUSAL``
    may be ``auto``.  In causal mode there is no anti-causal part.
    """
    if sections is None:
        sections = DEFAULT_CAUSAL_SPEC if causal else DEFAULT_SPEC
    if not isinstance(sections, str):
        raise ApftoolsValueError(f"sections must be a spec string such as {DEFAULT_SPEC!r}, got {sections!r}")
    causal_spec, bar, anticausal_spec = sections.partition("|")
    if bar and causal:
        raise ApftoolsValueError(f"sections={sections!r} has anti-causal sections (after '|'), "
                                 "which causal mode cannot use; give only the causal part")
    return causal_spec.strip(), (anticausal_spec.strip() or None) if bar else None


def check_spec(sections, causal):
    """Raise :class:`~apftools.errors.ApftoolsValueError` unless ``sections`` is a well-formed spec for the mode.

    The syntax and the counts only (:func:`split_spec`,
    :func:`~apftools.structures.parse_spec`); whether a sample rate leaves
    room for every section is checked when the cascade is built.
    """
    for part in split_spec(sections, causal):
        if part is not None and part != "auto":
            st.parse_spec(part, st.STRETCH_MIN_RATE_HZ)  # any rate: only the default stretch depends on it


def _select_order(grid, anticausal, min_delay, n_starts, notes):
    """Grow the causal cascade along AUTO_SPECS while the held-out phase loss improves by 2% or more.

    Stage 1 is fitted on every other frequency of ``grid`` and scored on the rest.
    """
    odd = np.arange(len(grid.freqs_hz)) % 2 == 1
    train, held_out = grid.select(~odd), grid.select(odd)
    best_spec, best_score = None, np.inf
    for spec in AUTO_SPECS:
        cascade = Cascade(spec, grid.fs)
        result = fitting.fit_frequency(cascade, train, anticausal=anticausal, min_delay_samples=min_delay,
                                       n_starts=n_starts)
        score = fitting.phase_loss(cascade, held_out, result.theta, result.delay_samples, result.polarity,
                                   anticausal, result.anticausal_theta)
        notes.append({"spec": spec, "held_out_phase_loss": float(score)})
        if score > 0.98 * best_score - 1e-6:
            break
        best_spec, best_score = spec, score
    return best_spec


def _group_warnings(shifted, wet, fs):
    """Coherence and time-variance of the delay-compensated pair (latency would read as noise)."""
    warnings = []
    coherence, drift = together(lambda: metrics.coherence_summary(shifted, wet, fs),
                                lambda: _phase_drift_deg(shifted, wet, fs))
    if coherence < MIN_COHERENCE:
        warnings.append(f"low coherence between dry and wet ({coherence:.2f} < {MIN_COHERENCE}): noise, "
                        "distortion or a time-varying effect that a static allpass cannot fully explain")
    if drift > MAX_PHASE_DRIFT_DEG:
        warnings.append(f"the effect's phase response changes over time ({drift:.0f} degrees between the halves): "
                        "a time-varying effect (phaser, chorus?) that a static allpass cannot follow")
    return coherence, drift, warnings


@dataclass(frozen=True)
class _Settings:
    """The options of one :func:`align` call that every channel group's fit reads (validated by :func:`align`)."""

    specs: tuple
    larger: tuple  # LARGER_SPEC split, or None
    method: str
    causal: bool
    loss: str
    max_delay_s: float
    n_starts: int
    max_iter: int
    segment_s: float
    polish: bool
    biasnet: dict = field(default_factory=dict)


def _larger(sections, causal, method):
    """:data:`LARGER_SPEC` split where it applies: the L-BFGS fit of the default spec, offline; else None."""
    return split_spec(LARGER_SPEC, False) if sections is None and not causal and method == "lbfgs" else None


def _fit_group(dry, wet, fs, settings, rng, progress, before, estimate=None):
    """Delay, polarity and cascades for one group of channels; returns (fitted models, report entries).

    ``before``: the group's unaligned metrics, whose band levels say which
    bands the fit weighs (:func:`apftools.metrics.fit_bands`).  The fitted
    models are the fit of ``settings.specs`` and, where it fits the phase
    worse than :data:`REFIT_PHASE_LOSS`, that of ``settings.larger``.
    ``estimate``: the group's bulk delay estimate, if already made.
    """
    report = {}
    estimate = estimate or estimate_delay(dry, wet, fs, settings.max_delay_s)
    report["bulk_delay_samples"] = float(estimate.delay_samples)
    report["bulk_polarity"] = int(estimate.polarity)
    report["delay_confidence"] = float(estimate.confidence)
    warnings = []
    if estimate.ambiguous:
        warnings.append(
            f"the bulk delay estimate ({estimate.delay_samples:.2f} samples) is ambiguous "
            f"(peak prominence {estimate.confidence:.2f}); check max_delay_s (--max-delay-ms) or the material")
    progress(0.1, "delay")
    shifted = estimate.polarity * apply_delay(dry, estimate.delay_samples)
    (report["coherence"], report["phase_drift_deg"], more), measured = together(
        lambda: _group_warnings(shifted, wet, fs), lambda: transfer_function(shifted, wet, fs))
    report["warnings"] = warnings + more
    if not report["coherence"] >= MIN_ALIGNABLE_COHERENCE:  # NaN too
        low_band, high_band = audio_band(fs)
        raise NothingToAlign(
            f"nothing to align: between {low_band:g} and {high_band:g} Hz the dry explains almost none of the wet "
            f"(coherence {report['coherence']:.2f} at the best delay, power-weighted; at least "
            f"{MIN_ALIGNABLE_COHERENCE} is needed): is the wet this dry through the effect?")
    # the effect's latency, for delay compensation: GCC-PHAT's, or where the effect is minimum phase the slope of
    # its excess phase (the model's delay is another thing: its cascades take up part of the phase)
    report["latency_samples"] = estimate.delay_samples + refine_latency(
        measured.freqs_hz, measured.h, excess_phase(measured.h), 0.0, 1, fs)
    low = low_frequency_sign(measured)
    report["low_frequency_sign"] = None if np.isnan(low) else low
    grid, dense = _grids(measured, metrics.fit_bands(before["band_level_db"]))
    progress(0.15, "response")
    expected = -1 if low < LOW_SIGN_FLIP else 1
    [model] = _fit_grid(grid, estimate.delay_samples, estimate.polarity, settings, report, expected, dense)
    progress(0.3, "phase fit")
    fitted = [model] + _fit_larger(grid, estimate.delay_samples, estimate.polarity, settings, report, model, dense)
    progress(0.5, "larger phase fit" if len(fitted) > 1 else "phase fit")
    cascade, polarity, delay, theta = model.cascade, model.polarity, model.delay_samples, model.theta
    if settings.method == "biasnet":  # the network starts afresh; only stage 1's delay and polarity are kept
        from .biasnet import MAX_STEPS, train_biasnet  # numba's import, only when needed

        aligned = polarity * apply_delay(dry, delay)
        seconds = dry.shape[-1] / fs
        options = {"held_out_s": min(1.0, seconds / 4), "segment_s": min(0.5, seconds / 4), **settings.biasnet}
        steps = options.get("max_steps", MAX_STEPS)

        def on_step(step, value):
            progress(0.5 + 0.4 * step / steps, f"biasnet {value:.3g}")

        trained = train_biasnet(cascade, aligned, wet, fs, loss=settings.loss, rng=rng, callback=on_step,
                                **options)
        theta = trained.theta
        report["biasnet"] = {"held_out_loss": trained.loss, "steps": trained.steps, "seconds": trained.seconds,
                             "network_weights": trained.network_weights_count,
                             "held_out_history": trained.held_out_history}
        if settings.polish:
            stage2 = fitting.fit_time(cascade, theta, aligned, wet, fs, loss=settings.loss,
                                      max_iter=settings.max_iter, segment_s=settings.segment_s)
            theta = stage2.theta
            report["time_fit"] = {"loss": settings.loss, "history": stage2.history,
                                  "segment_samples": list(stage2.segment)}
        fitted = [ChannelModel(delay, polarity, cascade, theta)]
    return fitted, report


def _grids(tf, bands=None):
    """The log grid a fit runs on and every bin of the band, where it compares its results
    (:func:`apftools.fit.fit_frequency`); both weigh ``bands``."""
    return replace(log_grid(tf), bands=bands), replace(tf.in_audio_band(), bands=bands)


def _fit_larger(grid, bulk_delay, bulk_polarity, settings, report, default, dense=None):
    """The fits of settings.larger (:func:`_fit_grid`'s list) if there is one and :func:`_fit_grid`'s fit
    ``default`` (its report in ``report``) fits the phase worse than :data:`REFIT_PHASE_LOSS`, else ``[]``; adds
    ``larger_fit`` to ``report``.

    The larger fit expects the polarity that ``default`` settled, a better prior than GCC-PHAT's on the same
    response: with GCC-PHAT's, the nonlinear preamp's two fits disagreed on one seed of five, and the mix kept
    the larger one's.  Not the polarity that fitted ``default``'s spec best (``other_polarity_loss``): where
    both polarities fit alike, as on the cabinets, which is lower follows the seed (4 case-seeds of 10
    flipped).  The larger fit also polishes each start from the delay that fits its phase best
    (:func:`apftools.fit.fit_frequency`'s ``anchor``); where an anchored start wins, the best from the shapes' own
    delays is a second model for the mix to judge.
    """
    if not settings.larger or report["frequency_fit"]["phase_loss"] <= REFIT_PHASE_LOSS:
        return []
    larger = {}
    models = _fit_grid(grid, bulk_delay, bulk_polarity, replace(settings, specs=settings.larger), larger,
                       default.polarity * bulk_polarity, dense, anchor=True)
    report["larger_fit"] = {"spec": "|".join(settings.larger), **larger["frequency_fit"]}
    return models


def _fit_grid(grid, bulk_delay, bulk_polarity, settings, report, expected=1, dense=None, anchor=False):
    """Stage 1 on a measured response ``grid`` taken after ``bulk_delay`` (samples) and ``bulk_polarity``.

    ``expected``: the polarity the fit expects relative to ``bulk_polarity``
    (-1 where the response below the audio band says GCC-PHAT's is wrong,
    :data:`LOW_SIGN_FLIP`); ``dense``: the response at every bin of the band,
    where the fit compares its results (:func:`_grids`); ``anchor``:
    :func:`apftools.fit.fit_frequency`'s.  Returns ``[the fitted ChannelModel]``
    (delay and polarity include the bulk ones), and the fit's ``alternative``
    second where it has one; adds ``frequency_fit`` (and
    ``order_selection``) to ``report``.
    """
    fs = grid.fs
    causal_spec, anticausal_spec = settings.specs
    anticausal = Cascade(anticausal_spec, fs) if anticausal_spec and settings.method == "lbfgs" else None
    # causal mode: the total delay stays >= 0 (an advance needs the future)
    min_delay = -bulk_delay if settings.causal else None
    if causal_spec == "auto":
        report["order_selection"] = []
        causal_spec = _select_order(grid, anticausal, min_delay, max(4, settings.n_starts // 2),
                                    report["order_selection"])
    cascade = Cascade(causal_spec, fs)
    # stage 1 settles the residual delay and the polarity for either method: no allpass can undo
    # a wrong polarity or a bulk delay estimated too long (GCC-PHAT includes the cascade's own delay)
    stage1 = fitting.fit_frequency(cascade, grid, anticausal=anticausal, min_delay_samples=min_delay,
                                   polarity=expected, n_starts=settings.n_starts, dense=dense, anchor=anchor)
    report["frequency_fit"] = {"phase_loss": stage1.loss, "other_polarity_loss": stage1.other_polarity_loss,
                               "shape_losses": stage1.shape_losses}
    fits = [stage1]
    if stage1.alternative is not None:
        fits.append(stage1.alternative)
        report["frequency_fit"]["alternative_phase_loss"] = stage1.alternative.loss
    return [ChannelModel(bulk_delay + fit.delay_samples, bulk_polarity * fit.polarity, cascade, fit.theta, anticausal,
                         fit.anticausal_theta) for fit in fits]


def fit_response(tf, delay_samples, polarity, *, sections=None, causal=False, n_starts=32):
    """Delay, polarity and cascades for a response measured some other way (a sweep): :func:`align`'s stage 1.

    Parameters
    ----------
    tf : apftools.response.TransferFunction
        The effect's response after ``delay_samples`` and ``polarity`` were
        removed from it, at full resolution: the fit runs on its log grid
        (:func:`apftools.response.log_grid`) and compares on every bin of
        the band, as :func:`align`'s.
    delay_samples : float
        Bulk delay already removed, in samples.
    polarity : {1, -1}
    sections, causal, n_starts
        As for :func:`align` (the L-BFGS fitter).

    Returns
    -------
    (ChannelModel, dict)
        The model and the fit's report entries.  With the default spec
        offline, :data:`LARGER_SPEC` is fitted too where it fits badly, as
        by :func:`align`; with no mix to judge, the lower phase loss wins.
    """
    settings = _Settings(split_spec(sections, causal), _larger(sections, causal, "lbfgs"), "lbfgs", causal, "mse",
                         0.0, n_starts, 0, 0.0, False)
    report = {}
    grid, dense = _grids(tf)
    with blas_single_thread():
        [model] = _fit_grid(grid, float(delay_samples), int(polarity), settings, report, dense=dense)
        larger = _fit_larger(grid, float(delay_samples), int(polarity), settings, report, model, dense)
    if larger and report["larger_fit"]["phase_loss"] < report["frequency_fit"]["phase_loss"]:
        model = larger[0]
    return model, report


#: The candidates that fall back from a fitted model: nothing, and delay and polarity alone.
FALLBACKS = ("none", "delay-only")


def _choose(candidates, fs, dry, wet, before):
    """The candidate to keep, its metrics, its harm to the unaligned pair (dB), warnings, and its rendering of
    ``dry``: do no harm, band by band.

    Every candidate is scored (:func:`apftools.metrics.mix_summary`; the
    kept one's full :func:`~apftools.metrics.mix_report`) on every
    third-octave window with energy (:func:`apftools.bands.window_centres`).  A
    fallback (:data:`FALLBACKS`) is harmless when it leaves no band more
    than :data:`HARM_TOLERANCE_DB` worse than unaligned; a fitted model
    (there may be two: :data:`LARGER_SPEC`), when
    it leaves no band that much worse than the better fallback in that band
    (a model that mixes best overall while digging a notch where delay and
    polarity alone were clean is no improvement there).  The best overall
    mix among the harmless wins.  A harmful candidate is kept only if it
    still lifts the worst band by more than the tolerance over the best
    harmless one, and the report names every band it harms with both values.
    """
    def scored(model):
        aligned = model.apply(dry)
        return aligned, metrics.mix_summary(aligned, wet, fs)

    names = [name for name in candidates if name != "none"]
    results = dict(zip(names, together(*(lambda model=candidates[name]: scored(model) for name in names))))
    aligned = {name: signal for name, (signal, _) in results.items()}
    scores = {name: results[name][1] if name in results else before for name in candidates}
    # judged on every third-octave window, not only the IEC bands: a notch two bands split counts fully
    bands = {name: np.array(score["window_deficit_db"], dtype=float) for name, score in scores.items()}  # None: NaN
    fallback = np.fmax.reduce([bands[name] for name in FALLBACKS if name in bands])  # NaN only where none has energy
    reference = {name: bands["none"] if name in FALLBACKS else fallback for name in scores}
    harm = {name: metrics.band_harm_db(reference[name], bands[name]) for name in scores}
    harmless = [name for name in candidates if harm[name] >= -HARM_TOLERANCE_DB]
    safe = max(harmless, key=lambda name: scores[name]["mix_deficit_db"])  # "none" is always harmless
    best = max(candidates, key=lambda name: scores[name]["mix_deficit_db"])
    warnings = []
    chosen = safe

    def harmed(name):
        return ", ".join(f"{label} ({b:.2f} -> {a:.2f} dB)"
                         for label, b, a in zip(before["window_labels"], reference[name], bands[name])
                         if a < b - HARM_TOLERANCE_DB)  # False for NaN bands

    def baseline(name):
        return "unaligned" if name in FALLBACKS else "unaligned or delay and polarity alone"

    if best not in harmless:
        lift = scores[best]["worst_band_db"] - scores[safe]["worst_band_db"]
        if lift > HARM_TOLERANCE_DB:
            chosen = best
            warnings.append(f"{best!r} lifts the worst band by {lift:.2f} dB but leaves these bands worse than "
                            f"{baseline(best)}: {harmed(best)}")
        elif best in FALLBACKS or safe in FALLBACKS:  # between two fitted models the harmless one is simply better
            warnings.append(f"{best!r} mixes best overall but would leave bands worse than {baseline(best)} "
                            f"({harmed(best)}); keeping {safe!r}")
    if chosen in FALLBACKS:  # every fitted model not kept, and why (the one above is said already)
        for name in candidates:
            worse = scores[chosen]["mix_deficit_db"] - scores[name]["mix_deficit_db"]
            if name in FALLBACKS or (name == best and warnings) or (name in harmless and worse < 0.005):
                continue  # as good as what is kept, to the printed 0.01 dB: nothing to explain
            reason = (f"would leave bands worse than {baseline(name)} ({harmed(name)})" if name not in harmless else
                      f"mixes {worse:.2f} dB worse overall")
            warnings.append(f"{name!r} is not kept: it {reason}; keeping {chosen!r}")
    score = before if chosen == "none" else metrics.mix_report(aligned[chosen], wet, fs, scores[chosen])
    return chosen, score, metrics.band_harm_db(bands["none"], bands[chosen]), warnings, aligned.get(chosen, dry)


def align(dry, wet, fs, *, sections=None, causal=False, method="lbfgs", loss="mse", max_delay_s=0.25, seed=0,
          link="auto", n_starts=32, max_iter=60, segment_s=4.0, polish=False, biasnet=None, progress=None):
    """Align ``dry`` with ``wet``: estimate delay, polarity and the effect's phase response.

    Parameters
    ----------
    dry, wet : array_like, shape (n_samples,) or (n_channels, n_samples)
        The effect's input and output at the same sample rate: N channels
        into N, a mono dry into an N-channel wet (a mono source through a
        stereo effect), or N into a mono wet (:func:`apftools._validate.channel_layout`).  The
        aligned result has the larger channel count.  A wet shorter than the
        dry is aligned on the overlap.
    fs : float
        Sample rate in Hz.
    sections : str, optional
        ``CAUSAL|ANTICAUSAL`` cascade specs (:func:`split_spec`); ``CAUSAL``
        may be ``"auto"`` (grow along :data:`AUTO_SPECS` while a held-out
        phase error improves).  Default :data:`DEFAULT_SPEC`, and
        :data:`LARGER_SPEC` too where it fits badly (the mix decides); or
        :data:`DEFAULT_CAUSAL_SPEC` with ``causal=True``.
    causal : bool
        Real-time mode: causal sections only and a delay of at least 0, so
        the model can run as a plugin; the default (offline) mode filters
        the anti-causal sections backwards over the file.
    method : {"lbfgs", "biasnet"}
        ``"lbfgs"``: the phase fit from many starts (the whole fit: its cost
        does not depend on the signal length).  ``"biasnet"``: train the
        over-parameterised network of Bargum et al.
        (:func:`apftools.biasnet.train_biasnet`) on the audio, causal sections only.
    loss : str
        BiasNet's training loss, a name from :data:`apftools.losses.LOSSES`.
    max_delay_s : float
        Largest bulk delay searched, either sign, in seconds (at most
        :data:`apftools.model.MAX_DELAY_S`); 0.25 s covers linear-phase FIR
        and FFT equalisers (6144 samples, 0.14 s at 44.1 kHz).
    seed : int
        Seeds BiasNet's initialisation and segments.  The L-BFGS fit takes
        no seed: its starts are one fixed design
        (:func:`apftools.fit.fit_frequency`), so its answer is the same on
        every run and machine.
    link : {"auto", "linked", "separate"}
        ``"auto"``: channels whose measured responses agree share one model
        (which keeps the stereo image) and the others get their own
        (:func:`_link`); ``"linked"``: one model for all; ``"separate"``: one
        per channel.
    n_starts : int
        Stage-1 starts: 8 found the same optima as 32 on the real-effects bench, but on synthetic
        in-model cascades (multimodal, interchangeable sections) 8 missed the optimum where 32 reached it.
    max_iter, segment_s
        L-BFGS iterations and segment length (s) of the polish after BiasNet.
    polish : bool
        With ``method="biasnet"``, refine its result with L-BFGS on the audio.
    biasnet : dict, optional
        Keyword arguments for :func:`~apftools.biasnet.train_biasnet`
        (``layer_sizes``, ``shared``, ``learning_rate``, ``max_steps``, ...).
    progress : callable, optional
        ``progress(fraction, label)`` as the work advances.

    Returns
    -------
    Alignment

    Examples
    --------
    >>> import numpy as np, scipy.signal
    >>> from apftools import align
    >>> fs = 48000
    >>> dry = np.random.default_rng(0).standard_normal(2 * fs)
    >>> sos = scipy.signal.butter(2, 200, "highpass", fs=fs, output="sos")
    >>> result = align(dry, scipy.signal.sosfilt(sos, dry), fs)
    >>> headline = result.report["summary"]
    >>> headline["method"], round(headline["before"]["worst_band_db"]), round(headline["after"]["worst_band_db"])
    ('lbfgs', -4, 0)
    """
    start_time = time.perf_counter()
    fs = validate_fs(fs)
    dry2, wet2, dry_channels = channel_layout(dry, wet)
    specs = split_spec(sections, causal)
    for spec in specs:
        if spec not in (None, "auto"):
            Cascade(spec, fs)  # refuse a bad spec before any work
    if method not in METHODS:
        raise ApftoolsValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if link not in LINKS:
        raise ApftoolsValueError(f"link must be one of {', '.join(LINKS)}, got {link!r}")
    if validate_positive(max_delay_s, "max_delay_s") > MAX_DELAY_S:
        raise ApftoolsValueError(f"max_delay_s={max_delay_s!r} exceeds {MAX_DELAY_S:g} s, "
                                 "the longest delay a model holds")
    label = "biasnet+lbfgs" if method == "biasnet" and polish else method
    settings = _Settings(specs, _larger(sections, causal, method), method, causal, loss, max_delay_s, n_starts,
                         max_iter, segment_s, polish, dict(biasnet or {}))
    n, n_dry, n_wet = dry2.shape[-1], np.shape(dry)[-1], np.shape(wet)[-1]
    warnings = []
    if n_wet < n_dry:
        warnings.append(f"the wet ({n_wet} samples) is shorter than the dry ({n_dry}); "
                        f"aligned on the first {n} samples")
    if n < int(0.25 * fs):
        raise ApftoolsValueError(f"signals of {n} samples ({n / fs:.3f} s) are too short; at least 0.25 s is needed")
    progress = progress or (lambda fraction, label: None)
    rng = np.random.default_rng(seed)
    n_channels = dry2.shape[0]
    with blas_single_thread():
        # each channel's bulk delay, once (the unaligned pair's residual delay, the linking, a lone channel's fit),
        # the channels side by side
        estimates = together(*(lambda d=d, w=w: estimate_delay(d, w, fs, max_delay_s) if d.any() and w.any() else None
                               for d, w in zip(dry2, wet2)))
        before = metrics.mix_report(dry2, wet2, fs, residual_delay_samples=metrics.largest_delay(
            [e.delay_samples for e in estimates if e is not None]))
        groups, linking = _link(dry2, wet2, fs, link, estimates)
        models, reports, nothing = [], [], []
        for i, channels in enumerate(groups):
            def group_progress(fraction, label, i=i):
                progress((i + fraction) / len(groups), label)

            d, w = (dry2, wet2) if len(groups) == 1 else (dry2[channels], wet2[channels])  # no copy of one group
            where = f"channel(s) {', '.join(str(c + 1) for c in channels)}: " if n_channels > 1 else ""
            try:
                silent = [name for name, signal in (("dry", d), ("wet", w)) if not signal.any()]
                if silent:
                    raise NothingToAlign(f"nothing to align: the {silent[0]} is silent")
                unaligned = before if len(groups) == 1 else metrics.mix_report(d, w, fs, residual_delay_samples=(
                    metrics.largest_delay([estimates[c].delay_samples for c in channels])))
                fitted, report = _fit_group(d, w, fs, settings, rng, group_progress, unaligned,
                                            estimates[channels[0]] if len(channels) == 1 else None)
            except NothingToAlign as error:
                if len(groups) == 1:
                    raise
                nothing.append(error)
                warnings.append(f"{where}left as they were, {error}")
                models.append(ChannelModel(0.0, 1))
                reports.append(dict(channels=channels, method="none", latency_samples=None, delay_samples=0.0,
                                    polarity=1, polarity_ambiguous=False, spec=None, anticausal_spec=None,
                                    nothing_to_align=str(error), **models[-1].ringing(fs)))
                continue
            bulk = report["bulk_delay_samples"]  # causal mode cannot advance
            names = (label, f"{label} {LARGER_SPEC}", f"{label} {LARGER_SPEC} from the shapes' delays")
            fitted = dict(zip(names, fitted))
            candidates = {**fitted, "none": ChannelModel(0.0, 1),
                          "delay-only": ChannelModel(max(bulk, 0.0) if causal else bulk, report["bulk_polarity"])}
            chosen, score, report["harm_db"], more, rendered = _choose(candidates, fs, d, w, unaligned)
            fit = {names[0]: report["frequency_fit"], **dict.fromkeys(names[1:], report.get("larger_fit"))}.get(chosen)
            if chosen == names[2]:
                fit = {**fit, "phase_loss": fit["alternative_phase_loss"]}
            report["polarity_ambiguous"] = bool(fit) and fitting.polarity_ambiguous(fit["phase_loss"],
                                                                                   fit["other_polarity_loss"])
            if report["polarity_ambiguous"]:
                more.append(f"the polarity is ambiguous: the other one fits the phase about as well (about "
                            f"{fitting.phase_loss_deg(fit['other_polarity_loss']):.1f} against "
                            f"{fitting.phase_loss_deg(fit['phase_loss']):.1f} degrees RMS; the cascade can imitate an "
                            "inversion), so the expected one is kept: GCC-PHAT's, or the sign below the audio band "
                            "where the two disagree")
            warnings += [where + text for text in report.pop("warnings") + more]
            kept = candidates[chosen]  # the report describes what is kept, not what was fitted
            report.update(channels=channels, method=label if chosen in fitted else chosen,
                          delay_samples=float(kept.delay_samples), polarity=int(kept.polarity),
                          spec=kept.cascade and kept.cascade.spec,
                          anticausal_spec=kept.anticausal and kept.anticausal.spec, **kept.ringing(fs))
            models.append(kept)
            reports.append(report)

    if len(nothing) == len(groups):
        raise nothing[0]
    methods = {r["method"] for r in reports}
    overall = next(m for m in (label, "delay-only", "none") if m in methods)
    group_of = [next(g for g, members in enumerate(groups) if c in members) for c in range(n_channels)]
    linked_any = len(groups) == 1 and dry_channels == n_channels
    result = Alignment(fs, models, overall, mode="causal" if causal else "offline",
                       channels=None if linked_any else group_of, dry_channels=None if linked_any else dry_channels)
    # one group: the kept candidate's rendering and score are the whole result's (the same model, the same pair)
    aligned = None if n_channels == 1 else rendered if len(groups) == 1 else result.apply(
        dry2[:dry_channels] if dry_channels == 1 else dry2)
    after = score if len(groups) == 1 else metrics.mix_report(aligned, wet2, fs)
    progress(1.0, "done")
    result.report = {
        "method": overall,
        "mode": result.mode,
        "fs": fs,
        "channels": n_channels,
        "dry_channels": dry_channels,
        "linking": linking,
        "before": before,
        "after": after,
        "harm_db": metrics.band_harm_db(before["window_deficit_db"], after["window_deficit_db"]),
        "groups": reports,
        "per_channel": _per_channel_report(dry2, aligned, wet2, fs, group_of, before, after),
        "warnings": warnings,
        "seconds": time.perf_counter() - start_time,
    }
    result.report["summary"] = summary(result.report)
    return result


def score(dry, wet, fs, alignment=None):
    """The summary's metrics of ``dry`` against ``wet``: as they are, and through ``alignment`` if given.

    Scores an aligned file (or any take) against a wet, or a saved model on
    a pair, without fitting anything: the same metrics :func:`align`
    reports (:func:`summary`'s ``before``, ``after`` and ``per_channel``).

    Parameters
    ----------
    dry, wet : array_like, shape (channels, samples) or (samples,)
        The layouts :func:`align` accepts.
    fs : float
        Sample rate in Hz.
    alignment : Alignment, optional
        A model at ``fs`` to apply to ``dry`` for ``after``; without one,
        ``after`` is None.

    Returns
    -------
    dict
        ``channels``, ``before``, ``after`` and ``per_channel`` (rows of
        ``channel``, ``before``, ``after``).
    """
    fs = validate_fs(fs)
    dry2, wet2, dry_channels = channel_layout(dry, wet)
    if alignment is not None and alignment.fs != fs:
        raise ApftoolsValueError(f"the model is at {alignment.fs:g} Hz, the audio at {fs:g} Hz")
    n_channels, n = dry2.shape
    with blas_single_thread():
        before = metrics.mix_report(dry2, wet2, fs)
        if alignment is None:
            aligned, after = dry2, before
        else:
            aligned = np.atleast_2d(alignment.apply(dry2[:dry_channels] if dry_channels == 1 else dry2))[:, :n]
            after = metrics.mix_report(aligned, wet2, fs)
        report = {"channels": n_channels, "before": before, "after": after,
                  "per_channel": _per_channel_report(dry2, aligned, wet2, fs, [0] * n_channels, before, after)}
    scored = alignment is not None
    rows = [{"channel": row["channel"], "before": row["before"], "after": row["after"] if scored else None}
            for row in report["per_channel"]]
    return {"channels": n_channels, "before": _headline(report, "before"),
            "after": _headline(report, "after") if scored else None, "per_channel": rows if n_channels > 1 else []}


#: Keys of the report's before and after kept in the summary.
_MIX_KEYS = ("mix_deficit_db", "worst_band_db", "worst_band_hz", "worst_band", "phase_error_deg")
#: Keys of every channel group's report kept in the summary.
_GROUP_KEYS = ("channels", "method", "latency_samples", "delay_samples", "polarity", "polarity_ambiguous", "spec",
               "anticausal_spec", "max_group_delay_ms", "ring_time_ms", "pre_ring_ms", "post_ring_ms")


def summary(report):
    """The report's headline, JSON-ready: what ``apftools align`` prints (report.json's ``summary`` adds the files').

    Parameters
    ----------
    report : dict
        An :class:`~apftools.model.Alignment`'s ``report`` from :func:`align`.

    Returns
    -------
    dict
        ``method``, ``mode``, ``fs`` (Hz), ``channels``; ``groups`` (each group's model: delay and latency in
        samples and ms, polarity, specs, ringing); ``before`` and ``after`` (overall 50/50 mix deficit in dB; of
        several channels the worst channel's worst band and phase error, named by ``worst_band_channel`` and
        ``phase_error_channel``, 0-based, since pooled spectra hide single-channel notches and cancel differently
        rotated channels); ``per_channel`` (several channels only) and ``warnings``.
    """
    fs = report["fs"]
    return {
        "method": report["method"],
        "mode": report["mode"],
        "fs": fs,
        "channels": report["channels"],
        "groups": [dict({k: group[k] for k in _GROUP_KEYS}, delay_ms=1000.0 * group["delay_samples"] / fs,
                        latency_ms=None if group["latency_samples"] is None else 1000.0 * group["latency_samples"] / fs)
                   for group in report["groups"]],
        "before": _headline(report, "before"),
        "after": _headline(report, "after"),
        "per_channel": report["per_channel"] if report["channels"] > 1 else [],
        "warnings": list(report["warnings"]),
    }


def _headline(report, side):
    """The summary's metrics before or after: the overall deficit of all channels, and of several channels the
    worst channel's worst band and phase error (``worst_band_channel``, ``phase_error_channel``, 0-based), since
    pooled spectra hide single-channel notches and cancel differently rotated channels."""
    out = {k: report[side][k] for k in _MIX_KEYS}
    rows = [row for row in report["per_channel"] if row[side]["worst_band_db"] is not None]
    if report["channels"] > 1 and rows:
        worst = min(rows, key=lambda row: row[side]["worst_band_db"])
        most = max(rows, key=lambda row: row[side]["phase_error_deg"])
        out.update({k: worst[side][k] for k in ("worst_band_db", "worst_band_hz", "worst_band")},
                   worst_band_channel=worst["channel"], phase_error_deg=most[side]["phase_error_deg"],
                   phase_error_channel=most["channel"])
    return out


def _per_channel_report(dry, aligned, wet, fs, group_of, before, after):
    """Overall deficit, worst band and phase error of every channel before and after, with its group (the whole
    report if mono).  Channels rotated differently cancel in pooled spectra (a widener's +45 and -45 degrees
    pooled to a phase error of 0), so these are each channel's own."""
    if dry.shape[0] == 1:
        return [{"channel": 0, "group": 0, "before": {k: before[k] for k in _MIX_KEYS},
                 "after": {k: after[k] for k in _MIX_KEYS}}]

    def scored(signal, c):
        if not (signal.any() and wet[c].any()):  # a silent side: nothing to score
            return dict.fromkeys(_MIX_KEYS)
        return dict(metrics.mix_summary(signal, wet[c], fs),
                    phase_error_deg=metrics.phase_error_deg(signal, wet[c], fs))

    summaries = together(*(lambda signal=signal, c=c: scored(signal, c)
                           for c in range(len(group_of)) for signal in (dry[c], aligned[c])))
    return [{"channel": c, "group": group, "before": {k: summaries[2 * c][k] for k in _MIX_KEYS},
             "after": {k: summaries[2 * c + 1][k] for k in _MIX_KEYS}} for c, group in enumerate(group_of)]
