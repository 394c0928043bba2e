"""Tests of the ``apftools`` command line through click's CliRunner.

Signals are 1 s of seeded pink noise at 48 kHz through a known delay,
polarity and allpass cascade (:func:`apftools.synthetic.make_pair`), fitted
with the true cascade structure so the answer is known. One module-scoped
run of ``align --plot --mix 0.5`` serves the tests that inspect its outputs.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile
from click.testing import CliRunner

from apftools import Alignment, __version__
from apftools.bands import band_label
from apftools.cli import main
from apftools.synthetic import make_pair, pink_noise

FS = 48000
SPEC = "2x2w"
DELAY = 12.0  # samples
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA = Path(__file__).resolve().parent.parent / "data"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write(path, data, fs=FS):
    """Write ``data`` (shape (C, N)) as 32-bit float WAV, so peaks above 0 dBFS survive."""
    soundfile.write(str(path), np.atleast_2d(data).T, fs, subtype="FLOAT")
    return path


def read(path):
    data, fs = soundfile.read(str(path), dtype="float64", always_2d=True)
    return data.T, fs


def float32_tol(x):
    """One float32 step at the peak of ``x``: the rounding of a 32-bit float WAV."""
    return 2.0**-23 * np.max(np.abs(x))


def assert_error(result, *words, exit_code=1):
    """A clean failure: the given exit status, no traceback, one ``Error:`` line naming the problem."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ")
    for word in words:
        assert word in lines[-1]
    return lines


def fail(*args, words=()):
    """Run with --quiet (no progress) and check the error is the only line on stderr."""
    lines = assert_error(run("--quiet", *args), *words)
    assert len(lines) == 1, lines


@pytest.fixture(scope="module")
def pair():
    return make_pair(spec=SPEC, fs=FS, seconds=1.0, delay_samples=DELAY, polarity=-1, rng=2)


