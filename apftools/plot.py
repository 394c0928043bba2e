"""Figures for reports: measured vs fitted phase and group delay, mix before/after.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas,
so no display and no global pyplot state are involved.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._validate import channel_layout
from .delay import apply_delay
from .metrics import band_mix_deficit_db
from .response import log_grid, transfer_function


def _decorate(ax, ylabel):
    ax.set_xscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


def report_figure(alignment, dry, wet):
    """Three panels: phase and group delay (measured vs fitted), 1/3-octave mix deficit before/after.

    The measured curves are those of the wet relative to the dry after the
    model's bulk delay and polarity, i.e. what the allpass cascade has to
    match.
    """
    fs = alignment.fs
    aligned = np.atleast_2d(alignment.apply(dry))
    dry, wet, _ = channel_layout(dry, wet)  # the pairs the model was fitted on
    aligned = aligned[:, :dry.shape[-1]]
    figure = Figure(figsize=(9, 10), layout="constrained")
    phase_ax, delay_ax, mix_ax = figure.subplots(3, 1)
    groups = alignment.groups() or [list(range(dry.shape[0]))]
    for model, channels in zip(alignment.models, groups):
        label = "" if len(groups) == 1 else f" ch{'+'.join(str(c + 1) for c in channels)}"
        shifted = model.polarity * apply_delay(dry[channels], model.delay_samples)
        measured = log_grid(transfer_function(shifted, wet[channels], fs))
        phase, tau = model.allpass_response(measured.freqs_hz)
        measured_phase = np.unwrap(np.angle(measured.h))
        # the measured phase is known modulo 2 pi: shift it onto the model at the strongest frequency
        anchor = np.argmax(measured.weights)
        measured_phase += 2 * np.pi * np.round((phase[anchor] - measured_phase[anchor]) / (2 * np.pi))
        phase_ax.plot(measured.freqs_hz, np.degrees(measured_phase), ".", ms=3, alpha=0.5,
                      label=f"measured{label}")
        phase_ax.plot(measured.freqs_hz, np.degrees(phase), lw=2, label=f"fitted allpass{label}")
        measured_tau = measured.group_delay
        delay_ax.plot(measured.freqs_hz, 1000 * measured_tau / fs, ".", ms=3, alpha=0.5, label=f"measured{label}")
        delay_ax.plot(measured.freqs_hz, 1000 * tau / fs, lw=2, label=f"fitted allpass{label}")
    phase_ax.set_title("phase of the wet relative to the delayed, polarity-corrected dry")
    _decorate(phase_ax, "phase (degrees)")
    phase_ax.legend(loc="lower left")
    delay_ax.set_title("group delay beyond the bulk delay")
    _decorate(delay_ax, "group delay (ms)")
    delay_ax.legend(loc="upper right")

    centres, before = band_mix_deficit_db(dry, wet, fs)
    _, after = band_mix_deficit_db(aligned, wet, fs)
    width = 0.35
    positions = np.arange(len(centres))
    mix_ax.bar(positions - width / 2, before, width, label="before")
    mix_ax.bar(positions + width / 2, after, width, label="after")
    step = max(1, len(centres) // 12)
    mix_ax.set_xticks(positions[::step], [f"{c:.0f}" if c < 1000 else f"{c / 1000:.1f}k" for c in centres[::step]])
    mix_ax.set_xlabel("third-octave band (Hz)")
    mix_ax.set_ylabel("50/50 mix deficit (dB)")
    mix_ax.set_title("level lost by a 50/50 dry/wet mix (0 dB = coherent sum)")
    mix_ax.axhline(0.0, color="k", lw=0.8)
    mix_ax.grid(True, axis="y", alpha=0.3)
    mix_ax.legend(loc="lower right")
    return figure


def response_figure(alignment, n_points=512):
    """Phase and group delay of a model (bulk delay included in the group delay)."""
    fs = alignment.fs
    freqs = np.geomspace(10.0, 0.49 * fs, n_points)
    figure = Figure(figsize=(9, 6.5), layout="constrained")
    phase_ax, delay_ax = figure.subplots(2, 1)
    for model, members in zip(alignment.models, alignment.groups() or [None]):
        label = "all channels" if members is None else f"channel {'+'.join(str(c + 1) for c in members)}"
        phase, tau = model.response(freqs, fs)
        phase_ax.plot(freqs, np.degrees(phase), label=label)
        delay_ax.plot(freqs, 1000 * tau / fs, label=label)
    _decorate(phase_ax, "phase (degrees)")
    phase_ax.set_title(f"model phase response (fs = {fs:g} Hz)")
    phase_ax.legend()
    _decorate(delay_ax, "group delay (ms)")
    return figure


def save_figure(figure, path, *, overwrite=False):
    """Write ``figure`` as PNG atomically (see :func:`apftools.io.atomic_write`)."""
    from .io import atomic_write

    with atomic_write(path, overwrite=overwrite) as temporary:
        FigureCanvasAgg(figure)
        figure.savefig(temporary, format="png", dpi=110)
