"""Sweep measurement against systems whose answer is known: scipy filters, delays, memoryless nonlinearities."""

import json

import numpy as np
import pytest
import scipy.signal
import soundfile
from click.testing import CliRunner

from apftools import Alignment, Cascade, ApftoolsValueError
from apftools.cli import main
from apftools.delay import apply_delay
from apftools.metrics import band_mix_deficit_db, mix_deficit_db
from apftools.sweep import SweepSpec, fit_models, measure
from apftools.synthetic import pink_noise

LEVEL = 10 ** (-12 / 20)  # the default sweep's amplitude


def rbj_peaking(f0, gain_db, q, fs):
    """One RBJ cookbook peaking-EQ biquad as an sos row."""
    a, w = 10 ** (gain_db / 40), 2 * np.pi * f0 / fs
    alpha = np.sin(w) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w), 1 - alpha / a]
    return np.concatenate([b, den]) / den[0]


def systems(fs):
    """name -> (process(x), the response at freqs (Hz), latency in samples)."""
    highpass = scipy.signal.butter(2, 80, "highpass", fs=fs, output="sos")
    eq = np.array([rbj_peaking(120, 6, 0.7, fs), rbj_peaking(2500, -4, 2.0, fs), rbj_peaking(9000, 3, 1.0, fs)])
    cascade = Cascade("2x2w,1", fs)
    theta = cascade.theta_from_params([{"R": 0.9, "fc": 300.0, "a": 0.2}, {"R": 0.7, "fc": 4000.0, "a": -0.1},
                                       {"fc": 1000.0}])

    def sos_response(sos):
        return lambda f: scipy.signal.sosfreqz(sos, worN=f, fs=fs)[1]

    def delayed(response, delay, sign=1):
        return lambda f: sign * response(f) * np.exp(-2j * np.pi * f / fs * delay)

    return {
        "butterworth highpass, 37.3 samples late": (
            lambda x: apply_delay(scipy.signal.sosfilt(highpass, x), 37.3), delayed(sos_response(highpass), 37.3),
            37.3),
        "RBJ EQ chain, inverted": (lambda x: -scipy.signal.sosfilt(eq, x), delayed(sos_response(eq), 0.0, -1), 0.0),
        "allpass cascade": (lambda x: cascade.process(theta, x), lambda f: cascade.freqz(theta, f)[1], None),
        "fractional delay, inverted": (lambda x: -apply_delay(x, 37.3), delayed(lambda f: np.ones(len(f)), 37.3, -1),
                                       37.3),
    }


@pytest.mark.parametrize("fs", [44100, 48000, 96000, 192000])
def test_known_systems_are_measured_to_the_targets(fs):
    """Latency within 0.02 samples, phase within 0.5 degree and magnitude within 0.05 dB over 20 Hz-20 kHz."""
    spec = SweepSpec(fs, seconds=2.0)
    freqs = np.geomspace(20.0, min(20000.0, 0.45 * fs), 200)
    for name, (process, response, latency) in systems(fs).items():
        (measured,) = measure(spec, process(spec.signal()[0]), fs)
        h = np.interp(freqs, measured.freqs_hz, measured.h.real) + 1j * np.interp(freqs, measured.freqs_hz,
                                                                                  measured.h.imag)
        expected = response(freqs)
        np.testing.assert_allclose(20 * np.log10(np.abs(h / expected)), 0.0, atol=0.05, err_msg=name)
        np.testing.assert_allclose(np.degrees(np.angle(h / expected)), 0.0, atol=0.5, err_msg=name)
        if latency is not None:
            assert measured.latency_samples == pytest.approx(latency, abs=0.02), name
        if latency is not None:  # an allpass's polarity and latency are conventions: GCC-PHAT's peak decides
            assert measured.polarity == (-1 if "inverted" in name else 1), name
        assert measured.thd_percent < 0.01 and measured.snr_db > 40, name


def fourier_ratio(function, order):
    """|c_order / c_1| of function(LEVEL sin t), the analytic harmonic level of a memoryless nonlinearity."""
    c = np.fft.rfft(function(LEVEL * np.sin(np.linspace(0, 2 * np.pi, 4096, endpoint=False))))
    return abs(c[order]) / abs(c[1])


