"""Figures for reports: what the alignment did, where, at which mix ratios, and at what cost in ringing.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas,
so no display and no global pyplot state are involved.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._validate import channel_layout
from .bands import audio_band
from .delay import apply_delay
from .metrics import mix_summary
from .model import RING_LEVEL
from .response import log_grid, transfer_function

#: Measured bins with less coherence than this are drawn grey: too little signal (or too much noise,
#: distortion or modulation) for their phase to mean anything.
COHERENT = 0.5


def _decorate(ax, ylabel):
    ax.set_xscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


#: Colours that mean one thing in every panel: the unaligned mix and the aligned one ...
BEFORE, AFTER = "tab:red", "tab:blue"
#: ... and one per channel group (measured and fitted, phase, group delay and impulse response).
GROUP_COLOURS = ("tab:green", "tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:pink", "tab:gray")


def _group_colour(g):
    """Channel group ``g``'s colour (:data:`GROUP_COLOURS`, repeating)."""
    return GROUP_COLOURS[g % len(GROUP_COLOURS)]


def report_figure(alignment, dry, wet, title=None):
    """Five panels: phase and group delay (measured vs fitted), mix per band, mix per wet ratio, impulse response.

    (a) The phase of the wet relative to the dry after the model's bulk
    delay and polarity (what the cascades have to match), and the fitted
    cascades' phase; the measured phase is drawn within 180 degrees of the
    fitted one (it is known modulo 360 degrees), grey where the coherence
    is below :data:`COHERENT`.  (b) The same as group delay in ms, the
    model's largest marked.  (c) The 50/50 mix deficit per third octave
    before and after, with IEC nominal band labels and a marker on every
    value; of several channels, each band's worst channel (the summary's
    worst band is a channel's, not the pooled mix's).  (d) The mix deficit
    against the wet ratio of a dry/wet knob, overall and in the worst band.
    (e) The aligning filter's impulse response (cascades only, bulk delay
    excluded) in dB, with the 60 dB ring times before and after the
    impulse.  Before and after are :data:`BEFORE` and :data:`AFTER` in
    every panel; channel groups take :data:`GROUP_COLOURS`.  ``title``
    heads the figure (the files, rate and result).
    """
    fs = alignment.fs
    report = alignment.report  # its before and after, or (a model loaded from a file) measured here
    dry, wet, _ = channel_layout(dry, wet)  # the pairs the model was fitted on
    aligned = np.atleast_2d(alignment.apply(dry[:1] if alignment.dry_channels == 1 else dry))[:, :dry.shape[-1]]
    if "after" in report:
        before, after = report["before"], report["after"]
    else:
        before, after = mix_summary(dry, wet, fs), mix_summary(aligned, wet, fs)
    figure = Figure(figsize=(12, 12.5 if title else 12), layout="constrained")
    if title:
        figure.suptitle(title)
    grid = figure.add_gridspec(3, 2)
    phase_ax, delay_ax = figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[0, 1])
    bands_ax = figure.add_subplot(grid[1, :])
    ratio_ax, impulse_ax = figure.add_subplot(grid[2, 0]), figure.add_subplot(grid[2, 1])
    groups = alignment.groups() or [list(range(dry.shape[0]))]
    span = 1.0  # ms either side of the impulse that panel (e) shows, at least
    for g, (model, channels) in enumerate(zip(alignment.models, groups)):
        colour = _group_colour(g)
        label = "" if len(groups) == 1 else f" ch{'+'.join(str(c + 1) for c in channels)}"
        if not (dry[channels].any() and wet[channels].any()):  # a silent side: nothing measured, nothing fitted
            impulse_ax.plot([], [], color=colour, label=f"nothing to align{label}: a side is silent")
            continue
        shifted = model.polarity * apply_delay(dry[channels], model.delay_samples)
        measured = log_grid(transfer_function(shifted, wet[channels], fs))
        freqs, dense = measured.freqs_hz, np.geomspace(*audio_band(fs), 1024)  # dense: as ChannelModel.ringing
        phase = model.allpass_response(freqs)[0]
        near = phase + np.angle(measured.h * np.exp(-1j * phase))  # the measured phase within pi of the fit
        coherent = measured.coherence >= COHERENT
        fitted_phase, fitted_tau = model.allpass_response(dense)
        for ax, values, fitted, scale in ((phase_ax, near, fitted_phase, 180 / np.pi),
                                          (delay_ax, measured.group_delay, fitted_tau, 1000 / fs)):
            ax.plot(freqs[coherent], scale * values[coherent], ".", ms=3, color=colour, alpha=0.5,
                    label=f"measured{label}")
            ax.plot(freqs[~coherent], scale * values[~coherent], ".", ms=3, color="0.8",
                    label=f"measured, coherence < {COHERENT:g}" if ax is phase_ax and g == 0 else None)
            ax.plot(dense, scale * fitted, lw=2, color=colour, label=f"fitted allpass{label}")
        peak = int(np.argmax(np.abs(fitted_tau)))
        delay_ax.annotate(f"largest {1000 * fitted_tau[peak] / fs:.2f} ms", (dense[peak], 1000 * fitted_tau[peak] / fs),
                          xytext=(12, -12 if fitted_tau[peak] > 0 else 12), textcoords="offset points",
                          va="top" if fitted_tau[peak] > 0 else "bottom", arrowprops={"arrowstyle": "->"})  # inside
        if model.cascade is None and model.anticausal is None:
            impulse_ax.plot([], [], color=colour, label=f"no allpass kept{label}: delay and polarity only")
            continue
        times, h = model.impulse_response()
        magnitude = np.abs(h) / np.max(np.abs(h))
        ring = model.ringing(fs)
        impulse_ax.plot(1000 * times / fs, 20 * np.log10(np.maximum(magnitude, 1e-6)), lw=1, color=colour,
                        label=f"impulse response{label}: rings {ring['pre_ring_ms']:.1f} ms before, "
                              f"{ring['post_ring_ms']:.1f} ms after")
        for edge_ms in (-ring["pre_ring_ms"], ring["post_ring_ms"]):
            if edge_ms:
                impulse_ax.axvline(edge_ms, color=colour, ls=":", lw=1)
        span = max(span, ring["pre_ring_ms"], ring["post_ring_ms"])
    phase_ax.set_title("(a) phase of the wet relative to the delayed, polarity-corrected dry")
    _decorate(phase_ax, "phase (degrees)")
    phase_ax.legend(loc="best", fontsize=8)
    delay_ax.set_title("(b) group delay beyond the bulk delay")
    _decorate(delay_ax, "group delay (ms)")
    delay_ax.legend(loc="best", fontsize=8)

    several = dry.shape[0] > 1
    positions = np.arange(len(before["bands_hz"]))
    for signal, values, name, offset, marker, colour in ((dry, before, "before", -0.2, "s", BEFORE),
                                                         (aligned, after, "after", 0.2, "o", AFTER)):
        if several:  # each band's worst channel, as the summary's worst band is a channel's
            rows = np.array([mix_summary(signal[c], wet[c], fs)["band_deficit_db"] if signal[c].any() and wet[c].any()
                             else [None] * len(positions) for c in range(dry.shape[0])], dtype=float)
            deficit = np.min(np.where(np.isnan(rows), np.inf, rows), axis=0)  # bands without energy stay NaN
            deficit[np.isinf(deficit)] = np.nan
        else:
            deficit = np.array(values["band_deficit_db"], dtype=float)  # None -> NaN: bands without energy
        bands_ax.bar(positions + offset, deficit, 0.4, alpha=0.5, color=colour,
                     label=f"{name}{', worst channel' if several else ''}")
        # a marker on every value, so a band at 0 dB (a good result) still shows
        bands_ax.plot(positions + offset, deficit, marker, ms=4, ls="none", color=colour)
    bands_ax.set_xticks(positions, before["band_labels"], rotation=90, fontsize=8)
    bands_ax.set_xlim(-0.7, len(positions) - 0.3)
    bands_ax.set_xlabel("third-octave band (IEC 61260-1 nominal centre)")
    bands_ax.set_ylabel("50/50 mix deficit (dB)")
    bands_ax.set_title("(c) level lost by a 50/50 dry/wet mix, per band (0 dB = coherent sum)"
                       + (", in each band's worst channel" if several else ""))
    bands_ax.axhline(0.0, color="k", lw=0.8)
    bands_ax.grid(True, axis="y", alpha=0.3)
    bands_ax.legend(loc="lower right")

    for values, name, colour in ((before, "before", BEFORE), (after, "after", AFTER)):
        curve = values["mix_ratio_curve"]
        ratio = 100 * np.array(curve["wet_ratio"])
        ratio_ax.plot(ratio, curve["mix_deficit_db"], "o-", ms=3, color=colour, label=f"{name}, overall")
        ratio_ax.plot(ratio, np.array(curve["worst_band_db"], dtype=float), "--", color=colour,
                      label=f"{name}, worst band")
    ratio_ax.set_xlabel("wet ratio (%)")
    ratio_ax.set_ylabel("mix deficit (dB)")
    ratio_ax.set_title("(d) the dry/wet knob: mix deficit at every wet ratio")
    ratio_ax.grid(True, alpha=0.3)
    ratio_ax.legend(loc="best", fontsize=8)

    impulse_ax.axhline(20 * np.log10(RING_LEVEL), color="k", lw=0.8, ls="--", label="-60 dB (ring time)")
    impulse_ax.set_ylim(-100, 5)
    impulse_ax.set_xlim(-1.25 * span, 1.25 * span)
    impulse_ax.set_xlabel("time (ms; before 0: the anti-causal part)")
    impulse_ax.set_ylabel("level re peak (dB)")
    impulse_ax.set_title("(e) the aligning filter's impulse response (bulk delay excluded)")
    impulse_ax.grid(True, alpha=0.3)
    impulse_ax.legend(loc="upper right", fontsize=8)
    return figure


