r"""Automatic dry/wet alignment: bulk delay, polarity and an allpass cascade.

:func:`align` estimates how an effect delays and phase-shifts its input and
returns an :class:`Alignment` that renders a dry signal in phase with the wet:

1. bulk delay and polarity by GCC-PHAT (:func:`apftools.delay.estimate_delay`);
2. the dry-to-wet transfer function and coherence (:mod:`apftools.response`);
3. the cascade's phase (plus the fractional remainder of the delay) fitted to
   the measured phase from many starts, for both polarities
   (:func:`apftools.fit.fit_frequency`);
4. refinement on the audio with exact gradients (:func:`apftools.fit.fit_time`);
5. metrics before and after (:func:`apftools.metrics.mix_report`); if the
   model makes the 50/50 mix worse than delay and polarity alone, or than
   nothing, the better of those is kept and the report says so.

Reference: Bargum et al., "Differentiable all-pass filters for phase
response estimation and automatic signal alignment", DAFx 2023.
"""

import time

import numpy as np

from . import fit as fitting
from . import metrics
from ._threads import blas_single_thread
from ._validate import validate_fs, validate_pair, validate_positive
from .biasnet import train_biasnet
from .cascade import Cascade
from .delay import apply_delay, estimate_delay
from .errors import ApftoolsValueError
from .model import MAX_DELAY_S, Alignment, ChannelModel
from .response import log_grid, transfer_function

#: Fitters: L-BFGS (phase fit from many starts, then audio) or BiasNet (Bargum et al.).
METHODS = ("lbfgs", "biasnet")
#: Specs tried, in order, by ``sections="auto"``.
AUTO_SPECS = ("1x2w", "2x2w", "3x2w", "3x2w,1w", "4x2w,1w", "5x2w,1w", "6x2w,1w", "8x2w,1w", "10x2w,1w")
#: Below this power-weighted coherence a static allpass cannot explain the wet.
MIN_COHERENCE = 0.9
#: Phase change between the two halves of the signal (degrees, weighted RMS) flagged as time-varying.
MAX_PHASE_DRIFT_DEG = 20.0


def _phase_drift_deg(dry, wet, fs):
    """Weighted RMS phase change of the measured response between the two halves of the signal."""
    half = dry.shape[-1] // 2
    first = transfer_function(dry[..., :half], wet[..., :half], fs)
    second = transfer_function(dry[..., half:], wet[..., half:], fs, nperseg=len(first.freqs_hz) * 2 - 2)
    band = (first.freqs_hz >= 20.0) & (first.freqs_hz <= min(20000.0, 0.45 * fs))
    weight = (np.minimum(first.coherence, second.coherence) * np.sqrt(first.power * second.power))[band]
    drift = np.angle(first.h[band] * np.conj(second.h[band]))
    return float(np.degrees(np.sqrt(np.sum(weight * drift**2) / max(np.sum(weight), 1e-300))))


def _select_order(grid, n_starts, rng, notes):
    """Grow the cascade along AUTO_SPECS while the held-out phase loss improves by 2% or more.

    Stage 1 is fitted on every other frequency of ``grid`` and scored on the rest.
    """
    odd = np.arange(len(grid.freqs_hz)) % 2 == 1
    train, held_out = grid.select(~odd), grid.select(odd)
    best_spec, best_score = None, np.inf
    for spec in AUTO_SPECS:
        cascade = Cascade(spec, grid.fs)
        result = fitting.fit_frequency(cascade, train, n_starts=n_starts, rng=rng)
        score = fitting.phase_loss(cascade, held_out, result.theta, result.delay_samples, result.polarity)
        notes.append({"spec": spec, "held_out_phase_loss": float(score)})
        if score > 0.98 * best_score - 1e-6:
            break
        best_spec, best_score = spec, score
    return best_spec