@pytest.mark.parametrize(("name", "function", "orders"), [
    ("tanh, drive 1", np.tanh, (3, 5)),
    ("tanh, drive 4", lambda x: np.tanh(4 * x) / 4, (3, 5)),
    ("x + 0.1 x^2", lambda x: x + 0.1 * x**2, (2,)),
])
def test_harmonics_of_a_memoryless_nonlinearity_match_the_analytic_levels(name, function, orders):
    fs = 48000
    spec = SweepSpec(fs, seconds=4.0)
    (measured,) = measure(spec, function(spec.signal()[0]), fs)
    for order in orders:
        assert measured.harmonics_db[order] == pytest.approx(20 * np.log10(fourier_ratio(function, order)), abs=0.5)
    freqs = np.array([100.0, 1000.0, 4000.0])  # the fundamental's gain (higher up, aliased harmonics fold in)
    h = np.interp(freqs, measured.freqs_hz, np.abs(measured.h))
    gain = np.abs(np.fft.rfft(function(LEVEL * np.sin(np.linspace(0, 2 * np.pi, 4096, endpoint=False))))[1]) / (
        2048 * LEVEL)
    np.testing.assert_allclose(20 * np.log10(h / gain), 0.0, atol=0.05)
    assert measured.thd_percent == pytest.approx(
        100 * np.sqrt(sum(10 ** (v / 10) for v in measured.harmonics_db.values())))
    if name == "x + 0.1 x^2":  # no odd harmonics: the figure draws no curve of rounding noise for them
        from apftools.align import ChannelModel
        from apftools.plot import measurement_figure

        harmonic_ax = measurement_figure([measured], Alignment(fs, [ChannelModel(0.0, 1)])).axes[3]
        drawn = {line.get_label(): line.get_ydata() for line in harmonic_ax.get_lines()}
        assert "H2" in drawn and "H3" not in drawn and np.nanmin(drawn["H2"]) > -measured.snr_db