def response_figure(alignment, n_points=512, bulk=True):
    """Phase and group delay of a model, the bulk delay included unless ``bulk`` is False."""
    fs = alignment.fs
    freqs = np.geomspace(10.0, 0.49 * fs, n_points)
    figure = Figure(figsize=(9, 6.5), layout="constrained")
    phase_ax, delay_ax = figure.subplots(2, 1)
    for g, (model, members) in enumerate(zip(alignment.models, alignment.groups() or [None])):
        label = "all channels" if members is None else f"channel {'+'.join(str(c + 1) for c in members)}"
        if not bulk:
            label += f" (beyond its {model.delay_samples:+.2f} samples)"
        phase, tau = model.response(freqs, fs, bulk)
        colour = _group_colour(g)
        phase_ax.plot(freqs, np.degrees(phase), color=colour, label=label)
        delay_ax.plot(freqs, 1000 * tau / fs, color=colour, label=label)
    _decorate(phase_ax, "phase (degrees)")
    phase_ax.set_title(f"model phase response (fs = {fs:g} Hz){'' if bulk else ', bulk delay excluded'}")
    phase_ax.legend()
    _decorate(delay_ax, "group delay (ms)")
    return figure


def save_figure(figure, path, *, overwrite=False):
    """Write ``figure`` as PNG atomically (see :func:`apftools.io.atomic_write`)."""
    from .io import atomic_write

    with atomic_write(path, overwrite=overwrite) as temporary:
        FigureCanvasAgg(figure)
        figure.savefig(temporary, format="png", dpi=110)


