"""``apftools batch MANIFEST -o OUTDIR``: align many pairs, resumable, on local processes or a Dask cluster."""

import click

from .options import alignment_options, echo, force_option, progress_bar, quiet_option, reports_errors


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
              help="Output directory: one folder per pair, summary.csv and summary.json.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes  [default: the CPU count]")
@click.option("--scheduler", default=None, help="Run on this Dask scheduler (tcp://HOST:PORT) instead.")
@alignment_options
@force_option
@quiet_option
@reports_errors
def batch(sources, outdir, workers, scheduler, settings, force):
    """Align every pair of SOURCES: a CSV manifest (dry,wet[,name][,sections][,causal]) or two glob patterns
    DRY_GLOB WET_GLOB pairing files by name, each as 'apftools align' with these options (a manifest's
    sections and causal columns override them per pair).  Pairs already aligned with the same configuration
    are skipped (unless --force); failures are recorded and the batch goes on; exit status 1 if any pair failed.
    """
    from ..batch import aggregate, align_many, pairs_from_globs, read_manifest

    if len(sources) == 1:
        pairs = read_manifest(sources[0])
    elif len(sources) == 2:
        pairs = pairs_from_globs(*sources)
    else:
        raise click.BadParameter(f"expected one manifest or two glob patterns, got {len(sources)} arguments",
                                 param_hint="SOURCES")
    client = None
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise click.ClickException("--scheduler needs Dask: pip install 'apftools[dask]'") from None
        client = Client(scheduler)
    with progress_bar("pairs", eta=True) as update:
        finished = []

        def progress(row):
            finished.append(row)
            update(len(finished) / len(pairs), f"{row['name']}: {row['status']}")

        rows = align_many(pairs, outdir, workers=workers, client=client, force=force, progress=progress, **settings)
    for row in rows:
        if row["status"] == "failed":
            echo(f"failed: {row['name']}: {row['error']}")
    echo(aggregate(rows))
    if any(row["status"] == "failed" for row in rows):
        raise SystemExit(1)
