"""``apftools apply MODEL IN -o OUT``: render a saved model on another file, block by block."""

import click

from .options import check_output, echo, force_option, progress_bar, quiet_option, reports_errors


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("source", metavar="IN", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output audio file.")
@force_option
@quiet_option
@reports_errors
def apply(model, source, output, force):
    """Apply the delay, polarity and allpass of MODEL (from 'apftools align') to IN."""
    from ..io import AudioReader
    from ..model import Alignment
    from ..render import render_to_file

    check_output(output, (model, source), force)
    alignment = Alignment.load(model)
    with AudioReader(source) as reader:
        with progress_bar("applying", eta=True) as update:
            channels, frames = render_to_file(alignment, reader, output, overwrite=force, progress=update)
    echo(f"wrote {output} ({channels} channel(s), {frames / reader.fs:.2f} s at {reader.fs} Hz)")
