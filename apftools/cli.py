"""The ``apftools`` command line: parse, call the library, echo."""

import click

from . import __version__


@click.group()
@click.version_option(__version__, prog_name="apftools")
def main():
    """Estimate the phase response of audio effects and align dry with wet signals."""


@main.command()
@click.option("--spec", default="3x2w,1w", show_default=True, help="Cascade spec of the generated effect and the fit.")
@click.option("--fs", default=48000.0, show_default=True, help="Sample rate in Hz.")
@click.option("--seconds", default=1.0, show_default=True, help="Length of the generated dry signal.")
@click.option("--starts", default=8, show_default=True, help="Random L-BFGS starts.")
@click.option("--seed", default=0, show_default=True, help="Seed for the effect, the signal and the starts.")
def demo(spec, fs, seconds, starts, seed):
    """Recover a random allpass cascade's phase response from generated dry/wet audio."""
    from .demo import run_demo
    from .errors import ApftoolsError

    try:
        result = run_demo(spec, fs, seconds, starts, seed)
    except ApftoolsError as error:
        raise click.UsageError(str(error)) from error
    click.echo(f"effect: random '{result['spec']}' cascade at {result['fs']:g} Hz, {seconds:g} s of white noise")
    click.echo(f"engine: one sosfilt forward {result['sosfilt_ms']:.2f} ms, "
               f"one loss+gradient {result['loss_grad_ms']:.2f} ms "
               f"({result['loss_grad_ms'] / result['sosfilt_ms']:.1f}x)")
    click.echo(f"fit:    {result['starts_at_optimum']}/{result['n_starts']} L-BFGS starts reached the optimum "
               f"in {result['fit_s']:.1f} s; best ESR {result['esr_db']:.1f} dB, "
               f"phase error {result['phase_error_deg']:.3g} deg RMS (20 Hz - 20 kHz)")
    click.echo("phase response (degrees):")
    click.echo("  " + "".join(f"{f:>8.0f}" for f in result["octaves_hz"]) + "  Hz")
    click.echo("  " + "".join(f"{p:8.1f}" for p in result["true_phase_deg"]) + "  true")
    click.echo("  " + "".join(f"{p:8.1f}" for p in result["fitted_phase_deg"]) + "  fitted")
