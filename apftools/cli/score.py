"""``apftools score DRY WET [--model MODEL]``: the alignment metrics of a pair, without fitting."""

import click

from .options import quiet_option, reports_errors


@click.command()
@click.argument("dry", type=click.Path(dir_okay=False))
@click.argument("wet", type=click.Path(dir_okay=False))
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="Score DRY through this model (model.json from 'apftools align') against WET, beside DRY as it is.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON (report.json's summary keys).")
@quiet_option
@reports_errors
def score(dry, wet, model, as_json):
    """Print how DRY (an aligned.wav, or any take) mixes with WET: the 50/50 mix deficit, the worst third-octave
    band and the phase error, as 'apftools align' reports them; with --model, before and after that model.
    Long files are scored on the excerpts align would analyse."""
    import json

    from ..align import score as score_pair
    from ..errors import ApftoolsValueError
    from ..excerpts import read_for_analysis
    from ..io import AudioReader
    from ..model import Alignment
    from .align import print_metrics

    alignment = None if model is None else Alignment.load(model)
    with AudioReader(dry) as dry_file, AudioReader(wet) as wet_file:
        if dry_file.fs != wet_file.fs:
            raise ApftoolsValueError(f"{dry} is at {dry_file.fs} Hz but {wet} is at {wet_file.fs} Hz")
        analysis = read_for_analysis(dry_file, wet_file)
    result = score_pair(analysis.dry, analysis.wet, dry_file.fs, alignment)
    result["excerpts"] = None if analysis.spans is None else len(analysis.spans)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    print_metrics(result)