@pytest.fixture(scope="module")
def inputs(pair, tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    return write(folder / "dry.wav", pair.dry), write(folder / "wet.wav", pair.wet)


@pytest.fixture(scope="module")
def happy(inputs, tmp_path_factory):
    """One align run with --plot and --mix 0.5; returns (result, outdir)."""
    outdir = tmp_path_factory.mktemp("happy") / "out"
    result = run("align", *inputs, "-o", outdir, "--sections", SPEC, "--plot", "--mix", "0.5")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result, outdir


# --- align: the happy path ------------------------------------------------------------------------------------------

def test_aligned_wav_matches_the_dry_format(happy, pair):
    _, outdir = happy
    info = soundfile.info(str(outdir / "aligned.wav"))
    assert (info.frames, info.samplerate, info.channels, info.subtype) == (pair.dry.shape[1], FS, 1, "FLOAT")


def test_bits_sets_the_sample_format_of_every_audio_output(tmp_path):
    dry, wet = DATA / "dry.flac", DATA / "wet.flac"
    for bits in ("float", "16"):
        result = run("align", dry, wet, "-o", tmp_path / bits, "--sections", SPEC, "--mix", "0.5", "--bits", bits)
        assert result.exit_code == 0, result.stderr
    assert [soundfile.info(str(tmp_path / "16" / name)).subtype for name in ("aligned.wav", "mix.wav")] == \
        ["PCM_16", "PCM_16"]
    aligned, _ = read(tmp_path / "16" / "aligned.wav")
    floats, _ = read(tmp_path / "float" / "aligned.wav")
    assert np.max(np.abs(aligned - floats)) <= 1.5 / 32768 + 1e-7  # rounded and dithered, nothing else
    model = tmp_path / "16" / "model.json"
    applied = run("apply", model, dry, "-o", tmp_path / "x.flac", "--bits", "16")
    assert applied.exit_code == 0 and soundfile.info(str(tmp_path / "x.flac")).subtype == "PCM_16"
    refused = run("apply", model, dry, "-o", tmp_path / "y.flac", "--bits", "32")
    assert refused.exit_code == 1 and "FLAC takes 24, 16" in refused.stderr


def test_score_gives_aligns_numbers_without_fitting(happy, inputs, monkeypatch):
    import apftools.fit

    monkeypatch.setattr(apftools.fit, "fit_frequency", None)  # nothing is fitted
    report = json.loads((happy[1] / "report.json").read_text())["summary"]
    model = json.loads(run("score", *inputs, "--model", happy[1] / "model.json", "--json").stdout)
    for side in ("before", "after"):
        for key in ("mix_deficit_db", "worst_band_db", "phase_error_deg"):
            assert model[side][key] == pytest.approx(report[side][key], abs=1e-9), (side, key)
    aligned = json.loads(run("score", happy[1] / "aligned.wav", inputs[1], "--json").stdout)
    assert aligned["after"] is None
    for key in ("mix_deficit_db", "worst_band_db"):  # aligned.wav is the model's output, rounded to float32
        assert aligned["before"][key] == pytest.approx(report["after"][key], abs=0.01)
    human = run("score", happy[1] / "aligned.wav", inputs[1]).stdout.splitlines()
    assert human[0].startswith("50/50 mix deficit") and "->" not in human[0]


def test_model_json_renders_aligned_wav(happy, inputs):
    _, outdir = happy
    dry, _ = read(inputs[0])
    aligned, _ = read(outdir / "aligned.wav")
    expected = Alignment.load(outdir / "model.json").apply(dry)
    np.testing.assert_allclose(aligned, expected, rtol=0, atol=float32_tol(expected))


def test_report_improves_the_mix_and_recovers_delay_and_polarity(happy):
    result, outdir = happy
    report = json.loads((outdir / "report.json").read_text())
    before, after = report["before"], report["after"]
    # The wet is the polarity-inverted, delayed dry: the raw 50/50 mix cancels by several dB,
    # and a model of the true structure makes it almost lossless.
    assert before["mix_deficit_db"] < -3.0
    assert after["mix_deficit_db"] > -0.5
    (group,) = report["groups"]
    assert group["polarity"] == -1 and group["spec"] == SPEC
    # The cascade has the true structure and the noise is -60 dB, so the model is identifiable:
    # its bulk delay is the true delay, not the true delay plus some cascade group delay.
    assert group["delay_samples"] == pytest.approx(DELAY, abs=0.25)
    assert report["warnings"] == []
    assert report["settings"]["sections"] == SPEC and report["fs"] == FS
    assert result.stdout.splitlines()[-1].endswith(f" in {report['seconds']:.1f} s")  # the time it printed


def test_model_phase_matches_the_true_effect(happy, pair):
    _, outdir = happy
    freqs = np.array([200.0, 1000.0, 4000.0])
    phase, delay = Alignment.load(outdir / "model.json").models[0].response(freqs, FS)
    true_phase = -2 * np.pi * freqs / FS * DELAY + np.pi + pair.cascade.phase(pair.theta, freqs)
    true_delay = DELAY + pair.cascade.group_delay(pair.theta, freqs)
    np.testing.assert_allclose(np.angle(np.exp(1j * (phase - true_phase))), 0, atol=np.radians(3))
    np.testing.assert_allclose(delay, true_delay, atol=0.25)


def test_summary_on_stdout_progress_on_stderr(happy):
    result, _ = happy
    assert "mix deficit" in result.stdout and "polarity inverted" in result.stdout
    assert "aligning" in result.stderr and "aligning" not in result.stdout


def test_plot_writes_a_png(happy):
    _, outdir = happy
    assert (outdir / "report.png").read_bytes()[:8] == PNG_MAGIC


def test_the_summary_names_the_worst_band_before_and_after_by_its_nominal_frequency(happy):
    result, outdir = happy
    report = json.loads((outdir / "report.json").read_text())
    before, after = report["before"], report["after"]
    assert after["worst_band"] == band_label(after["worst_band_hz"])
    assert after["band_labels"] == [band_label(hz) for hz in after["bands_hz"]]
    line = next(line for line in result.stdout.splitlines() if line.startswith("worst 1/3-octave"))
    # the notch before alignment is named where it was, not where the worst band is afterwards
    assert f"dB ({before['worst_band']}) ->" in line and line.endswith(f"dB ({after['worst_band']})")
    assert after["worst_band"].endswith("Hz")


def test_json_prints_the_reports_summary_and_nothing_else(inputs, tmp_path):
    result = run("align", *inputs, "-o", tmp_path / "out", "--sections", SPEC, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    summary = json.loads(result.stdout)  # the whole of stdout is one JSON document
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert summary == report["summary"]
    (group,) = summary["groups"]
    assert group["polarity"] == -1 and group["delay_samples"] == pytest.approx(DELAY, abs=0.25)
    assert group["delay_ms"] == pytest.approx(1000 * group["delay_samples"] / FS)
    assert {k: group[k] for k in ("ring_time_ms", "pre_ring_ms", "post_ring_ms")} == {
        k: report["groups"][0][k] for k in ("ring_time_ms", "pre_ring_ms", "post_ring_ms")}
    for key in ("mix_deficit_db", "worst_band_db", "worst_band", "phase_error_deg"):
        assert summary["before"][key] == report["before"][key] and summary["after"][key] == report["after"][key]
    assert summary["mode"] == "offline" and summary["method"] == "lbfgs" and summary["fs"] == FS
    assert summary["outputs"] == [str(tmp_path / "out" / name) for name in ("aligned.wav", "model.json", "report.json")]
    assert "aligning" in result.stderr  # progress stays on stderr
    quiet = run("align", *inputs, "-o", tmp_path / "quiet", "--sections", SPEC, "--json", "-q")
    assert json.loads(quiet.stdout)["groups"][0]["delay_samples"] == group["delay_samples"] and quiet.stderr == ""
    assert_error(run("align", tmp_path / "missing.wav", inputs[1], "-o", tmp_path / "x", "--json"), "missing.wav")


def test_the_report_figure_has_its_five_panels_labelled(pair):
    from apftools import align
    from apftools.plot import report_figure

    result = align(pair.dry, pair.wet, FS, sections=SPEC)
    figure = report_figure(result, pair.dry, pair.wet)
    phase, delay, bands, ratio, impulse = figure.axes
    assert [ax.get_title()[:3] for ax in figure.axes] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    assert (phase.get_ylabel(), delay.get_ylabel(), ratio.get_xlabel()) == (
        "phase (degrees)", "group delay (ms)", "wet ratio (%)")
    assert [t.get_text() for t in bands.get_xticklabels()] == result.report["before"]["band_labels"]
    assert "-60 dB (ring time)" in [t.get_text() for t in impulse.get_legend().get_texts()]
    assert "largest" in delay.texts[0].get_text()  # the model's largest group delay is marked
    curve = result.report["after"]["mix_ratio_curve"]
    x, y = ratio.get_lines()[2].get_data()  # after, overall
    np.testing.assert_array_equal(x, 100 * np.array(curve["wet_ratio"]))
    np.testing.assert_array_equal(y, curve["mix_deficit_db"])
    # a model read back from its file carries no report: the figure measures the same curve itself
    loaded = report_figure(Alignment.from_dict(result.to_dict()), pair.dry, pair.wet)
    np.testing.assert_allclose(loaded.axes[3].get_lines()[2].get_ydata(), y, atol=1e-9)
    # before and after have one colour each in every panel
    from apftools.plot import AFTER, BEFORE

    from matplotlib.colors import to_rgba
    assert [line.get_color() for line in ratio.get_lines()] == [BEFORE, BEFORE, AFTER, AFTER]
    assert {to_rgba(p.get_facecolor())[:3] for p in bands.patches} == {to_rgba(BEFORE)[:3], to_rgba(AFTER)[:3]}


def test_the_report_figure_shows_each_bands_worst_channel_and_says_when_no_allpass_was_kept(pair):
    from apftools import align
    from apftools.metrics import mix_summary
    from apftools.plot import report_figure

    wet = np.vstack([pair.wet, -pair.wet[..., ::-1]])  # the right channel unrelated: nothing to align there
    result = align(pair.dry, wet, FS, sections=SPEC, link="separate")
    figure = report_figure(result, pair.dry, wet, title="a title")
    bands, impulse = figure.axes[2], figure.axes[4]
    before = np.array([mix_summary(pair.dry, w, FS)["band_deficit_db"] for w in wet], dtype=float)
    heights = np.array([p.get_height() for p in bands.patches[:before.shape[1]]])
    np.testing.assert_allclose(heights, np.min(before, axis=0), atol=1e-9)
    assert "worst channel" in bands.get_title() and figure.get_suptitle() == "a title"
    legend = [t.get_text() for t in impulse.get_legend().get_texts()]
    assert [result.models[1].cascade, legend[1]] == [None, "no allpass kept ch2: delay and polarity only"]


def test_mix_is_the_weighted_sum_of_aligned_and_wet(happy, inputs):
    _, outdir = happy
    mix, fs = read(outdir / "mix.wav")
    aligned, _ = read(outdir / "aligned.wav")
    wet, _ = read(inputs[1])
    expected = 0.5 * aligned + 0.5 * wet
    assert fs == FS
    np.testing.assert_allclose(mix, expected, rtol=0, atol=2 * float32_tol(expected))


def test_no_temporary_files_left(happy):
    _, outdir = happy
    assert sorted(p.name for p in outdir.iterdir()) == [
        "aligned.wav", "mix.wav", "model.json", "report.json", "report.png"]


# --- align: channels, resampling, short wet -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stereo_inputs(tmp_path_factory):
    stereo = make_pair(spec="1x2w", fs=FS, seconds=1.0, delay_samples=DELAY, polarity=1, n_channels=2, rng=3)
    folder = tmp_path_factory.mktemp("stereo")
    return write(folder / "dry.wav", stereo.dry), write(folder / "wet.wav", stereo.wet)


@pytest.mark.parametrize(("flags", "n_models"), [([], 1), (["--link"], 1), (["--per-channel"], 2)])
@pytest.mark.parametrize("quiet_after", [False, True])
def test_stereo_keeps_two_channels_quietly(stereo_inputs, tmp_path, flags, n_models, quiet_after):
    quiet = ["align", "-q"] if quiet_after else ["--quiet", "align"]  # -q after the subcommand too
    result = run(*quiet, *stereo_inputs, "-o", tmp_path / "out", "--sections", "1x2w", *flags)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert soundfile.info(str(tmp_path / "out" / "aligned.wav")).channels == 2
    model = Alignment.load(tmp_path / "out" / "model.json")
    assert len(model.models) == n_models
    assert all(m.delay_samples == pytest.approx(DELAY, abs=0.25) and m.polarity == 1 for m in model.models)


def test_resample_aligns_a_wet_at_another_rate(pair, inputs, tmp_path):
    wet_44k = write(tmp_path / "wet44.wav", scipy.signal.resample_poly(pair.wet, 147, 160, axis=-1), 44100)
    fail("align", inputs[0], wet_44k, "-o", tmp_path / "out", "--sections", SPEC,
         words=("48000 Hz", "44100 Hz", "--resample"))
    assert not (tmp_path / "out").exists()

    result = run("align", inputs[0], wet_44k, "-o", tmp_path / "out", "--sections", SPEC, "--resample")
    assert result.exit_code == 0, result.stderr
    info = soundfile.info(str(tmp_path / "out" / "aligned.wav"))
    assert (info.frames, info.samplerate) == (FS, FS)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["inputs"]["wet_resampled_from_hz"] == 44100
    assert report["groups"][0]["polarity"] == -1
    assert report["after"]["mix_deficit_db"] > report["before"]["mix_deficit_db"] + 3.0


def test_wet_shorter_than_dry_aligns_on_the_overlap(pair, inputs, tmp_path):
    short_wet = write(tmp_path / "short.wav", pair.wet[:, : int(0.6 * FS)])
    result = run("align", inputs[0], short_wet, "-o", tmp_path / "out", "--sections", SPEC)
    assert result.exit_code == 0, result.stderr
    assert soundfile.info(str(tmp_path / "out" / "aligned.wav")).frames == pair.dry.shape[1]
    assert "warning:" in result.stdout and "shorter" in result.stdout
    warnings = json.loads((tmp_path / "out" / "report.json").read_text())["warnings"]
    assert any("shorter" in w and str(int(0.6 * FS)) in w for w in warnings)


# --- align: bad input fails cleanly and writes nothing --------------------------------------------------------------

def _bad_files(tmp_path, pair):
    """name -> (dry path, wet path, words the message must contain)."""
    wet = write(tmp_path / "wet.wav", pair.wet)
    (tmp_path / "text.wav").write_text("not audio\n")
    nan = pair.dry.copy()
    nan[0, 1000:1010] = np.nan
    rng = np.random.default_rng(0)
    return {
        "missing": (tmp_path / "missing.wav", wet, ("missing.wav", "no such file")),
        "not audio": (tmp_path / "text.wav", wet, ("text.wav", "not an audio file")),
        "channels": (write(tmp_path / "dry2.wav", np.vstack([pair.dry, pair.dry])),
                     write(tmp_path / "wet3.wav", np.vstack([pair.wet] * 3)),
                     ("dry has 2 channels and wet 3", "a mono dry into an N-channel wet")),
        "nan": (write(tmp_path / "nan.wav", nan), wet, ("nan.wav", "10 NaN/Inf samples")),
        "silent": (write(tmp_path / "silent.wav", np.zeros_like(pair.dry)), wet, ("dry", "silent")),
        "too short": (write(tmp_path / "d.wav", pink_noise(FS // 10, FS, rng)),
                      write(tmp_path / "w.wav", pink_noise(FS // 10, FS, rng)), ("too short", "0.25 s")),
    }


@pytest.mark.parametrize("case", ["missing", "not audio", "channels", "nan", "silent", "too short"])
def test_bad_input_is_refused_with_one_line(tmp_path, pair, case):
    dry, wet, words = _bad_files(tmp_path, pair)[case]
    fail("align", dry, wet, "-o", tmp_path / "out", "--sections", SPEC, words=words)
    assert not (tmp_path / "out").exists()


def test_unknown_sections_spec_is_a_usage_error(inputs, tmp_path):
    assert_error(run("--quiet", "align", *inputs, "-o", tmp_path / "out", "--sections", "3x7q"),
                 "Invalid value for --sections", "'3x7q'", "cascade spec", exit_code=2)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value", [("--mix", "1.5"), ("--max-delay-ms", "0"), ("--seed", "-1"),
                                           ("--loss", "l1")])
def test_bad_option_values_are_rejected_by_click(inputs, tmp_path, option, value):
    result = run("align", *inputs, "-o", tmp_path / "out", option, value)
    assert_error(result, option, value, exit_code=2)
    assert not (tmp_path / "out").exists()


# --- align: existing outputs and inputs -----------------------------------------------------------------------------

def test_existing_outputs_need_force(happy, inputs, tmp_path):
    outdir = shutil.copytree(happy[1], tmp_path / "out")
    old = {p.name: p.read_bytes() for p in outdir.iterdir()}
    fail("align", *inputs, "-o", outdir, "--sections", SPEC, "--mix", "0.5", words=("aligned.wav", "--force"))
    assert {p.name: p.read_bytes() for p in outdir.iterdir()} == old

    result = run("align", *inputs, "-o", outdir, "--sections", SPEC, "--force")
    assert result.exit_code == 0, result.stderr
    # one run, one folder state: the earlier run's report.png and mix.wav, which this run does not write, are gone
    assert sorted(old) == ["aligned.wav", "mix.wav", "model.json", "report.json", "report.png"]
    assert sorted(p.name for p in outdir.iterdir()) == ["aligned.wav", "model.json", "report.json"]
    assert not [p for p in outdir.parent.iterdir() if p.name.startswith(".")]  # no staging folder left beside it
    # same seed, same inputs: the replaced model renders the same audio
    np.testing.assert_array_equal(read(outdir / "aligned.wav")[0], read(happy[1] / "aligned.wav")[0])


def test_output_onto_the_dry_is_refused_even_with_force(pair, inputs, tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    dry = write(outdir / "aligned.wav", pair.dry)
    before = dry.read_bytes()
    fail("align", dry, inputs[1], "-o", outdir, "--sections", SPEC, "--force",
         words=("aligned.wav", "inputs are never overwritten"))
    assert dry.read_bytes() == before
    assert [p.name for p in outdir.iterdir()] == ["aligned.wav"]


# --- apply ----------------------------------------------------------------------------------------------------------

@pytest.fixture
def other(tmp_path):
    """A different stereo file at the model's rate: a shared model applies to every channel."""
    return write(tmp_path / "other.wav", pink_noise(FS // 2, FS, np.random.default_rng(7), n_channels=2))


def test_apply_renders_the_model(happy, other, tmp_path):
    model = happy[1] / "model.json"
    result = run("apply", model, other, "-o", tmp_path / "rendered.wav")
    assert result.exit_code == 0, result.stderr
    assert "2 channel(s)" in result.stdout and "0.50 s" in result.stdout
    rendered, fs = read(tmp_path / "rendered.wav")
    expected = Alignment.load(model).apply(read(other)[0])
    assert fs == FS and rendered.shape == (2, FS // 2)
    np.testing.assert_allclose(rendered, expected, rtol=0, atol=float32_tol(expected))


def test_apply_mixes_with_the_wet_as_align_does(happy, inputs, tmp_path):
    result, outdir = happy  # align ran with --mix 0.5
    applied = run("apply", outdir / "model.json", inputs[0], "-o", tmp_path / "a.wav", "--mix", "0.5",
                  "--wet", inputs[1], "--mix-output", tmp_path / "m.wav")
    assert applied.exit_code == 0, applied.stderr
    np.testing.assert_allclose(read(tmp_path / "m.wav")[0], read(outdir / "mix.wav")[0], rtol=0, atol=1e-7)
    assert_error(run("--quiet", "apply", outdir / "model.json", inputs[0], "-o", tmp_path / "b.wav", "--mix", "0.5"),
                 "--mix, --wet and --mix-output go together", exit_code=2)


def test_apply_refuses_another_sample_rate(happy, tmp_path):
    source = write(tmp_path / "in44.wav", pink_noise(22050, 44100, np.random.default_rng(1)), 44100)
    fail("apply", happy[1] / "model.json", source, "-o", tmp_path / "o.wav", words=("44100 Hz", "48000 Hz"))
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("target", ["source", "model"])
def test_apply_never_overwrites_an_input(happy, other, tmp_path, target):
    model = shutil.copy(happy[1] / "model.json", tmp_path / "model.json")
    victim = {"source": other, "model": tmp_path / "model.json"}[target]
    before = victim.read_bytes()
    fail("apply", model, other, "-o", victim, "--force", words=("inputs are never overwritten",))
    assert victim.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "other.wav"]


def test_apply_refuses_a_file_that_is_not_a_model(inputs, other, tmp_path):
    fail("apply", inputs[0], other, "-o", tmp_path / "o.wav", words=("dry.wav", "not valid JSON"))
    assert not (tmp_path / "o.wav").exists()


# --- response -------------------------------------------------------------------------------------------------------

def test_response_table_matches_the_model(happy):
    model = happy[1] / "model.json"
    result = run("response", model)
    assert result.exit_code == 0, result.stderr
    rows = {float(line.split()[0]): [float(v) for v in line.split()[1:]]
            for line in result.stdout.splitlines() if line.strip()[:1].isdigit()}
    freqs = 1000.0 * 2.0 ** np.arange(-5, 5)  # octaves from 31.25 Hz, all below fs / 2
    assert sorted(rows) == list(np.round(freqs))  # printed as whole Hz
    phase, delay = Alignment.load(model).models[0].response(freqs, FS)
    table = np.array([rows[f] for f in sorted(rows)])
    np.testing.assert_allclose(table[:, 0], np.degrees(phase), atol=0.051)  # printed with one decimal
    np.testing.assert_allclose(table[:, 1], 1000 * delay / FS, atol=0.00051)
    np.testing.assert_allclose(table[:, 2], delay, atol=0.051)
    assert "polarity -1" in result.stdout and f"fs {FS} Hz" in result.stdout


def test_response_json_holds_the_models_response(happy):
    model = happy[1] / "model.json"
    result = run("response", model, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    [group] = data["groups"]
    phase, delay = Alignment.load(model).models[0].response(np.array(group["freqs_hz"]), FS)
    np.testing.assert_allclose(group["phase_deg"], np.degrees(phase), rtol=1e-12)  # unrounded, unlike the table
    np.testing.assert_allclose(group["group_delay_samples"], delay, rtol=1e-12)
    assert data["fs"] == FS and group["polarity"] == -1 and group["freqs_hz"][0] == 31.25
    # without the bulk delay: the phase differs from the whole model's by exactly omega * delay
    bare = json.loads(run("response", model, "--json", "--without-delay").stdout)["groups"][0]
    omega = 2 * np.pi * np.array(group["freqs_hz"]) / FS
    np.testing.assert_allclose(np.radians(np.subtract(bare["phase_deg"], group["phase_deg"])),
                               omega * group["delay_samples"], rtol=1e-9)
    np.testing.assert_allclose(np.subtract(group["group_delay_samples"], bare["group_delay_samples"]),
                               group["delay_samples"], rtol=1e-9)


def test_response_plot_writes_a_png(happy, tmp_path):
    result = run("response", happy[1] / "model.json", "--plot", tmp_path / "r.png")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_MAGIC
    fail("response", happy[1] / "model.json", "--plot", tmp_path / "r.png", words=("r.png", "--force"))


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"apftools, version {__version__}"


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["align", "--help"], ["apply", "--help"],
                                  ["response", "--help"]])
def test_start_up_imports_no_numeric_code(args):
    code = ("import sys; from apftools.cli import main\n"
            f"try: main({args!r})\n"
            "except SystemExit: pass\n"
            "heavy = sorted(m for m in ('numpy', 'scipy', 'numba', 'autograd', 'soundfile', 'matplotlib') "
            "if m in sys.modules)\n"
            "print('heavy:', heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("heavy: []"), result.stdout + result.stderr


def test_version_imports_no_subcommand():
    code = ("import sys; from apftools.cli import COMMANDS, main\n"
            "try: main(['--version'])\n"
            "except SystemExit: pass\n"
            "print('loaded:', sorted(c for c in COMMANDS if f'apftools.cli.{c}' in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("loaded: []"), result.stdout + result.stderr


@pytest.mark.parametrize("polish", [False, True])
def test_align_with_biasnet(inputs, tmp_path, polish):
    dry, wet = inputs
    outdir = tmp_path / "out"
    args = ["--quiet", "align", dry, wet, "-o", outdir, "--sections", SPEC, "--method", "biasnet",
            "--layers", "32,32", "--steps", "1000"] + (["--polish"] if polish else [])
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    report = json.loads((outdir / "report.json").read_text())
    assert report["method"] == ("biasnet+lbfgs" if polish else "biasnet")
    assert report["settings"]["layers"] == [32, 32]
    assert report["groups"][0]["biasnet"]["steps"] <= 1000
    assert ("time_fit" in report["groups"][0]) == polish
    assert report["after"]["mix_deficit_db"] > report["before"]["mix_deficit_db"] + 3.0
    # the model is plain physical parameters, applied without the network
    aligned, _ = read(outdir / "aligned.wav")
    np.testing.assert_allclose(Alignment.load(outdir / "model.json").apply(read(dry)[0]), aligned,
                               atol=float32_tol(aligned))


def test_bad_layers_are_refused(inputs, tmp_path):
    dry, wet = inputs
    assert_error(run("--quiet", "align", dry, wet, "-o", tmp_path / "out", "--layers", "64,x"),
                 "--layers", "64,x", exit_code=2)


def test_a_mono_dry_into_a_stereo_wet_writes_the_wets_channels_and_a_line_per_channel(pair, tmp_path):
    dry = write(tmp_path / "mono.wav", pair.dry)
    wet = write(tmp_path / "stereo.wav", np.vstack([pair.wet, pair.dry]))  # left processed, right untouched
    result = run("align", dry, wet, "-o", tmp_path / "out", "--sections", SPEC)
    assert result.exit_code == 0, result.stderr
    assert soundfile.info(str(tmp_path / "out" / "aligned.wav")).channels == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith("channel 1: delay") and any(line.startswith("channel 2: delay") for line in lines)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["dry_channels"] == 1 and report["linking"]["groups"] == [[0], [1]]
    assert all(row["after"]["mix_deficit_db"] > -0.05 for row in report["per_channel"])
    applied = run("apply", tmp_path / "out" / "model.json", dry, "-o", tmp_path / "again.wav")
    assert applied.exit_code == 0 and "(2 channel(s)" in applied.stdout


def test_a_multichannel_summary_gives_the_worst_channels_band_and_phase_error(pair, tmp_path):
    # the same effect, inverted on the right: pooled cross-spectra cancel (the widener's +45 and -45 degrees
    # printed a phase error of 0.0 before alignment) and average away one channel's notch
    dry = write(tmp_path / "mono.wav", pair.dry)
    wet = write(tmp_path / "stereo.wav", np.vstack([pair.wet, -pair.wet]))
    result = run("align", dry, wet, "-o", tmp_path / "out", "--sections", SPEC, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    for side in ("before", "after"):
        rows = [row[side] for row in summary["per_channel"]]
        worst = min(range(2), key=lambda c: rows[c]["worst_band_db"])
        assert summary[side]["worst_band_db"] == rows[worst]["worst_band_db"]
        assert summary[side]["worst_band_channel"] == worst
        assert summary[side]["phase_error_deg"] == max(row["phase_error_deg"] for row in rows)
    assert summary["before"]["phase_error_deg"] > 90.0  # the inverted channel's own, not a pooled cancellation
    human = run("align", dry, wet, "-o", tmp_path / "again", "--sections", SPEC).stdout.splitlines()
    assert any(line.startswith("worst 1/3-octave") and "channel" in line for line in human)
    # the Python API's report holds the same summary (of the same audio, not rounded to the files' float32)
    from apftools import align

    report = align(pair.dry, np.vstack([pair.wet, -pair.wet]), FS, sections=SPEC).report
    assert set(summary) - set(report["summary"]) == {"excerpts", "analysed_s", "outputs", "seconds"}
    for side in ("before", "after"):
        assert report["summary"][side]["worst_band_channel"] == summary[side]["worst_band_channel"]
        assert report["summary"][side]["worst_band_db"] == pytest.approx(summary[side]["worst_band_db"], abs=0.01)


def test_the_time_printed_includes_the_plot(inputs, tmp_path, monkeypatch):
    import time

    import apftools.plot

    monkeypatch.setattr(apftools.plot, "save_figure", lambda figure, path: (time.sleep(0.5), open(path, "w").close()))
    result = run("align", *inputs, "-o", tmp_path / "out", "--sections", SPEC, "--plot")
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "out" / "report.json").read_text())["seconds"] >= 0.5


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr (e2fsprogs) to make a folder immutable")
def test_align_into_a_folder_that_cannot_be_written_fails_before_reading_audio(tmp_path, monkeypatch):
    # an immutable folder: its permission bits allow writing (and root ignores them), yet nothing can be
    # created in it or renamed over it; only a real write tells
    out = tmp_path / "out"
    out.mkdir()
    if subprocess.run(["chattr", "+i", str(out)], capture_output=True).returncode != 0:
        pytest.skip("this file system or user cannot set the immutable flag")
    try:
        def no_reading(*args, **kwargs):
            raise AssertionError("audio was read before the output folder was checked")

        monkeypatch.setattr("apftools.io.AudioReader", no_reading)
        result = run("align", DATA / "dry.flac", DATA / "wet.flac", "-o", out)
        assert_error(result, str(out), "operation not permitted")
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left beside it
