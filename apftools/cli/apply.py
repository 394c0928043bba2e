"""``apftools apply MODEL IN -o OUT``: render a saved model on another file, block by block."""

import click

from .options import bits_option, check_output, echo, force_option, progress_bar, quiet_option, reports_errors


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("source", metavar="IN", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output audio file.")
@click.option("--mix", "mix_ratio", type=click.FloatRange(0, 1), default=None,
              help="Also write the aligned IN mixed with --wet at this wet ratio, to --mix-output.")
@click.option("--wet", type=click.Path(dir_okay=False), default=None, help="With --mix: the wet file.")
@click.option("--mix-output", type=click.Path(dir_okay=False), default=None, help="With --mix: the mix file.")
@bits_option
@force_option
@quiet_option
@reports_errors
def apply(model, source, output, mix_ratio, wet, mix_output, bits, force):
    """Apply the delay, polarity and allpass of MODEL (from 'apftools align') to IN."""
    import contextlib

    from ..errors import ApftoolsValueError
    from ..io import AudioReader
    from ..model import Alignment
    from ..render import render_to_file

    if len({mix_ratio is None, wet is None, mix_output is None}) > 1:
        raise click.UsageError("--mix, --wet and --mix-output go together: the wet ratio, the wet file and where "
                               "the mix goes")
    inputs = (model, source) + ((wet,) if wet else ())
    for path in (output,) + ((mix_output,) if mix_output else ()):
        check_output(path, inputs, force)
    alignment = Alignment.load(model)
    with AudioReader(source) as reader, contextlib.ExitStack() as stack:
        mix = None
        if wet is not None:
            wet_reader = stack.enter_context(AudioReader(wet))
            if wet_reader.fs != alignment.fs:
                raise ApftoolsValueError(f"--wet {wet} is at {wet_reader.fs} Hz; the model is at {alignment.fs:g} Hz")
            mix = (mix_output, wet_reader, mix_ratio)
        with progress_bar("applying", eta=True) as update:
            channels, frames = render_to_file(alignment, reader, output, mix=mix, overwrite=force, progress=update,
                                              bits=bits)
    written = output + (f" and {mix_output} ({100 * mix_ratio:g}% wet)" if mix else "")
    echo(f"wrote {written} ({channels} channel(s), {frames / reader.fs:.2f} s at {reader.fs} Hz)")
