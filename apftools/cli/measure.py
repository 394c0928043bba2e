"""``apftools measure SWEEP RECORDED -o OUTDIR``: an effect's response from a sweep, and a model to apply."""

import os

import click

from .options import channel_label, echo, force_option, progress_bar, quiet_option, reports_errors, started
from .sweep import sidecar

#: Every file ``measure`` writes into its output folder.
OUTPUTS = ("ir.wav", "model.json", "report.json", "report.png")


@click.command()
@click.argument("sweep", type=click.Path(dir_okay=False))
@click.argument("recorded", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
              help="Output directory (created if missing).")
@click.option("--sections", default=None,
              help="Cascade spec of the model, as for 'align' (default '3x2w,1w|2x2w,1w'; '3x2w,1w' with --causal).")
@click.option("--causal", is_flag=True, help="Real-time mode: causal sections and no advance only.")
@force_option
@quiet_option
@reports_errors
def measure(sweep, recorded, outdir, sections, causal, force):
    """Measure the effect that turned SWEEP (from 'apftools sweep') into RECORDED.

    Writes ir.wav (the linear impulse response of every output channel),
    report.json (latency, polarity, SNR, harmonic levels and THD, per channel),
    report.png (magnitude, phase, group delay, harmonics) and model.json: delay,
    polarity and allpass fitted to the measured response, which 'apftools apply'
    renders on any dry take played through that effect.
    """
    import time

    import numpy as np

    from ..align import check_spec
    from ..errors import ApftoolsValueError
    from ..io import OutputFolder, read_audio, read_json, write_audio, write_json
    from ..sweep import SweepSpec, fit_models, measure as measure_sweep

    start = started()
    try:
        check_spec(sections, causal)
    except ApftoolsValueError as error:
        raise click.BadParameter(str(error), param_hint="--sections") from None
    description = sweep if sweep.lower().endswith(".json") else sidecar(sweep)
    with OutputFolder(outdir, OUTPUTS, overwrite=force, inputs=(sweep, description, recorded)) as folder:
        spec = SweepSpec.from_dict(read_json(description))
        data, fs = read_audio(recorded)
        with progress_bar("measuring") as update:
            update(0.1, "deconvolution")
            measurements = measure_sweep(spec, data, fs)
            update(0.3, "phase fit")
            alignment, fits = fit_models(spec, measurements, sections=sections, causal=causal)
            update(1.0, "done")
        length = max(len(m.ir) for m in measurements)
        write_audio(folder.path("ir.wav"), np.stack([np.pad(m.ir, (0, length - len(m.ir))) for m in measurements]),
                    fs)
        alignment.save(folder.path("model.json"))
        channels = [dict(m.summary(), fit=fit) for m, fit in zip(measurements, fits)]
        report = {**channels[0], "fs": fs, "channels": channels, "mode": alignment.mode,
                  "sweep": spec.to_dict(), "inputs": {"sweep": os.path.abspath(description),
                                                      "recorded": os.path.abspath(recorded)},
                  "seconds": time.perf_counter() - start}
        report.pop("fit")
        write_json(folder.path("report.json"), report)
        from ..plot import measurement_figure, save_figure

        save_figure(measurement_figure(measurements, alignment), folder.path("report.png"))
    for c, (measured, fit) in enumerate(zip(measurements, fits)):
        where = f"{channel_label([c])}: " if len(measurements) > 1 else ""
        harmonics = ", ".join(f"H{k} {v:.1f}" for k, v in measured.harmonics_db.items() if v is not None)
        echo(f"{where}latency {measured.latency_samples:+.2f} samples ({1000 * measured.latency_samples / fs:+.3f} "
             f"ms), polarity {'inverted' if measured.polarity < 0 else 'normal'}, SNR {measured.snr_db:.0f} dB")
        echo(f"{' ' * len(where)}THD {measured.thd_percent:.3g}% ({harmonics} dB re fundamental)"
             + ("" if measured.time_variance_db is None else f", periods differ by {measured.time_variance_db:.2f} dB"))
        echo(f"{' ' * len(where)}model: delay {fit['delay_samples']:+.2f} samples, polarity "
             f"{'inverted' if fit['polarity'] < 0 else 'normal'}, cascade {fit['spec']}"
             + (f" | anti-causal {fit['anticausal_spec']}" if fit["anticausal_spec"] else "")
             + f", phase error {fit['phase_error_deg']:.1f} deg")
    echo(f"wrote {', '.join(os.path.join(outdir, name) for name in OUTPUTS)} in {time.perf_counter() - start:.1f} s")
