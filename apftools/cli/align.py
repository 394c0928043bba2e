"""``apftools align DRY WET -o OUTDIR``: render a dry file in phase with the wet."""

import os
import platform

import click

from .. import __version__
from ..align import METHODS
from ..losses import LOSSES
from .options import echo, force_option, progress_bar, reports_errors

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
              help="With --method biasnet: hidden layer sizes per section (the paper's by default).")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(min=1),
              help="With --method biasnet: most Adam steps (early stopping may end sooner).")
@click.option("--loss", default="mse", show_default=True,
              type=click.Choice(list(LOSSES)),
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
@force_option
@reports_errors
def align(dry, wet, outdir, sections, causal, method, polish, layers, steps, loss, max_delay_ms, seed, link,
          resample, plot, mix_ratio, force):
    """Align DRY with WET; write aligned.wav, model.json and report.json to OUTDIR."""
    from .. import align as align_signals
    from ..io import OutputFolder, read_audio, write_audio, write_json

    try:
        layer_sizes = tuple(int(size) for size in layers.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 64,64, got {layers!r}",
                                 param_hint="--layers") from None
    names = ["aligned.wav", "model.json", "report.json"] + ["report.png"] * plot + ["mix.wav"] * (mix_ratio is not None)
    # checked and staged before any audio is read: a bad location fails at once, and the run's outputs
    # replace the folder's earlier contents together or not at all
    with OutputFolder(outdir, OUTPUTS, overwrite=force, inputs=(dry, wet)) as folder:
        dry_signal, fs = read_audio(dry)
        wet_signal, fs_wet = read_audio(wet)
        if fs_wet != fs:
            if not resample:
                raise click.ClickException(f"{dry} is at {fs} Hz but {wet} is at {fs_wet} Hz; "
                                           f"pass --resample to resample the wet to {fs} Hz")
            wet_signal = _resample(wet_signal, fs_wet, fs)
        with progress_bar("aligning") as update:
            result = align_signals(dry_signal, wet_signal, fs, sections=sections, causal=causal, method=method,
                                   polish=polish, loss=loss, max_delay_s=max_delay_ms / 1000.0, seed=seed,
                                   link=link or "auto", biasnet={"layer_sizes": layer_sizes, "max_steps": steps},
                                   progress=update)
        report = dict(result.report, inputs={"dry": os.path.abspath(dry), "wet": os.path.abspath(wet),
                                             "wet_resampled_from_hz": fs_wet if fs_wet != fs else None},
                      settings={"sections": sections, "causal": causal, "method": method, "polish": polish,
                                "layers": layer_sizes,
                                "steps": steps, "loss": loss, "max_delay_ms": max_delay_ms, "seed": seed,
                                "link": link or "auto"},
                      versions={"apftools": __version__, "python": platform.python_version()})
        write_audio(folder.path("aligned.wav"), result.apply(dry_signal), fs)
        result.save(folder.path("model.json"))
        write_json(folder.path("report.json"), report)
        if plot:
            from ..plot import report_figure, save_figure

            save_figure(report_figure(result, dry_signal, wet_signal), folder.path("report.png"))
        if mix_ratio is not None:
            write_audio(folder.path("mix.wav"), result.mix(dry_signal, wet_signal, mix_ratio), fs)
    _summarise(result, fs, [os.path.join(outdir, name) for name in names])


def _channels(channels):
    return f"channel{'s' if len(channels) > 1 else ''} {', '.join(str(c + 1) for c in channels)}: "


def _summarise(result, fs, outputs):
    report = result.report
    before, after = report["before"], report["after"]
    several = report["channels"] > 1
    for group in report["groups"]:
        where = _channels(group["channels"]) if several else ""
        anticausal = f" | anti-causal {group['anticausal_spec']}" if group["anticausal_spec"] else ""
        echo(f"{where}delay {group['delay_samples']:+.2f} samples ({1000 * group['delay_samples'] / fs:+.3f} ms), "
             f"polarity {'inverted' if group['polarity'] < 0 else 'normal'}, cascade {group['spec'] or 'none'}{anticausal}")
        kept = f", kept: {group['method']}" if several else ""
        echo(f"{' ' * len(where)}largest group delay {group['max_group_delay_ms']:.2f} ms, "
             f"rings {group['ring_time_ms']:.0f} ms (60 dB){kept}")
    echo(f"model: {result.method} ({result.mode}{': for files, not real time' if result.mode == 'offline' else ''})")
    if several:
        for row in report["per_channel"]:
            b, a = row["before"], row["after"]
            echo(f"{_channels([row['channel']])}mix {b['mix_deficit_db']:6.2f} -> {a['mix_deficit_db']:6.2f} dB, "
                 f"worst band {b['worst_band_db']:6.2f} -> {a['worst_band_db']:6.2f} dB (at {a['worst_band_hz']:.0f} Hz)")
    echo(f"50/50 mix deficit  {before['mix_deficit_db']:7.2f} dB -> {after['mix_deficit_db']:7.2f} dB")
    echo(f"worst 1/3-octave   {before['worst_band_db']:7.2f} dB -> {after['worst_band_db']:7.2f} dB "
         f"(at {after['worst_band_hz']:.0f} Hz)")
    echo(f"phase error        {before['phase_error_deg']:7.1f} deg -> {after['phase_error_deg']:7.1f} deg")
    for warning in result.warnings:
        echo(f"warning: {warning}")
    echo(f"wrote {', '.join(outputs)} in {report['seconds']:.1f} s")