def test_repeats_agree_unless_the_effect_changes_between_them():
    fs = 48000
    spec = SweepSpec(fs, seconds=2.0, repeats=3)
    x = spec.signal()[0]
    (steady,) = measure(spec, 0.5 * x, fs)
    assert steady.time_variance_db < 1e-6 and steady.periods == 3
    (two,) = measure(spec, 0.5 * x[:2 * spec.period + spec.period // 2], fs)  # the third period cut off
    assert two.periods == 2
    changing = x.copy()
    changing[2 * spec.period:] *= 2.0  # the last period 6 dB louder
    (varying,) = measure(spec, changing, fs)
    assert varying.time_variance_db > 2.0
    (single,) = measure(SweepSpec(fs, seconds=2.0), x[:spec.period], fs)
    assert single.time_variance_db is None


def test_a_longer_or_cut_recording_with_another_level_is_measured():
    fs = 48000
    spec = SweepSpec(fs, seconds=2.0)
    y = 0.1 * apply_delay(spec.signal()[0], 100.0)
    for recording in (np.concatenate([y, np.zeros(fs)]), y[:-fs // 2]):
        (measured,) = measure(spec, recording, fs)
        assert measured.latency_samples == pytest.approx(100.0, abs=0.02)
        assert 20 * np.log10(np.interp(1000.0, measured.freqs_hz, np.abs(measured.h))) == pytest.approx(-20, abs=0.05)


def test_wrong_recordings_are_refused():
    fs = 48000
    spec = SweepSpec(fs, seconds=2.0)
    x = spec.signal()[0]
    with pytest.raises(ApftoolsValueError, match="44100 Hz but the sweep at 48000 Hz"):
        measure(spec, x, 44100)
    with pytest.raises(ApftoolsValueError, match="less than one period"):
        measure(spec, x[:fs], fs)
    with pytest.raises(ApftoolsValueError, match="channel 1: this does not look like the sweep"):
        measure(spec, pink_noise(len(x), fs, np.random.default_rng(0))[0], fs)
    with pytest.raises(ApftoolsValueError, match="does not look like the sweep"):  # latency beyond the room
        measure(SweepSpec(fs, seconds=2.0, max_latency_ms=10.0), apply_delay(x, 0.05 * fs), fs)
    with pytest.raises(ApftoolsValueError, match="2-channel sweep cannot give a 3-channel"):
        measure(SweepSpec(fs, seconds=2.0, channels=2), np.stack([x] * 3), fs)
    with pytest.raises(ApftoolsValueError, match="f_start_hz < f_stop_hz"):
        SweepSpec(fs, f_start_hz=100.0, f_stop_hz=50.0)


def test_the_description_round_trips_and_is_validated():
    spec = SweepSpec(96000, seconds=3.0, f_start_hz=20.0, level_dbfs=-6.0, channels=2, repeats=2)
    again = SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.f_stop_hz == 48000
    np.testing.assert_array_equal(again.signal(), spec.signal())
    assert spec.signal().shape == (2, 2 * spec.period)
    assert np.max(np.abs(spec.signal())) == pytest.approx(10 ** (-6 / 20), rel=1e-3)
    with pytest.raises(ApftoolsValueError, match="repeats must be an integer"):
        SweepSpec.from_dict(dict(spec.to_dict(), repeats=0))
    with pytest.raises(TypeError, match="channels must be an integer, got 1.5"):
        SweepSpec(48000, channels=1.5)
    with pytest.raises(ValueError, match=r"level_dbfs must be in \[-120, 0\] dBFS, got 3"):
        SweepSpec(48000, level_dbfs=3)
    with pytest.raises(ApftoolsValueError, match="not an apftools sweep"):
        SweepSpec.from_dict(dict(spec.to_dict(), format="other"))


def test_a_mono_sweep_into_a_stereo_effect_gives_a_model_per_channel_that_aligns_music():
    """Measured on the sweep, applied to music: the model aligns the music as the effect shifts it."""
    fs = 48000
    spec = SweepSpec(fs, seconds=4.0)
    low = scipy.signal.butter(2, 300, "lowpass", fs=fs, output="sos")

    def effect(x):  # left: a low-pass, 12 samples late; right: inverted and 30 samples late
        return np.stack([apply_delay(scipy.signal.sosfilt(low, x), 12.0), -apply_delay(x, 30.0)])

    measurements = measure(spec, effect(spec.signal()[0]), fs)
    assert [round(m.latency_samples) for m in measurements] == [12, 30]
    assert measurements[1].polarity == -1  # (GCC-PHAT calls the low-pass inverted: -180 degrees above 300 Hz)
    alignment, fits = fit_models(spec, measurements)
    assert alignment.channels == [0, 1] and alignment.dry_channels == 1
    assert all(fit["phase_error_deg"] < 5.0 for fit in fits)
    take = pink_noise(3 * fs, fs, np.random.default_rng(1))[0]
    wet = effect(take)
    aligned = Alignment.from_dict(alignment.to_dict()).apply(take)
    for c in range(2):
        assert mix_deficit_db(take, wet[c], fs) < -0.5
        assert mix_deficit_db(aligned[c], wet[c], fs) > -0.05
        assert np.nanmin(band_mix_deficit_db(aligned[c], wet[c], fs)[1]) > -0.5


def test_the_command_line_sweeps_measures_and_applies(tmp_path):
    runner = CliRunner()
    sweep_path, recorded, out = tmp_path / "sweep.wav", tmp_path / "recorded.wav", tmp_path / "measured"
    result = runner.invoke(main, ["sweep", "-o", str(sweep_path), "--fs", "48000", "--seconds", "3", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    spec = SweepSpec.from_dict(json.loads((tmp_path / "sweep.json").read_text()))
    played, fs = soundfile.read(str(sweep_path), always_2d=True)
    silence = spec.period / fs - 3.0  # the file is longer than --seconds: the line says by how much and why
    assert f"2 x {spec.period / fs:.2f} s: the 3 s sweep and {silence:.2f} s of silence" in result.output
    np.testing.assert_allclose(played[:, 0], spec.signal()[0], atol=1e-7)  # float32 WAV of the description
    soundfile.write(str(recorded), -apply_delay(np.tanh(3 * played[:, 0]) / 3, 25.0), fs, subtype="FLOAT")
    result = runner.invoke(main, ["measure", str(sweep_path), str(recorded), "-o", str(out), "--sections", "2x2w"])
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads((out / "report.json").read_text())
    assert report["latency_samples"] == pytest.approx(25.0, abs=0.02) and report["polarity"] == -1
    assert report["periods"] == 2 and report["channels"][0]["time_variance_db"] < 0.01
    expected = 20 * np.log10(fourier_ratio(lambda x: np.tanh(3 * x), 3))
    assert report["harmonics_db"]["3"] == pytest.approx(expected, abs=0.5)
    assert report["thd_percent"] > 1.0 and report["snr_db"] > 40
    assert sorted(p.name for p in out.iterdir()) == ["ir.wav", "model.json", "report.json", "report.png"]
    ir, _ = soundfile.read(str(out / "ir.wav"))
    assert np.argmax(np.abs(ir)) == 25 and ir[25] < 0  # the linear impulse response: 25 samples late, inverted
    assert f"latency {report['latency_samples']:+.2f} samples" in result.output and "polarity inverted" in result.output
    model = json.loads((out / "model.json").read_text())["models"][0]  # what is printed is what the model holds
    polarity = "inverted" if model["polarity"] < 0 else "normal"
    assert f"model: delay {model['delay_samples']:+.2f} samples, polarity {polarity}," in result.output
    refused = runner.invoke(main, ["measure", str(sweep_path), str(sweep_path), "-o", str(tmp_path / "x"),
                                   "--sections", "2x7q"])
    assert refused.exit_code == 2 and "--sections" in refused.output
