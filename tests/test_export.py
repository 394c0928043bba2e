"""apftools export: every section kind as scipy SOS rows, the whole model as SOS chains or one impulse response,
each checked against apftools' own rendering (Alignment.apply)."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import scipy.signal
import soundfile
from click.testing import CliRunner

from apftools import ApftoolsValueError, Cascade
from apftools.cli import main
from apftools.delay import FRACTIONAL_TAPS
from apftools.export import (allpass_by_frequency, cascade_sos, render_sos, to_apo, to_camilladsp, to_faust,
                              to_ffmpeg, to_fir, to_sos, to_sox)
from apftools.model import Alignment, ChannelModel

SIGNAL = np.random.default_rng(0).standard_normal((1, 6000))


@pytest.mark.parametrize("spec", ["1", "2", "1w", "2w", "1sw", "2sw", "1sw3,2sw5"])
@pytest.mark.parametrize("fs", [44100, 192000])
def test_every_section_kind_multiplies_out_to_sos_rows_that_filter_as_the_cascade(spec, fs):
    cascade = Cascade(spec, fs)
    for seed in range(3):
        theta = cascade.init(seed)
        rows = cascade_sos(cascade, theta)
        assert rows.shape == (sum(-(-k.order * k.stretch // 2) for k in cascade.kinds), 6)  # degree M: M/2 rows
        np.testing.assert_allclose(scipy.signal.sosfilt(rows, SIGNAL[0]), cascade.process(theta, SIGNAL[0]),
                                   rtol=0, atol=1e-11)
        poles = np.concatenate([np.roots(row[3:]) for row in rows])
        assert np.all(np.abs(poles) < 1.0)  # stable, as the cascade is


def models(fs, causal):
    """A model with every part: fractional delays of both signs, both polarities, every section kind; mono into
    stereo (one model each); the causal one without the anti-causal part or an advance."""
    causal_part, anticausal_part = Cascade("2x2w,1sw3,1,2", fs), Cascade("1w,2sw2", fs)
    left = ChannelModel(12.37, -1, causal_part, causal_part.init(1),
                        *(() if causal else (anticausal_part, anticausal_part.init(2))))
    right = ChannelModel(3.0 if causal else -5.5, 1, anticausal_part, anticausal_part.init(3))
    return Alignment(fs, [left, right], "lbfgs", mode="causal" if causal else "offline", channels=[0, 1],
                     dry_channels=1)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("fs", [44100, 48000, 96000, 192000])
def test_the_sos_export_renders_with_scipy_alone_as_apply_does(fs, causal):
    alignment = models(fs, causal)
    exported = json.loads(json.dumps(to_sos(alignment)))  # plain JSON
    assert exported["fs"] == fs and exported["mode"] == ("causal" if causal else "offline")
    np.testing.assert_allclose(render_sos(exported, SIGNAL), alignment.apply(SIGNAL), rtol=0, atol=1e-9)
    if causal:  # no anti-causal rows and no advance: what a real-time host runs (a negative shift is the
        # fractional FIR's look-ahead, its latency)
        assert all(channel["anticausal_sos"] == [] and channel["delay_samples"] >= 0
                   for channel in exported["channels"])


@pytest.mark.parametrize("level", [1e-6, 1e-9])
def test_the_fir_export_is_the_offline_model_later_by_its_latency(level):
    alignment = models(48000, causal=False)
    x = np.random.default_rng(1).standard_normal(20000)
    responses, latency = to_fir(alignment, level)
    taps = responses.shape[1]
    assert responses.shape[0] == 2 and isinstance(latency, int) and 0 < latency < taps
    convolved = np.array([scipy.signal.oaconvolve(x, h)[:len(x)] for h in responses])
    reference = alignment.apply(x[None])
    # away from the ends, where the same-length offline rendering drops what rings past them; the tails cut
    # below `level` of the peak add up to a few tens of `level` on unit-RMS noise
    inner = slice(taps, len(x) - latency - taps)
    error = convolved[:, latency:][:, inner] - reference[:, inner]
    assert np.max(np.abs(error)) < 100 * level
    peak = np.max(np.abs(responses))
    assert np.max(np.abs(responses[:, 0])) >= level * peak and np.max(np.abs(responses[:, -1])) >= level * peak


def test_the_command_line_writes_either_format_and_states_the_latency(tmp_path):
    alignment = models(48000, causal=False)
    model = tmp_path / "model.json"
    alignment.save(model)
    run = CliRunner().invoke
    sos = run(main, ["export", str(model), "--format", "sos", "-o", str(tmp_path / "sos.json")])
    assert sos.exit_code == 0, sos.output
    alignment = Alignment.load(model)  # its parameters as the file holds them
    assert json.loads((tmp_path / "sos.json").read_text()) == json.loads(json.dumps(to_sos(alignment)))
    fir = run(main, ["export", str(model), "--format", "fir", "-o", str(tmp_path / "ir.wav"), "--level-db", "-90"])
    assert fir.exit_code == 0, fir.output
    stated = json.loads((tmp_path / "ir.json").read_text())
    responses, latency = to_fir(alignment, 10 ** (-90 / 20))
    written, fs = soundfile.read(str(tmp_path / "ir.wav"), always_2d=True)
    assert (stated["latency_samples"], stated["fs"], fs) == (latency, 48000, 48000)
    np.testing.assert_allclose(written.T, responses, atol=1e-7)  # 32-bit float
    assert f"latency {latency} samples" in fir.output
    wrong = run(main, ["export", str(model), "--format", "fir", "-o", str(tmp_path / "ir.json")])
    assert wrong.exit_code == 2 and "writes a .wav file" in wrong.output
    elsewhere = run(main, ["export", str(model), "--format", "sos", "-o", str(tmp_path / "x.json"), "--fs", "44100"])
    assert elsewhere.exit_code == 2 and "fitted at 48000 Hz" in elsewhere.output and "--fs" in elsewhere.output
    causal = tmp_path / "causal.json"
    models(48000, causal=True).save(causal)
    for kind, name, function in (("ffmpeg", "graph.ffmpeg", to_ffmpeg), ("faust", "model.dsp", to_faust),
                                 ("apo", "config.txt", to_apo), ("camilladsp", "model.yml", to_camilladsp)):
        written = run(main, ["export", str(causal), "--format", kind, "-o", str(tmp_path / name)])
        assert written.exit_code == 0, written.output
        text = function(Alignment.load(causal))
        assert (tmp_path / name).read_text() == (text[0] if isinstance(text, tuple) else text)
        assert ("latency 19 samples" in written.output) == (kind in ("faust", "apo"))


def render_with(command, text, suffix, x, fs, tmp_path):
    """Run a host's ``command`` (a list with {script}, {input}, {output}) on ``x`` (channels, samples) written as
    a float64 WAV, with ``text`` as its script; the host's output, (channels, samples)."""
    script, source, target = (tmp_path / name for name in (f"model{suffix}", "in.wav", "out.wav"))
    script.write_text(text)
    soundfile.write(str(source), np.asarray(x).T, fs, subtype="DOUBLE")
    arguments = [part.format(script=script, input=source, output=target) for part in command]
    subprocess.run(arguments, check=True, capture_output=True)
    return soundfile.read(str(target), always_2d=True)[0].T


