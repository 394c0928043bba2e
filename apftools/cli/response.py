"""``apftools response MODEL``: print or plot a model's phase and group delay."""

import click

from .options import channel_label, check_output, echo, force_option, quiet_option, reports_errors


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of phase and group delay instead of printing a table.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the table as JSON (per channel group: frequencies, phase in degrees, group delay, samples).")
@click.option("--without-delay", is_flag=True,
              help="Leave out the bulk delay (it dominates the phase: -6500 degrees at 20 kHz for 36 samples at "
                   "48 kHz); the polarity stays.")
@force_option
@quiet_option
@reports_errors
def response(model, plot_path, as_json, without_delay, force):
    """Print the phase (degrees) and group delay of MODEL at octave frequencies."""
    import json

    import numpy as np

    from ..model import Alignment

    if plot_path is not None:
        check_output(plot_path, (model,), force)
    alignment = Alignment.load(model)
    if plot_path is not None:
        from ..plot import response_figure, save_figure

        save_figure(response_figure(alignment, bulk=not without_delay), plot_path, overwrite=force)
        echo(f"wrote {plot_path}")
        return
    fs = alignment.fs
    freqs = 1000.0 * 2.0 ** np.arange(-5, 5)
    freqs = freqs[freqs < fs / 2]
    if as_json:
        groups = []
        for channel, members in zip(alignment.models, alignment.groups() or [None]):
            phase, delay = channel.response(freqs, fs, not without_delay)
            groups.append({"channels": members, "delay_samples": channel.delay_samples, "polarity": channel.polarity,
                           "spec": channel.cascade and channel.cascade.spec,
                           "anticausal_spec": channel.anticausal and channel.anticausal.spec,
                           "freqs_hz": freqs.tolist(), "phase_deg": np.degrees(phase).tolist(),
                           "group_delay_samples": delay.tolist()})
        click.echo(json.dumps({"fs": fs, "mode": alignment.mode, "groups": groups}, indent=2))
        return
    for channel, members in zip(alignment.models, alignment.groups() or [None]):
        name = "all channels" if members is None else channel_label(members)
        spec = channel.cascade.spec if channel.cascade is not None else "none"
        anticausal = f", anti-causal {channel.anticausal.spec}" if channel.anticausal is not None else ""
        click.echo(f"{name}: delay {channel.delay_samples:+.2f} samples, polarity {channel.polarity:+d}, "
                   f"cascade {spec}{anticausal}, fs {fs:g} Hz, {alignment.mode}"
                   f"{'; below without the bulk delay' if without_delay else ''}")
        phase, delay = channel.response(freqs, fs, not without_delay)
        phase = np.degrees(phase)
        click.echo(f"{'Hz':>8} {'phase deg':>10} {'delay ms':>9} {'samples':>9}")
        for f, p, d in zip(freqs, phase, delay):
            click.echo(f"{f:8.0f} {p:10.1f} {1000 * d / fs:9.3f} {d:9.1f}")