def _fit_group(dry, wet, fs, spec, settings, rng, progress):
    """Delay, polarity and cascade for one group of channels; returns (model, report entries)."""
    report = {"warnings": []}
    estimate = estimate_delay(dry, wet, fs, settings["max_delay_s"])
    report["bulk_delay_samples"] = float(estimate.delay_samples)
    report["delay_confidence"] = float(estimate.confidence)
    if estimate.ambiguous:
        report["warnings"].append(
            f"the bulk delay estimate ({estimate.delay_samples:.2f} samples) is ambiguous "
            f"(peak prominence {estimate.confidence:.2f}); check --max-delay-ms or the material")
    progress(0.1, "delay")
    shifted = estimate.polarity * apply_delay(dry, estimate.delay_samples)
    grid = log_grid(transfer_function(shifted, wet, fs))
    progress(0.15, "response")
    if spec == "auto":
        report["order_selection"] = []
        spec = _select_order(grid, max(4, settings["n_starts"] // 2), rng, report["order_selection"])
    cascade = Cascade(spec, fs)
    # stage 1 settles the residual delay and the polarity for either method: no allpass can undo
    # a wrong polarity or a bulk delay estimated too long (GCC-PHAT includes the cascade's own delay)
    stage1 = fitting.fit_frequency(cascade, grid, n_starts=settings["n_starts"], rng=rng)
    polarity = estimate.polarity * stage1.polarity
    delay = estimate.delay_samples + stage1.delay_samples
    theta = stage1.theta
    report["frequency_fit"] = {"phase_loss": stage1.loss, "shape_losses": stage1.shape_losses}
    progress(0.4, "phase fit")
    aligned = polarity * apply_delay(dry, delay)
    if settings["method"] == "biasnet":  # the network starts afresh; only stage 1's delay and polarity are kept
        seconds = dry.shape[-1] / fs
        options = {"held_out_s": min(1.0, seconds / 4), "segment_s": min(0.5, seconds / 4), **settings["biasnet"]}
        steps = options.get("max_steps", train_biasnet.__kwdefaults__["max_steps"])

        def on_step(step, value):
            progress(0.4 + 0.4 * step / steps, f"biasnet {value:.3g}")

        trained = train_biasnet(cascade, aligned, wet, fs, loss=settings["loss"], rng=rng, callback=on_step,
                                **options)
        theta = trained.theta
        report["biasnet"] = {"held_out_loss": trained.loss, "steps": trained.steps, "seconds": trained.seconds,
                             "network_params": trained.network_params_count,
                             "held_out_history": trained.held_out_history}
    if settings["method"] == "lbfgs" or settings["polish"]:
        history = []

        def on_iteration(value):
            history.append(value)
            progress(min(0.9, 0.4 + 0.5 * len(history) / max(settings["max_iter"], 1)), f"refine {value:.3g}")

        stage2 = fitting.fit_time(cascade, theta, aligned, wet, fs, loss=settings["loss"], max_iter=settings["max_iter"],
                                  segment_s=settings["segment_s"], callback=on_iteration)
        theta = stage2.theta
        report["time_fit"] = {"loss": settings["loss"], "history": stage2.history,
                              "segment_samples": list(stage2.segment)}
    report.update(delay_samples=float(delay), polarity=int(polarity), spec=cascade.spec)
    return ChannelModel(delay, polarity, cascade, theta), report


def align(dry, wet, fs, *, sections="3x2w,1w", method="lbfgs", loss="mse", max_delay_s=0.1, seed=0,
          per_channel=False, n_starts=32, max_iter=60, segment_s=4.0, polish=False, biasnet=None, progress=None):
    """Align ``dry`` with ``wet``: estimate delay, polarity and the effect's phase response.

    Parameters
    ----------
    dry, wet : array_like, shape (n_samples,) or (n_channels, n_samples)
        The effect's input and output at the same sample rate and channel
        count.  A wet shorter than the dry is aligned on the overlap.
    fs : float
        Sample rate in Hz.
    sections : str
        Cascade spec (e.g. ``"3x2w,1w"``) or ``"auto"`` (grow along
        :data:`AUTO_SPECS` while a held-out phase error improves).
    method : {"lbfgs", "biasnet"}
        ``"lbfgs"``: phase fit from many starts, then refinement on the audio.
        ``"biasnet"``: train the over-parameterised network of Bargum et al.
        (:func:`apftools.biasnet.train_biasnet`) on the audio.
    loss : str
        Time-domain loss, a name from :data:`apftools.losses.LOSSES`.
    max_delay_s : float
        Largest bulk delay searched, either sign, in seconds (at most
        :data:`apftools.model.MAX_DELAY_S`).
    seed : int
        Seeds every random start.
    per_channel : bool
        Fit each channel separately instead of one model for all (which keeps
        the stereo image).
    n_starts, max_iter, segment_s
        Stage-1 starts, stage-2 L-BFGS iterations, stage-2 segment length (s).
    polish : bool
        With ``method="biasnet"``, refine its result with the stage-2 L-BFGS.
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
    >>> result = align(dry, scipy.signal.sosfilt(sos, dry), fs, sections="2x2w")
    >>> result.report["after"]["mix_deficit_db"] > result.report["before"]["mix_deficit_db"]
    True
    """
    start_time = time.perf_counter()
    fs = validate_fs(fs)
    dry2, wet2 = validate_pair(dry, wet)
    if sections != "auto":
        Cascade(sections, fs)  # refuse a bad spec before any work
    if method not in METHODS:
        raise ApftoolsValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if validate_positive(max_delay_s, "max_delay_s") > MAX_DELAY_S:
        raise ApftoolsValueError(f"max_delay_s={max_delay_s!r} exceeds {MAX_DELAY_S:g} s, the longest delay a model holds")
    label = "biasnet+lbfgs" if method == "biasnet" and polish else method
    settings = {"method": method, "loss": loss, "max_delay_s": max_delay_s, "n_starts": n_starts,
                "max_iter": max_iter, "segment_s": segment_s, "polish": polish, "biasnet": dict(biasnet or {})}
    n, n_dry, n_wet = dry2.shape[-1], np.shape(dry)[-1], np.shape(wet)[-1]
    warnings = []
    if n_wet < n_dry:
        warnings.append(f"the wet ({n_wet} samples) is shorter than the dry ({n_dry}); aligned on the first {n} samples")
    if n < int(0.25 * fs):
        raise ApftoolsValueError(f"signals of {n} samples ({n / fs:.3f} s) are too short; at least 0.25 s is needed")
    progress = progress or (lambda fraction, label: None)
    rng = np.random.default_rng(seed)
    groups = [[c] for c in range(dry2.shape[0])] if per_channel else [list(range(dry2.shape[0]))]

    before = metrics.mix_report(dry2, wet2, fs)
    coherence = metrics.coherence_summary(dry2, wet2, fs)
    drift = _phase_drift_deg(dry2, wet2, fs)
    if coherence < MIN_COHERENCE:
        channel_coherence = [metrics.coherence_summary(d, w, fs) for d, w in zip(dry2, wet2)]
        if not per_channel and len(groups) == 1 and len(dry2) > 1 and min(channel_coherence) >= MIN_COHERENCE:
            warnings.append(f"the channels respond differently (coherence {coherence:.2f} over all channels, "
                            f"at least {min(channel_coherence):.2f} per channel); try --per-channel")
        else:
            warnings.append(f"low coherence between dry and wet ({coherence:.2f} < {MIN_COHERENCE}): noise, "
                            "distortion or a time-varying effect that a static allpass cannot fully explain")
    if drift > MAX_PHASE_DRIFT_DEG:
        warnings.append(f"the effect's phase response changes over time ({drift:.0f} degrees between the halves): "
                        "a time-varying effect (phaser, chorus?) that a static allpass cannot follow")

    with blas_single_thread():
        fitted = []
        for i, channels in enumerate(groups):
            def group_progress(fraction, label, i=i):
                progress((i + fraction) / len(groups), label)

            model, report = _fit_group(dry2[channels], wet2[channels], fs, sections, settings, rng, group_progress)
            fitted.append((model, report))
            warnings += report.pop("warnings")

    # keep the fitted model unless delay and polarity alone, or nothing at all, mix better
    candidates = {
        label: [m for m, _ in fitted],
        "delay-only": [ChannelModel(m.delay_samples, m.polarity) for m, _ in fitted],
        "none": [ChannelModel(0.0, 1) for _ in groups],
    }
    scores = {name: metrics.mix_report(Alignment(fs, models).apply(dry2), wet2, fs) if name != "none" else before
              for name, models in candidates.items()}
    best = max(score["mix_deficit_db"] for score in scores.values())
    chosen = next(name for name in candidates if scores[name]["mix_deficit_db"] >= best)
    if chosen != label:
        warnings.append(f"the fitted allpass made the 50/50 mix worse than {chosen!r} "
                        f"({scores[label]['mix_deficit_db']:.2f} vs {best:.2f} dB); keeping {chosen!r}")
    after, models = scores[chosen], candidates[chosen]
    progress(1.0, "done")
    report = {
        "method": chosen,
        "fs": fs,
        "channels": dry2.shape[0],
        "per_channel": per_channel,
        "coherence": coherence,
        "phase_drift_deg": drift,
        "before": before,
        "after": after,
        "groups": [r for _, r in fitted],
        "warnings": warnings,
        "seconds": time.perf_counter() - start_time,
    }
    return Alignment(fs, models, chosen, report)