def measurement_figure(measurements, alignment):
    """Four panels from a sweep measurement (:func:`apftools.sweep.measure`), one curve per output channel.

    (a) magnitude (dB); (b) phase after the latency and polarity, measured
    (within 180 degrees of the fit), its excess (allpass) part (where the
    magnitude is within 60 dB of its peak), and the fitted model's; (c)
    group delay beyond the latency (ms), measured and fitted; (d) the level
    of every harmonic order re the fundamental, against the input frequency,
    above the noise floor (the SNR below the fundamental; below it a level
    is noise or rounding, not a harmonic).
    """
    from .response import measured_group_delay

    fs = alignment.fs
    figure = Figure(figsize=(12, 9), layout="constrained")
    (magnitude_ax, phase_ax), (delay_ax, harmonic_ax) = figure.subplots(2, 2)
    low, high = audio_band(fs)
    for c, (measured, model) in enumerate(zip(measurements, alignment.models)):
        label = "" if len(measurements) == 1 else f" ch{c + 1}"
        # about 600 log-spaced bins of the audio band (the measurement's grid is uniform, under 1 Hz apart)
        inside = np.unique(np.searchsorted(measured.freqs_hz, np.geomspace(low, high, 600)))
        freqs, h = measured.freqs_hz[inside], measured.h[inside]
        omega = 2 * np.pi * freqs / fs
        latency, flip = measured.latency_samples, np.pi if measured.polarity < 0 else 0.0
        magnitude_ax.plot(freqs, 20 * np.log10(np.maximum(np.abs(h), 1e-12)), label=f"measured{label}")
        fitted_phase, fitted_tau = model.response(freqs, fs)
        fitted_phase = fitted_phase + omega * latency - flip
        near = fitted_phase + np.angle(measured.polarity * h * np.exp(1j * (omega * latency - fitted_phase)))
        phase_ax.plot(freqs, np.degrees(near), ".", ms=2, label=f"measured{label}")
        phase_ax.plot(freqs, np.degrees(fitted_phase), lw=2, label=f"fitted model{label}")
        # the excess phase where the magnitude is within 60 dB of its peak (the cepstrum needs the level)
        excess = np.where(np.abs(h) >= 1e-3 * np.max(np.abs(h)), measured.excess_phase[inside] + omega * latency - flip,
                          np.nan)
        phase_ax.plot(freqs, np.degrees(np.angle(np.exp(1j * excess))), "--", lw=1,
                      label=f"excess (allpass) part{label}")
        tau = measured_group_delay(measured.freqs_hz, measured.h, fs)[inside] - latency
        delay_ax.plot(freqs, 1000 * tau / fs, ".", ms=2, label=f"measured{label}")
        delay_ax.plot(freqs, 1000 * (fitted_tau - latency) / fs, lw=2, label=f"fitted model{label}")
        floor = -measured.snr_db  # harmonics below the noise floor are not measured: noise, or rounding
        for order, (inputs, level) in measured.harmonic_curves.items():
            if np.any(level > floor):
                harmonic_ax.plot(inputs, np.where(level > floor, level, np.nan), label=f"H{order}{label}")
        harmonic_ax.axhline(floor, color=_group_colour(c), ls=":", lw=1,
                            label=f"noise floor{label} (SNR {measured.snr_db:.0f} dB)")
    for ax, title, ylabel in ((magnitude_ax, "(a) magnitude", "level (dB)"),
                              (phase_ax, "(b) phase after the latency and polarity", "phase (degrees)"),
                              (delay_ax, "(c) group delay beyond the latency", "group delay (ms)"),
                              (harmonic_ax, "(d) harmonics re the fundamental", "level (dB)")):
        _decorate(ax, ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
    harmonic_ax.set_xlabel("input frequency (Hz)")
    return figure
