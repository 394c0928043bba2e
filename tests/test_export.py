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
from apftools.export import cascade_sos, render_sos, to_camilladsp, to_fir, to_sos, to_sox
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
    """A model with every part: fractional delays of both signs, both polarities, stretched sections; mono into
    stereo (one model each); the causal one without the anti-causal part or an advance."""
    causal_part, anticausal_part = Cascade("2x2w,1sw3", fs), Cascade("1w,2sw2", fs)
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


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox (Debian's package; .ci/run installs it)")
@pytest.mark.parametrize("fs", [44100, 96000])
@pytest.mark.parametrize("causal", [True, False])
def test_sox_runs_the_exported_effects_as_apply_does(tmp_path, fs, causal):
    alignment = models(fs, causal)
    for part in range(2):  # sox runs one chain for all channels: each channel's model on its own
        one = Alignment(fs, [alignment.models[part]], "lbfgs", mode=alignment.mode)
        (tmp_path / "model.sox").write_text(to_sox(one))
        x = np.random.default_rng(part).standard_normal(30000)
        x *= 0.25 / np.max(np.abs(x))  # peaks at -12 dBFS: sox passes int32 samples, which clip at full scale
        soundfile.write(str(tmp_path / "in.wav"), x, fs, subtype="FLOAT")
        subprocess.run(["sox", "--effects-file", str(tmp_path / "model.sox"), str(tmp_path / "in.wav"),
                        str(tmp_path / "out.wav")], check=True, capture_output=True)
        rendered, _ = soundfile.read(str(tmp_path / "out.wav"))
        reference = one.apply(x.astype(np.float32).astype(float))
        ring = len(one.models[0].impulse_response()[0])  # the ends differ by what rings past them
        inner = slice(ring, len(x) - 2 * ring)
        np.testing.assert_allclose(rendered[inner], reference[inner], rtol=0, atol=1e-6)
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
            for c in step["channels"]:
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
    text = to_camilladsp(alignment)
    np.testing.assert_allclose(render_camilladsp(text, SIGNAL, fs), alignment.apply(SIGNAL), rtol=0, atol=1e-9)
    fractional = Alignment(fs, [ChannelModel(12.37, 1, causal, causal.init(1))], "lbfgs", mode="causal")
    text = to_camilladsp(fractional)  # CamillaDSP's own subsample allpass takes the fraction
    assert f"delay: {12.37:.17e}" in text and "subsample: true" in text
    with pytest.raises(ApftoolsValueError, match="needs the future"):
        to_camilladsp(models(fs, causal=False))