def layouts(fs, causal):
    """``(model, dry channels)``: :func:`models` (mono into stereo, one model per channel), and its second model
    alone on a stereo pair (one model for both channels)."""
    alignment = models(fs, causal)
    return [(alignment, 1), (Alignment(fs, [alignment.models[1]], "lbfgs", mode=alignment.mode), 2)]


def long_noise(alignment, channels, seed=2):
    """Noise long enough to compare 8000 samples away from the ends, where a host's rendering and apply's differ by
    what rings past them, and that slice."""
    ring = max(len(m.impulse_response()[0]) + abs(int(m.delay_samples)) for m in alignment.models) + FRACTIONAL_TAPS
    return np.random.default_rng(seed).standard_normal((channels, 8000 + 2 * ring)), slice(ring, 8000 + ring)


FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", "{input}", "-filter_complex_script",
          "{script}", "-c:a", "pcm_f64le", "{output}"]


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox (Debian's package; .ci/run installs it)")
@pytest.mark.parametrize("fs", [44100, 48000, 96000, 192000])
@pytest.mark.parametrize("causal", [True, False])
def test_sox_runs_the_exported_effects_as_apply_does(tmp_path, fs, causal):
    alignment = models(fs, causal)
    for part in range(2):  # sox runs one chain for all channels: each channel's model on its own
        one = Alignment(fs, [alignment.models[part]], "lbfgs", mode=alignment.mode)
        signal, inner = long_noise(one, 1, seed=part)
        signal *= 0.25 / np.max(np.abs(signal))  # peaks at -12 dBFS: sox passes int32 samples, which clip at 0 dBFS
        rendered = render_with(["sox", "--effects-file", "{script}", "{input}", "{output}"], to_sox(one), ".sox",
                               signal, fs, tmp_path)
        np.testing.assert_allclose(rendered[:, inner], one.apply(signal)[:, inner], rtol=0, atol=1e-6)
    with pytest.raises(ApftoolsValueError, match="one per channel group"):
        to_sox(alignment)


def render_camilladsp(text, x, fs):
    """A test-side reader of the CamillaDSP (v3) grammar the export uses (Mixer, Filter steps; Delay in samples,
    Gain, Biquad Free), rendering with scipy; integer delays only (CamillaDSP's subsample allpass is its own)."""
    import yaml

    config = yaml.safe_load(text)
    signals = np.atleast_2d(x).astype(float)
    for step in config["pipeline"]:
        if step["type"] == "Mixer":
            mapping = config["mixers"][step["name"]]["mapping"]
            signals = np.array([sum(signals[s["channel"]] for s in m["sources"]) for m in mapping])
            continue
        for name in step["names"]:
            kind, parameters = config["filters"][name]["type"], config["filters"][name]["parameters"]
            for c in step.get("channels") or range(len(signals)):  # left out or null: every channel
                if kind == "Delay":
                    assert parameters["delay_unit"] == "samples" and not parameters["subsample"]
                    k = int(parameters["delay"])
                    signals[c] = np.concatenate([np.zeros(k), signals[c][:len(signals[c]) - k]])
                elif kind == "Gain":
                    signals[c] = (-1 if parameters["inverted"] else 1) * 10 ** (parameters["gain"] / 20) * signals[c]
                else:
                    assert kind == "Biquad" and parameters["type"] == "Free"
                    row = [parameters[k] for k in ("b0", "b1", "b2")] + [1.0, parameters["a1"], parameters["a2"]]
                    signals[c] = scipy.signal.sosfilt(row, signals[c])
    return signals


@pytest.mark.parametrize("fs", [44100, 192000])
def test_the_camilladsp_configuration_renders_as_apply_does(fs):
    causal = Cascade("2x2w,1sw3", fs)
    parts = [ChannelModel(12.0, -1, causal, causal.init(1)), ChannelModel(3.0, 1, causal, causal.init(2))]
    alignment = Alignment(fs, parts, "lbfgs", mode="causal", channels=[0, 1], dry_channels=1)
    linked = Alignment(fs, parts[:1], "lbfgs", mode="causal")  # one model for every channel of a stereo pair
    for model, signal in ((alignment, SIGNAL), (linked, np.vstack([SIGNAL, -SIGNAL[:, ::-1]]))):
        np.testing.assert_allclose(render_camilladsp(to_camilladsp(model), signal, fs), model.apply(signal), rtol=0,
                                   atol=1e-9)
    fractional = Alignment(fs, [ChannelModel(12.37, 1, causal, causal.init(1))], "lbfgs", mode="causal")
    text = to_camilladsp(fractional)  # CamillaDSP's own subsample allpass takes the fraction
    assert f"delay: {12.37:.17e}" in text and "subsample: true" in text
    with pytest.raises(ApftoolsValueError, match="needs the future"):
        to_camilladsp(models(fs, causal=False))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (Debian's package; .ci/run installs it)")
@pytest.mark.parametrize("fs", [44100, 48000, 96000, 192000])
@pytest.mark.parametrize("causal", [True, False])
def test_ffmpeg_runs_the_exported_graph_as_apply_does_in_float64(tmp_path, fs, causal):
    for model, channels in layouts(fs, causal):
        signal, inner = long_noise(model, channels)
        rendered = render_with(FFMPEG, to_ffmpeg(model), ".ffmpeg", signal, fs, tmp_path)
        reference = model.apply(signal)
        assert rendered.shape[0] == reference.shape[0]
        np.testing.assert_allclose(rendered[:, inner], reference[:, inner], rtol=0, atol=1e-9)


#: A test-side architecture for Faust's C++: the generated class, float64 samples, interleaved frames from stdin to
#: stdout (Faust's own architectures need its headers; this program needs only a C++ compiler).
FAUST_HOST = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
struct Meta { void declare(const char*, const char*) {} };
struct UI { void openVerticalBox(const char*) {} void closeBox() {} };
struct dsp { virtual ~dsp() {} };
#define FAUSTFLOAT double
#include "model.cpp"
int main(int argc, char** argv) {
    apftools model;
    model.init(std::atoi(argv[1]));
    int n_in = model.getNumInputs(), n_out = model.getNumOutputs();
    std::vector<double> frames;
    double sample;
    while (std::fread(&sample, sizeof sample, 1, stdin) == 1) frames.push_back(sample);
    int n = (int)(frames.size() / n_in);
    std::vector<std::vector<double>> in(n_in, std::vector<double>(n)), out(n_out, std::vector<double>(n));
    std::vector<double*> ins, outs;
    for (int c = 0; c < n_in; c++) {
        for (int t = 0; t < n; t++) in[c][t] = frames[t * n_in + c];
        ins.push_back(in[c].data());
    }
    for (int c = 0; c < n_out; c++) outs.push_back(out[c].data());
    model.compute(n, ins.data(), outs.data());
    for (int t = 0; t < n; t++) for (int c = 0; c < n_out; c++) std::fwrite(&out[c][t], sizeof(double), 1, stdout);
}
"""


@pytest.mark.skipif(shutil.which("faust") is None or shutil.which("g++") is None,
                    reason="needs faust and g++ (Debian's packages; .ci/run installs them)")
@pytest.mark.parametrize("fs", [44100, 48000, 96000, 192000])
def test_the_faust_program_compiles_and_runs_as_apply_does_later_by_its_latency(tmp_path, fs):
    for alignment, channels in layouts(fs, causal=True):
        text, latency = to_faust(alignment)
        (tmp_path / "model.dsp").write_text(text)
        subprocess.run(["faust", "-lang", "cpp", "-double", "-cn", "apftools", str(tmp_path / "model.dsp"), "-o",
                        str(tmp_path / "model.cpp")], check=True, capture_output=True)
        (tmp_path / "host.cpp").write_text(FAUST_HOST)
        subprocess.run(["g++", "-O1", "-o", str(tmp_path / "host"), str(tmp_path / "host.cpp")], check=True,
                       capture_output=True)
        signal, inner = long_noise(alignment, channels)
        # one model for every channel is a mono program, run on each channel as a host runs a mono plugin
        pieces = [signal] if alignment.channels is not None else [signal[c:c + 1] for c in range(channels)]
        rendered = np.vstack([np.frombuffer(subprocess.run([str(tmp_path / "host"), str(fs)], input=piece.T.tobytes(),
                                                           check=True, capture_output=True).stdout).reshape(
                                                               piece.shape[1], -1).T for piece in pieces])
        np.testing.assert_allclose(rendered[:, latency:][:, inner], alignment.apply(signal)[:, inner], rtol=0,
                                   atol=1e-9)
    # the mono model's fractional FIR looks ahead 31 samples, less its delay's whole 12 (12.37); the other's 3.0 is
    # whole, without an FIR
    assert to_faust(models(fs, causal=True))[1] == FRACTIONAL_TAPS // 2 - 1 - 12
    with pytest.raises(ApftoolsValueError, match="needs the future"):
        to_faust(models(fs, causal=False))


def render_apo(text, x, fs):
    """A test-side reader of the Equalizer APO grammar the export uses (its parser's rules: ``If: sampleRate ==``,
    ``Copy: T=S`` and ``T=F*S``, ``Channel:``, ``Delay: N samples`` rounded to whole samples, ``Filter: ON IIR
    Order N Coefficients b0..bN a0..aN``), rendering with scipy in float64."""
    import re

    signals, selected = np.array(np.atleast_2d(x), dtype=float), None
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == f"If: sampleRate == {fs:g}" and lines[-1] == "EndIf:"
    for line in lines[1:-1]:
        command, parameters = (part.strip() for part in line.split(":", 1))
        if command == "Copy":
            for assignment in parameters.split(" "):
                target, source = assignment.split("=")
                factor, _, channel = source.rpartition("*")
                if len(signals) < int(target):
                    signals = np.vstack([signals, np.zeros((int(target) - len(signals), signals.shape[1]))])
                signals[int(target) - 1] = float(factor or 1.0) * signals[int(channel) - 1]
        elif command == "Channel":
            selected = None if parameters.lower() == "all" else [int(c) - 1 for c in parameters.split()]
        elif command == "Delay":
            value, unit = parameters.split()
            k = int(float(value) + 0.5)
            assert unit == "samples"
            for c in range(len(signals)) if selected is None else selected:
                signals[c] = np.concatenate([np.zeros(k), signals[c][:signals.shape[1] - k]])
        else:
            match = re.fullmatch(r"ON IIR Order ([0-9]+) Coefficients((?: [-+0-9.eE]+)+)", parameters)
            assert command == "Filter" and match, line
            order, numbers = int(match.group(1)), [float(v) for v in match.group(2).split()]
            assert len(numbers) == 2 * (order + 1)
            for c in range(len(signals)) if selected is None else selected:
                signals[c] = scipy.signal.lfilter(numbers[:order + 1], numbers[order + 1:], signals[c])
    return signals


@pytest.mark.parametrize("fs", [44100, 192000])
def test_the_equalizer_apo_configuration_renders_as_apply_does_later_by_its_latency(fs):
    for alignment, channels in layouts(fs, causal=True):
        text, latency = to_apo(alignment)
        signal, inner = long_noise(alignment, channels)
        np.testing.assert_allclose(render_apo(text, signal, fs)[:, latency:][:, inner],
                                   alignment.apply(signal)[:, inner], rtol=0, atol=1e-9)
    with pytest.raises(ApftoolsValueError, match="needs the future"):
        to_apo(models(fs, causal=False))


def rbj_rows(sections, fs):
    """SOS rows of allpasses set by frequency and Q, by the formulas CamillaDSP's ``Allpass`` (the RBJ cookbook's)
    and ``AllpassFO`` use."""
    rows = []
    for section in sections:
        omega = 2 * np.pi * section["f0_hz"] / fs
        if section["order"] == 2:
            alpha = np.sin(omega) / (2 * section["q"])
            row = [1 - alpha, -2 * np.cos(omega), 1 + alpha, 1 + alpha, -2 * np.cos(omega), 1 - alpha]
        else:
            alpha = (np.tan(omega / 2) + 1) / (np.tan(omega / 2) - 1)
            row = [1.0, alpha, 0.0, alpha, 1.0, 0.0]
        rows.append(np.array(row) / row[3])
    return np.array(rows)


@pytest.mark.parametrize("spec", ["1", "2", "1w", "2w", "1sw", "2sw", "1sw3,2sw5"])
@pytest.mark.parametrize("fs", [44100, 192000])
def test_allpass_rows_by_frequency_and_q_rebuild_the_cascade(spec, fs):
    cascade = Cascade(spec, fs)
    for seed in range(3):
        rows = cascade_sos(cascade, cascade.init(seed))
        sections, gain = allpass_by_frequency(rows, fs)
        assert abs(abs(gain) - 1.0) < 1e-12 and all(0 < s["f0_hz"] < fs / 2 for s in sections)
        np.testing.assert_allclose(gain * scipy.signal.sosfilt(rbj_rows(sections, fs), SIGNAL[0]),
                                   scipy.signal.sosfilt(rows, SIGNAL[0]), rtol=0, atol=1e-9)
    # real poles (Q <= 1/2) become two first-order allpasses; a row that is no allpass is refused
    denominator = np.convolve([1.0, 0.5], [1.0, -0.3])  # poles at -0.5 and 0.3
    sections, gain = allpass_by_frequency([[*denominator[::-1], *denominator]], fs)
    assert [s["order"] for s in sections] == [1, 1] and gain == pytest.approx(1.0)
    with pytest.raises(ApftoolsValueError, match="not an allpass"):
        allpass_by_frequency([[1.0, 0.2, 0.1, 1.0, 0.3, 0.1]], fs)
