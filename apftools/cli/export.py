"""``apftools export MODEL --format sos|sox|camilladsp|fir -o OUT``: a model as SOS coefficients, sox effects, a
CamillaDSP configuration or one impulse response."""

import click

from .options import check_output, echo, force_option, quiet_option, reports_errors

#: The formats and what each writes.
FORMATS = {"sos": "JSON: per channel, delay (integer shift and fractional FIR), polarity, causal and anti-causal "
                  "scipy SOS rows",
           "sox": "an effects file for 'sox --effects-file OUT IN.wav OUT.wav' (one chain for all channels)",
           "camilladsp": "YAML: CamillaDSP filters, mixer and pipeline steps (causal models: real time)",
           "fir": "WAV: the whole model as one impulse response per channel, made causal by a latency, and a JSON "
                  "beside it stating the latency"}


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--format", "kind", required=True, type=click.Choice(list(FORMATS)),
              help=" ".join(f"{name}: {text}." for name, text in FORMATS.items()))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The file to write (.json for sos, .sox for sox, .yml for camilladsp, .wav for fir).")
@click.option("--level-db", default=-120.0, show_default=True, type=click.FloatRange(max=0, max_open=True),
              help="With --format fir: cut the response where it stays below this level re its peak.")
@force_option
@quiet_option
@reports_errors
def export(model, kind, output, level_db, force):
    """Write MODEL (from 'apftools align') for other hosts: scipy-ready sections (sos), sox effects (sox), a
    CamillaDSP configuration (camilladsp), or one impulse response (fir) that runs even an offline model in a
    convolution host, with a stated latency."""
    import os

    from ..export import FIR_FORMAT, to_camilladsp, to_fir, to_sos, to_sox
    from ..io import atomic_write, write_audio, write_json
    from ..model import Alignment

    extension = {"sos": ".json", "sox": ".sox", "camilladsp": ".yml", "fir": ".wav"}[kind]
    if os.path.splitext(output)[1].lower() != extension:
        raise click.BadParameter(f"{output}: --format {kind} writes a {extension} file", param_hint="-o")
    beside = os.path.splitext(output)[0] + ".json"
    for path in (output,) + ((beside,) if kind == "fir" else ()):
        check_output(path, (model,), force)
    alignment = Alignment.load(model)
    if kind == "sos":
        write_json(output, to_sos(alignment), overwrite=force)
        echo(f"wrote {output} ({alignment.mode} model at {alignment.fs:g} Hz)")
        return
    if kind in ("sox", "camilladsp"):
        text = to_sox(alignment) if kind == "sox" else to_camilladsp(alignment)
        with atomic_write(output, overwrite=force) as temporary:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text)
        how = (f"run it as  sox --effects-file {output} IN.wav OUT.wav" if kind == "sox" else
               "merge its filters, mixers and pipeline into a CamillaDSP configuration")
        echo(f"wrote {output}: {how}  (at {alignment.fs:g} Hz)")
        return
    responses, latency = to_fir(alignment, 10.0 ** (level_db / 20.0))
    write_json(beside, {"format": FIR_FORMAT, "fs": alignment.fs, "latency_samples": latency,
                        "level_db": level_db, "taps": responses.shape[1]}, overwrite=force)
    write_audio(output, responses, alignment.fs, overwrite=force)
    echo(f"wrote {output} ({responses.shape[0]} channel(s), {responses.shape[1]} taps) and {beside}: "
         f"latency {latency} samples ({1000.0 * latency / alignment.fs:.2f} ms); delay the wet by it, or let the "
         "host compensate")
