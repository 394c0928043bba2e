"""``apftools apply MODEL IN -o OUT``: render a saved model on another file."""

import click
import numpy as np

from .options import check_output, echo, force_option, reports_errors


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("source", metavar="IN", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output audio file.")
@force_option
@reports_errors
def apply(model, source, output, force):
    """Apply the delay, polarity and allpass of MODEL (from 'apftools align') to IN."""
    from ..model import Alignment
    from ..io import read_audio, write_audio

    check_output(output, (model, source), force)
    alignment = Alignment.load(model)
    signal, fs = read_audio(source)
    if fs != alignment.fs:
        raise click.ClickException(f"{source} is at {fs} Hz but the model was fitted at {alignment.fs:g} Hz; "
                               "resample the file or align again at its rate")
    aligned = np.atleast_2d(alignment.apply(signal))
    write_audio(output, aligned, fs, overwrite=force)
    echo(f"wrote {output} ({aligned.shape[0]} channel(s), {aligned.shape[1] / fs:.2f} s at {fs} Hz)")
