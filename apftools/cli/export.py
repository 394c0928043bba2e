"""``apftools export MODEL --format FORMAT -o OUT``: a model as SOS coefficients, sox effects, an ffmpeg filter graph,
a Faust program, a CamillaDSP or Equalizer APO configuration, or one impulse response."""

import click

from .options import check_output, echo, force_option, quiet_option, reports_errors

#: Each format: the file extension it writes, what it is, and how to use it ({out}: the file, {fs}: the rate).
FORMATS = {
    "sos": (".json", "per channel, delay (integer shift and fractional FIR), polarity, causal and anti-causal scipy "
                     "SOS rows and the same allpasses by frequency and Q",
            "scipy.signal.sosfilt runs its rows (apftools.export.render_sos shows how)"),
    "sox": (".sox", "a sox effects file (one chain for all channels; offline models too)",
            "run it as  sox --effects-file {out} IN.wav OUT.wav"),
    "ffmpeg": (".ffmpeg", "an ffmpeg filter graph in float64 (offline models too)",
               "run it as  ffmpeg -i IN.wav -filter_complex_script {out} -c:a pcm_f32le OUT.wav"),
    "faust": (".dsp", "a Faust program for real-time hosts (causal models)",
              "compile it with Faust (faust2lv2, faust2vst, faust2jack, ...)"),
    "camilladsp": (".yml", "CamillaDSP filters, mixer and pipeline steps (causal models)",
                   "merge its filters, mixers and pipeline into a CamillaDSP configuration"),
    "apo": (".txt", "Equalizer APO configuration lines (causal models)",
            "include it in Equalizer APO's config.txt (Include: {out})"),
    "fir": (".wav", "the whole model as one impulse response per channel, made causal by a latency, and a JSON beside "
                    "it stating the latency",
            "load it in a convolution host"),
}


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--format", "kind", required=True, type=click.Choice(list(FORMATS)),
              help=" ".join(f"{name}: {text}." for name, (_, text, _) in FORMATS.items()))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The file to write: " + ", ".join(f"{extension} for {name}"
                                                     for name, (extension, _, _) in FORMATS.items()) + ".")
@click.option("--fs", type=float, default=None,
              help="The session's sample rate (Hz), checked against the model's: coefficients are exact only at the "
                   "rate the model was fitted at.")
@click.option("--level-db", default=-120.0, show_default=True, type=click.FloatRange(max=0, max_open=True),
              help="With --format fir: cut the response where it stays below this level re its peak.")
@force_option
@quiet_option
@reports_errors
def export(model, kind, output, fs, level_db, force):
    """Write MODEL (from 'apftools align') for other hosts: scipy-ready sections, sox effects, an ffmpeg filter
    graph, a Faust program (plugins in every format), a CamillaDSP or Equalizer APO configuration, or one impulse
    response (fir) that runs even an offline model in a convolution host, with a stated latency."""
    import os

    from .. import export as formats
    from ..io import atomic_write, write_audio, write_json
    from ..model import Alignment

    extension, _, how = FORMATS[kind]
    if os.path.splitext(output)[1].lower() != extension:
        raise click.BadParameter(f"{output}: --format {kind} writes a {extension} file", param_hint="-o")
    beside = os.path.splitext(output)[0] + ".json"
    for path in (output,) + ((beside,) if kind == "fir" else ()):
        check_output(path, (model,), force)
    alignment = Alignment.load(model)
    if fs is not None and fs != alignment.fs:
        raise click.BadParameter(f"{fs:g} Hz, but {model} was fitted at {alignment.fs:g} Hz and its coefficients hold "
                                 f"only there: align again at {fs:g} Hz (or resample the session)", param_hint="--fs")
    latency = None
    if kind == "sos":
        write_json(output, formats.to_sos(alignment), overwrite=force)
    elif kind == "fir":
        responses, latency = formats.to_fir(alignment, 10.0 ** (level_db / 20.0))
        write_json(beside, {"format": formats.FIR_FORMAT, "fs": alignment.fs, "latency_samples": latency,
                            "level_db": level_db, "taps": responses.shape[1]}, overwrite=force)
        write_audio(output, responses, alignment.fs, overwrite=force)
        how = f"{how} ({responses.shape[1]} taps; {beside} states the latency)"
    else:
        text = {"sox": formats.to_sox, "ffmpeg": formats.to_ffmpeg, "camilladsp": formats.to_camilladsp,
                "faust": formats.to_faust, "apo": formats.to_apo}[kind](alignment)
        if isinstance(text, tuple):
            text, latency = text
        with atomic_write(output, overwrite=force) as temporary:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text)
    echo(f"wrote {output} ({alignment.mode} model at {alignment.fs:g} Hz): {how.format(out=output)}")
    if latency is not None:
        echo(f"latency {latency} samples ({1000.0 * latency / alignment.fs:.2f} ms): delay the wet by it, or let the "
             "host compensate")
