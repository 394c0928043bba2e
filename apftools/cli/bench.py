"""``apftools bench [CASES_DIR]``: score aligners on a folder of dry/wet cases (the real-effects benchmark)."""

import click

from ..names import BENCH_METHODS
from .options import check_output, echo, force_option, is_quiet, quiet_option, reports_errors


@click.command()
@click.argument("cases_dir", required=False, type=click.Path(file_okay=False, exists=True))
@click.option("--methods", default=None,
              help=f"Comma-separated, from {', '.join(BENCH_METHODS)}  [default: raw, delay-polarity, oracle, lbfgs, "
                   "lbfgs-causal, and cmd with --cmd]")
@click.option("--cmd", default=None,
              help="Your aligner as a command template with {dry}, {wet} and {out}; it must write {out}/aligned.wav.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write one row per case, method and channel as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PNG of the worst bands.")
@click.option("--only", default=None, help="Comma-separated case names.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Cases scored at once, one process each.")
@click.option("--biasnet-seconds", type=click.FloatRange(min=0, min_open=True), default=15.0, show_default=True,
              help="Cap of each BiasNet training (s).")
@force_option
@quiet_option
@reports_errors
def bench(cases_dir, methods, cmd, json_path, plot, only, jobs, biasnet_seconds, force):
    """Score aligners on every case of CASES_DIR (folders of dry and wet files; default: the twelve real-effect
    cases shipped with apftools): per case, the worst third-octave band of the 50/50 mix, against no alignment,
    delay and polarity alone and the oracle; with --cmd, your aligner beside apftools'.  Prints a markdown
    table; errors are recorded per row and the run goes on."""
    import json
    import time

    from .. import bench as benchmark
    from ..io import atomic_write

    for path in filter(None, (json_path, plot)):
        check_output(path, (), force)
    names = methods.split(",") if methods else None
    unknown = set(names or ()) - set(BENCH_METHODS)
    if unknown:
        raise click.BadParameter(f"unknown methods {', '.join(sorted(unknown))}; choose from "
                                 f"{', '.join(BENCH_METHODS)}", param_hint="--methods")
    if "cmd" in (names or ()) and not cmd:
        raise click.BadParameter("the cmd method needs --cmd TEMPLATE", param_hint="--methods")
    start = time.perf_counter()

    def progress(done, total, name):
        if not is_quiet():
            click.echo(f"[{done}/{total}] {name} ({time.perf_counter() - start:.0f} s so far)", err=True)

    rows = benchmark.run(cases_dir, names, cmd=cmd, only=only.split(",") if only else None, jobs=jobs,
                         biasnet_seconds=biasnet_seconds, progress=progress)
    shown = list(dict.fromkeys(row["method"] for row in rows))
    click.echo(benchmark.markdown(rows, shown))
    echo(f"\n{len({row['case'] for row in rows})} cases, {len(shown)} methods in {time.perf_counter() - start:.0f} s")
    if json_path:
        with atomic_write(json_path, overwrite=force) as temporary:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(benchmark.json_rows(rows), indent=1) + "\n")
    if plot:
        from ..plot import save_figure

        save_figure(benchmark.plot(rows, shown), plot, overwrite=force)
