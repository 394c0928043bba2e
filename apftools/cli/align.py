"""``apftools align DRY WET -o OUTDIR``: render a dry file in phase with the wet."""

import os
import platform

import click

from .. import __version__
from ..names import LOSS_NAMES, METHODS
from .options import channel_label, echo, force_option, progress_bar, quiet_option, reports_errors

#: Every file ``align`` may write into its output folder.
OUTPUTS = ("aligned.wav", "model.json", "report.json", "report.png", "mix.wav")


def _resample(signal, fs_from, fs_to):
    import scipy.signal
    from math import gcd

    g = gcd(int(fs_from), int(fs_to))
    return scipy.signal.resample_poly(signal, int(fs_to) // g, int(fs_from) // g, axis=-1)


@click.command()
@click.argument("dry", type=click.Path(dir_okay=False))
@click.argument("wet", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
              help="Output directory (created if missing).")
@click.option("--sections", default=None,
              help="Cascade spec CAUSAL|ANTICAUSAL, e.g. '3x2w,1w|2x2w,1w' (the default; '3x2w,1w' with --causal); "
                   "CAUSAL may be 'auto' to choose the order.")
@click.option("--causal", is_flag=True,
              help="Real-time mode: causal sections and no advance only (default: offline, filtering the "
                   "anti-causal sections backwards over the file).")
@click.option("--method", default="lbfgs", show_default=True, type=click.Choice(METHODS),
              help="Fitter: L-BFGS from many starts, or the BiasNet network of Bargum et al. (slower).")
@click.option("--polish", is_flag=True, help="With --method biasnet, refine the network's result with L-BFGS.")
@click.option("--layers", default="1024,512,256,128", show_default=True,
              help="With --method biasnet: the input and hidden layer sizes of each section's network (the "
                   "paper's by default; the output layer is added).")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(min=1),
              help="With --method biasnet: most Adam steps (early stopping may end sooner).")
@click.option("--loss", default="mse", show_default=True,
              type=click.Choice(LOSS_NAMES),
              help="With --method biasnet: the training loss.")
@click.option("--max-delay-ms", default=250.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest bulk delay searched, either sign.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed for the random starts.")
@click.option("--link", "link", flag_value="linked", default=None,
              help="One model for all channels (default: channels whose measured responses agree share one).")
@click.option("--per-channel", "link", flag_value="separate", help="One model per channel.")
@click.option("--resample", is_flag=True, help="Resample the wet to the dry's rate when they differ.")
@click.option("--plot", is_flag=True, help="Also write report.png (phase, group delay, mix before/after).")
@click.option("--mix", "mix_ratio", type=click.FloatRange(0, 1), default=None,
              help="Also write mix.wav: aligned dry and wet mixed at this wet ratio.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON on stdout (report.json's 'summary', the same keys) instead of the "
                   "human lines; errors still go to stderr with a non-zero exit status.")
@force_option
@quiet_option
@reports_errors
def align(dry, wet, outdir, sections, causal, method, polish, layers, steps, loss, max_delay_ms, seed, link,
          resample, plot, mix_ratio, as_json, force):
    """Align DRY with WET; write aligned.wav, model.json and report.json to OUTDIR.

    Files of any length: pairs over a minute are analysed on a few loud excerpts
    and aligned.wav and mix.wav are rendered block by block, in bounded memory.
    """
    import json
    import time

    from .. import align as align_signals
    from ..align import check_spec
    from ..errors import ApftoolsValueError
    from ..excerpts import delay_drift, read_for_analysis
    from ..io import AudioReader, OutputFolder, write_json
    from ..render import ArrayReader, render_to_file

    started = time.perf_counter()
    try:
        layer_sizes = tuple(int(size) for size in layers.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 64,64, got {layers!r}",
                                 param_hint="--layers") from None
    try:  # a usage error (exit status 2) before anything is read; rate-dependent limits are checked later
        check_spec(sections, causal)
    except ApftoolsValueError as error:
        raise click.BadParameter(str(error), param_hint="--sections") from None
    names = ["aligned.wav", "model.json", "report.json"] + ["report.png"] * plot + ["mix.wav"] * (mix_ratio is not None)
    # checked and staged before any audio is read: a bad location fails at once, and the run's outputs
    # replace the folder's earlier contents together or not at all
    with OutputFolder(outdir, OUTPUTS, overwrite=force, inputs=(dry, wet)) as folder, \
            AudioReader(dry) as dry_file, AudioReader(wet) as wet_file:
        fs, fs_wet, wet_source = dry_file.fs, wet_file.fs, wet_file
        if fs_wet != fs:
            if not resample:
                raise click.ClickException(f"{dry} is at {fs} Hz but {wet} is at {fs_wet} Hz; "
                                           f"pass --resample to resample the wet to {fs} Hz")
            wet_source = ArrayReader(_resample(wet_file.read(0, wet_file.frames), fs_wet, fs), fs)  # in memory
        analysis = read_for_analysis(dry_file, wet_source)
        with progress_bar("aligning") as update:
            result = align_signals(analysis.dry, analysis.wet, fs, sections=sections, causal=causal, method=method,
                                   polish=polish, loss=loss, max_delay_s=max_delay_ms / 1000.0, seed=seed,
                                   link=link or "auto", biasnet={"layer_sizes": layer_sizes, "max_steps": steps},
                                   progress=update)
        excerpt_delays, drift = delay_drift(analysis, fs, max_delay_ms / 1000.0)
        result.report["warnings"] += analysis.notes + ([drift] if drift else [])
        with progress_bar("writing", eta=True) as update:
            render_to_file(result, dry_file, folder.path("aligned.wav"), progress=update)
            if mix_ratio is not None:
                render_to_file(result, dry_file, folder.path("mix.wav"), wet=wet_source, wet_ratio=mix_ratio,
                               progress=update)
        result.report["seconds"] = time.perf_counter() - started
        summary = _summary(result, fs, [os.path.join(outdir, name) for name in names], analysis)
        report = dict(result.report, summary=summary,
                      inputs={"dry": os.path.abspath(dry), "wet": os.path.abspath(wet),
                              "wet_resampled_from_hz": fs_wet if fs_wet != fs else None},
                      analysis=dict(analysis.report(fs), excerpt_delays_samples=excerpt_delays),
                      settings={"sections": sections, "causal": causal, "method": method, "polish": polish,
                                "layers": layer_sizes,
                                "steps": steps, "loss": loss, "max_delay_ms": max_delay_ms, "seed": seed,
                                "link": link or "auto"},
                      versions={"apftools": __version__, "python": platform.python_version()})
        result.save(folder.path("model.json"))
        write_json(folder.path("report.json"), report)
        if plot:
            from ..plot import report_figure, save_figure

            save_figure(report_figure(result, analysis.dry, analysis.wet), folder.path("report.png"))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)


