"""``apftools sweep -o SWEEP.wav --fs FS``: write an exponential sine sweep and its description."""

import os

import click

from .options import check_output, echo, force_option, quiet_option, reports_errors


def sidecar(path):
    """The description beside a sweep file: ``sweep.wav`` -> ``sweep.json``."""
    return os.path.splitext(path)[0] + ".json"


@click.command()
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The sweep file (.wav, 32-bit float); its description goes beside it as .json.")
@click.option("--fs", required=True, type=click.FloatRange(min=0, min_open=True), help="Sample rate (Hz).")
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Duration of one sweep.")
@click.option("--f-start", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Start frequency (Hz).")
@click.option("--f-stop", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Stop frequency (Hz)  [default: FS/2]")
@click.option("--level-dbfs", default=-12.0, show_default=True, type=click.FloatRange(-120, 0),
              help="Peak level (dB re full scale).")
@click.option("--channels", default=1, show_default=True, type=click.IntRange(1, 1024),
              help="The same sweep on this many channels (a mono sweep measures any effect).")
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1, 100),
              help="Periods in the file; 'measure' averages them and checks they agree.")
@click.option("--max-latency-ms", default=500.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest latency of the effect the silence after each sweep leaves room for.")
@force_option
@quiet_option
@reports_errors
def sweep(output, fs, seconds, f_start, f_stop, level_dbfs, channels, repeats, max_latency_ms, force):
    """Write an exponential sine sweep to play through an effect, for 'apftools measure'."""
    from ..io import write_audio, write_json
    from ..sweep import SweepSpec

    description = sidecar(output)
    for path in (output, description):
        check_output(path, (), force)
    spec = SweepSpec(fs, seconds, f_start, f_stop, level_dbfs, channels, repeats, max_latency_ms)
    write_json(description, spec.to_dict(), overwrite=force)
    write_audio(output, spec.signal(), spec.fs, overwrite=force)
    silence = spec.period / spec.fs - spec.seconds
    echo(f"wrote {output} ({spec.repeats} x {spec.period / spec.fs:.2f} s: the {spec.seconds:g} s sweep and "
         f"{silence:.2f} s of silence around it for the effect's latency and tail; {spec.channels} channel(s), "
         f"{spec.f_start_hz:g} to {spec.f_stop_hz:g} Hz at {spec.level_dbfs:g} dBFS) and {description}")
