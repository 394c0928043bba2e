"""``apftools align DRY WET -o OUTDIR``: render a dry file in phase with the wet."""

import click

from .options import (alignment_options, channel_label, echo, force_option, progress_bar, quiet_option,
                      reports_errors, started)


@click.command()
@click.argument("dry", type=click.Path(dir_okay=False))
@click.argument("wet", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
              help="Output directory (created if missing).")
@alignment_options
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON on stdout (report.json's 'summary', the same keys) instead of the "
                   "human lines; errors still go to stderr with a non-zero exit status.")
@force_option
@quiet_option
@reports_errors
def align(dry, wet, outdir, settings, as_json, force):
    """Align DRY with WET; write aligned.wav, model.json and report.json to OUTDIR.

    Files of any length: pairs over a minute are analysed on a few loud excerpts
    and aligned.wav and mix.wav are rendered block by block, in bounded memory.
    """
    import json

    from ..files import AlignOptions, align_files

    options = AlignOptions(**settings)
    summary = align_files(dry, wet, outdir, options, overwrite=force, bar=progress_bar, started=started())
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)


def _print_summary(summary):
    several = summary["channels"] > 1
    for group in summary["groups"]:
        where = f"{channel_label(group['channels'])}: " if several else ""
        anticausal = f" | anti-causal {group['anticausal_spec']}" if group["anticausal_spec"] else ""
        echo(f"{where}delay {group['delay_samples']:+.2f} samples ({group['delay_ms']:+.3f} ms), "
             f"polarity {'inverted' if group['polarity'] < 0 else 'normal'}, "
             f"cascade {group['spec'] or 'none'}{anticausal}")
        kept = f", kept: {group['method']}" if several else ""
        pre = f", {group['pre_ring_ms']:.0f} ms before it" if group["pre_ring_ms"] else ""
        echo(f"{' ' * len(where)}largest group delay {group['max_group_delay_ms']:+.2f} ms, "
             f"rings {group['post_ring_ms']:.0f} ms after the impulse{pre} (60 dB){kept}")
        if group["latency_samples"] is not None:  # None: nothing to align in these channels
            echo(f"{' ' * len(where)}latency {group['latency_samples']:.2f} samples ({group['latency_ms']:.3f} ms): "
                 "the effect's, for delay compensation")
    mode = summary["mode"]
    echo(f"model: {summary['method']} ({mode}{': for files, not real time' if mode == 'offline' else ''})")
    print_metrics(summary)
    if summary["excerpts"] is not None:
        echo(f"analysed {summary['excerpts']} excerpt(s), {summary['analysed_s']:.0f} s of the file; "
             "metrics are over the excerpts")
    for warning in summary["warnings"]:
        echo(f"warning: {warning}")
    echo(f"wrote {', '.join(summary['outputs'])} in {summary['seconds']:.1f} s")


def print_metrics(summary):
    """The lines of a summary's metrics, before -> after (before alone where ``after`` is None): every
    channel's (of several), then the headline, whose band and phase error are a named channel's."""

    def both(sides, cell):
        return " -> ".join(cell(side) for side in sides if side is not None)

    def mix(width, unit=""):
        return lambda side: f"{side['mix_deficit_db']:{width}.2f}{unit}"

    def band(width):
        def cell(side):
            where = f", {channel_label([side['worst_band_channel']])}" if "worst_band_channel" in side else ""
            return f"{side['worst_band_db']:{width}.2f} dB ({side['worst_band']}{where})"
        return cell

    def phase(width, unit=""):
        def cell(side):
            where = f" ({channel_label([side['phase_error_channel']])})" if "phase_error_channel" in side else ""
            return f"{side['phase_error_deg']:{width}.1f}{unit}{where}"
        return cell

    if summary["channels"] > 1:
        for row in summary["per_channel"]:
            sides = row["before"], row.get("after")
            if sides[0]["mix_deficit_db"] is None:
                echo(f"{channel_label([row['channel']])}: a side is silent, nothing to score")
                continue
            echo(f"{channel_label([row['channel']])}: mix {both(sides, mix(6))} dB, worst band "
                 f"{both(sides, band(6))}, phase error {both(sides, phase(5))} deg")
    sides = summary["before"], summary["after"]
    echo(f"50/50 mix deficit  {both(sides, mix(7, ' dB'))}")
    echo(f"worst 1/3-octave   {both(sides, band(7))}")
    echo(f"phase error        {both(sides, phase(7, ' deg'))}")