#: Keys of report.json's before and after kept in the summary.
_MIX_KEYS = ("mix_deficit_db", "worst_band_db", "worst_band_hz", "worst_band", "phase_error_deg")
#: Keys of every channel group's report kept in the summary.
_GROUP_KEYS = ("channels", "method", "delay_samples", "polarity", "spec", "anticausal_spec", "max_group_delay_ms",
               "ring_time_ms", "pre_ring_ms", "post_ring_ms")


def _summary(result, fs, outputs, analysis):
    """What the printed summary says, as JSON-ready data (report.json's ``summary``, ``--json``'s output)."""
    report = result.report
    return {
        "method": result.method,
        "mode": result.mode,
        "fs": fs,
        "channels": report["channels"],
        "groups": [dict({k: group[k] for k in _GROUP_KEYS}, delay_ms=1000.0 * group["delay_samples"] / fs)
                   for group in report["groups"]],
        "before": {k: report["before"][k] for k in _MIX_KEYS},
        "after": {k: report["after"][k] for k in _MIX_KEYS},
        "per_channel": report["per_channel"] if report["channels"] > 1 else [],
        "excerpts": None if analysis.spans is None else len(analysis.spans),
        "analysed_s": analysis.dry.shape[1] / fs,
        "warnings": result.warnings,
        "outputs": outputs,
        "seconds": report["seconds"],
    }


def _print_summary(summary):
    before, after = summary["before"], summary["after"]
    several = summary["channels"] > 1
    for group in summary["groups"]:
        where = f"{channel_label(group['channels'])}: " if several else ""
        anticausal = f" | anti-causal {group['anticausal_spec']}" if group["anticausal_spec"] else ""
        echo(f"{where}delay {group['delay_samples']:+.2f} samples ({group['delay_ms']:+.3f} ms), "
             f"polarity {'inverted' if group['polarity'] < 0 else 'normal'}, "
             f"cascade {group['spec'] or 'none'}{anticausal}")
        kept = f", kept: {group['method']}" if several else ""
        pre = f", {group['pre_ring_ms']:.0f} ms before it" if group["pre_ring_ms"] else ""
        echo(f"{' ' * len(where)}largest group delay {group['max_group_delay_ms']:.2f} ms, "
             f"rings {group['post_ring_ms']:.0f} ms after the impulse{pre} (60 dB){kept}")
    mode = summary["mode"]
    echo(f"model: {summary['method']} ({mode}{': for files, not real time' if mode == 'offline' else ''})")
    if several:
        for row in summary["per_channel"]:
            b, a = row["before"], row["after"]
            echo(f"{channel_label([row['channel']])}: mix {b['mix_deficit_db']:6.2f} -> {a['mix_deficit_db']:6.2f} "
                 f"dB, worst band {b['worst_band_db']:6.2f} -> {a['worst_band_db']:6.2f} dB (at {a['worst_band']})")
    echo(f"50/50 mix deficit  {before['mix_deficit_db']:7.2f} dB -> {after['mix_deficit_db']:7.2f} dB")
    echo(f"worst 1/3-octave   {before['worst_band_db']:7.2f} dB -> {after['worst_band_db']:7.2f} dB "
         f"(at {after['worst_band']})")
    echo(f"phase error        {before['phase_error_deg']:7.1f} deg -> {after['phase_error_deg']:7.1f} deg")
    if summary["excerpts"] is not None:
        echo(f"analysed {summary['excerpts']} excerpt(s), {summary['analysed_s']:.0f} s of the file; "
             "metrics are over the excerpts")
    for warning in summary["warnings"]:
        echo(f"warning: {warning}")
    echo(f"wrote {', '.join(summary['outputs'])} in {summary['seconds']:.1f} s")
