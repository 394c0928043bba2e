"""Metrics on constructed signals with hand-computed values."""

import json

import numpy as np
import pytest
import scipy.signal

from apftools import metrics
from apftools.bands import band_label, nominal_hz, third_octave_centres, window_label
from apftools.errors import ApftoolsTypeError, ApftoolsValueError

FS = 48000
DB_90 = 10 * np.log10(2 / 4)  # |1 + j|^2 / (1 + 1)^2 for a 90-degree wet


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(1).standard_normal(FS)


@pytest.fixture(scope="module")
def hilbert(noise):
    """The noise shifted by -90 degrees at every frequency."""
    return np.imag(scipy.signal.hilbert(noise))


def test_identical(noise):
    assert metrics.mix_deficit_db(noise, noise, FS) == pytest.approx(0.0, abs=1e-12)
    assert metrics.phase_error_deg(noise, noise, FS) == pytest.approx(0.0, abs=1e-6)
    assert metrics.esr(noise, noise) == 0.0
    assert metrics.esr_db(noise, noise) == metrics.MIN_DB
    assert metrics.ncc(noise, noise) == pytest.approx(1.0)
    assert metrics.coherence_summary(noise, noise, FS) == pytest.approx(1.0, abs=1e-9)
    assert metrics.level_match_gain(noise, noise) == 1.0


def test_inverted(noise):
    assert metrics.mix_deficit_db(noise, -noise, FS) == metrics.MIN_DB
    assert metrics.phase_error_deg(noise, -noise, FS) == pytest.approx(180.0, abs=1e-6)
    assert metrics.esr(noise, -noise) == pytest.approx(4.0)  # (-2d)^2 / d^2
    assert metrics.esr_db(noise, -noise) == pytest.approx(10 * np.log10(4.0))
    assert metrics.ncc(noise, -noise) == pytest.approx(-1.0)
    centres, deficit = metrics.band_mix_deficit_db(noise, -noise, FS)
    assert np.all(deficit[~np.isnan(deficit)] == metrics.MIN_DB)


def test_hilbert(noise, hilbert):
    assert metrics.mix_deficit_db(noise, hilbert, FS) == pytest.approx(DB_90, abs=0.05)
    assert metrics.phase_error_deg(noise, hilbert, FS) == pytest.approx(90.0, abs=1.0)
    assert metrics.ncc(noise, hilbert) == pytest.approx(0.0, abs=0.02)
    # an allpass: same energy, so the ESR is |1 - (-j)|^2 = 2
    assert metrics.esr(noise, hilbert) == pytest.approx(2.0, abs=0.05)


def test_level_independence(noise, hilbert):
    assert metrics.level_match_gain(noise, 10 * noise) == pytest.approx(0.1)
    assert metrics.mix_deficit_db(noise, 10 * noise, FS) == pytest.approx(0.0, abs=1e-12)
    assert metrics.mix_deficit_db(noise, 10 * hilbert, FS) == pytest.approx(
        metrics.mix_deficit_db(noise, hilbert, FS), abs=1e-9)
    assert metrics.phase_error_deg(noise, 10 * hilbert, FS) == pytest.approx(
        metrics.phase_error_deg(noise, hilbert, FS), abs=1e-9)
    assert metrics.ncc(noise, 10 * noise) == pytest.approx(1.0)
    assert metrics.esr(noise, 10 * noise) == pytest.approx(0.81)  # (10 - 1)^2 / 10^2: ESR sees the level


def test_one_sample_delay(noise):
    """d + z^-1 d has |1 + e^{-jw}|^2 / 4 = cos^2(w/2) of the coherent sum at each frequency."""
    wet = np.concatenate([[0.0], noise[:-1]])
    # the mean of cos^2(w/2) over 0..pi is 1/2
    assert metrics.mix_deficit_db(noise, wet, FS) == pytest.approx(DB_90, abs=0.05)
    centres, deficit = metrics.band_mix_deficit_db(noise, wet, FS)
    for centre, value in zip(centres, deficit):
        if centre < 1000:
            continue
        w = 2 * np.pi * np.linspace(centre * 2 ** (-1 / 6), centre * 2 ** (1 / 6), 101) / FS
        assert value == pytest.approx(10 * np.log10(np.mean(np.cos(w / 2) ** 2)), abs=0.3), centre
    near_quarter = np.argmin(np.abs(centres - FS / 4))
    assert centres[near_quarter] == pytest.approx(1000 * 2 ** (11 / 3))  # 12.7 kHz
    assert deficit[near_quarter] == pytest.approx(10 * np.log10(0.45), abs=0.3)  # cos^2 averaged over the band
    assert metrics.worst_band(centres, deficit) == (centres[-1], deficit[-1])
    # ~ cos^2(pi/3) = 1/4 at 16 kHz
    assert deficit[-1] == pytest.approx(10 * np.log10(0.25), abs=0.5)


def test_band_centres():
    centres = metrics.third_octave_centres(FS)
    assert centres[0] == pytest.approx(1000 * 2 ** (-16 / 3))  # the nominal 25 Hz band
    assert centres[-1] == pytest.approx(1000 * 2 ** 4)  # nominal 16 kHz: 20.2 kHz is above 20 kHz
    assert np.allclose(centres[1:] / centres[:-1], 2 ** (1 / 3))
    assert metrics.third_octave_centres(16000)[-1] <= 0.45 * 16000


def test_bands_without_energy_are_nan(noise):
    lowpassed = scipy.signal.sosfilt(scipy.signal.butter(8, 2000, fs=FS, output="sos"), noise)
    centres, deficit = metrics.band_mix_deficit_db(lowpassed, lowpassed, FS)
    assert np.all(np.isnan(deficit[centres >= 8000]))  # > 96 dB down at 2 octaves above the cutoff
    assert np.all(deficit[(centres >= 100) & (centres <= 1000)] == pytest.approx(0.0, abs=1e-12))
    # 31.25 Hz band (27.8..35.1 Hz) lies between the 23.4 Hz and 46.9 Hz bins
    assert np.isnan(deficit[1])


def test_worst_band():
    assert metrics.worst_band([100.0, 200.0, 400.0], [-1.0, np.nan, -2.0]) == (400.0, -2.0)
    assert all(np.isnan(metrics.worst_band([100.0, 200.0], [np.nan, np.nan])))
    with pytest.raises(ApftoolsValueError, match="same shape"):
        metrics.worst_band([100.0], [1.0, 2.0])


def test_uncorrelated_coherence(noise):
    other = np.random.default_rng(2).standard_normal(FS)
    assert metrics.coherence_summary(noise, other, FS) < 0.1
    assert metrics.ncc(noise, other) == pytest.approx(0.0, abs=0.02)


def test_stereo_combines_channels(noise, hilbert):
    """Channel 0 is 90 degrees off, channel 1 identical; both have energy E."""
    dry, wet = np.stack([noise, noise]), np.stack([hilbert, noise])
    # mix: (2E + 4E) / (4E + 4E)
    assert metrics.mix_deficit_db(dry, wet, FS) == pytest.approx(10 * np.log10(6 / 8), abs=0.05)
    # S_dw summed: E (-j) + E = E (1 - j)
    assert metrics.phase_error_deg(dry, wet, FS) == pytest.approx(45.0, abs=1.0)
    assert metrics.ncc(dry, wet) == pytest.approx(0.5, abs=0.01)  # (0 + E) / 2E
    assert metrics.esr(dry, wet) == pytest.approx(1.0, abs=0.03)  # (2E + 0) / 2E


def test_common_length(noise):
    longer = np.concatenate([noise, np.ones(1000)])
    assert metrics.mix_deficit_db(noise, longer, FS) == pytest.approx(0.0, abs=1e-12)
    assert metrics.ncc(longer, noise) == pytest.approx(1.0)


def test_band_levels_and_the_bands_a_fit_weighs():
    # a 200 Hz tone and a 1 kHz tone 63 dB below it: the 1 kHz band is not judged (BAND_FLOOR is 60 dB
    # down) but is fitted (FIT_MARGIN_DB more)
    t = np.arange(4 * FS) / FS
    x = np.sin(2 * np.pi * 200 * t) + 10 ** (-63 / 20) * np.sin(2 * np.pi * 1000 * t)
    summary = metrics.mix_summary(x, x, FS)
    centres = np.array(summary["bands_hz"])
    tone, quiet = (int(np.argmin(np.abs(centres - f))) for f in (200, 1000))
    assert summary["band_level_db"][tone] == 0.0
    assert summary["band_level_db"][quiet] == pytest.approx(-63.0, abs=0.5)  # the 200 Hz band leaks a little
    assert summary["band_deficit_db"][quiet] is None and summary["band_deficit_db"][tone] == pytest.approx(0.0)
    fitted = metrics.fit_bands(summary["band_level_db"])
    assert fitted[quiet] == 1.0
    judged = np.array([v is not None for v in summary["band_deficit_db"]])
    assert np.all(fitted[judged] == 1.0)  # every judged band
    # the 500 Hz band holds the 200 Hz tone's window leakage, 72 dB down: not fitted; nor is anything above
    # 1 kHz; the 31.5, 40 and 63 Hz bands hold no STFT bin at 48 kHz: left to the fit's own measure (NaN)
    assert summary["band_level_db"][quiet - 3] < -65.0 and fitted[quiet - 3] == 0.0
    assert np.all(fitted[quiet + 1:] == 0.0)
    assert np.isnan(fitted[[1, 2, 4]]).all() and np.sum(np.isnan(fitted)) == 3
    # a band without an STFT bin (the 25 Hz band at 192 kHz) is left to the fit's own measure: NaN
    assert np.isnan(metrics.fit_bands([None, -3.0, -70.0])).tolist() == [True, False, False]
    assert metrics.fit_bands([None, -3.0, -70.0])[1:].tolist() == [1.0, 0.0]


def test_mix_report(noise, hilbert, monkeypatch):
    monkeypatch.setattr(metrics, "_residual_delay", lambda dry, wet, fs: 1.5)  # tested on its own
    report = metrics.mix_report(noise, hilbert, FS)
    assert list(report) == ["mix_deficit_db", "worst_band_hz", "worst_band_db", "worst_band", "bands_hz",
                            "band_labels", "band_deficit_db", "band_level_db", "window_labels", "window_deficit_db",
                            "mix_ratio_curve", "phase_error_deg", "esr", "ncc", "coherence", "residual_delay_samples"]
    centres, deficits = metrics.band_mix_deficit_db(noise, hilbert, FS)
    windows, judged = metrics.band_mix_deficit_db(noise, hilbert, FS, windows=True)
    np.testing.assert_array_equal(windows[::2], centres)  # every IEC band is a window
    assert report.pop("bands_hz") == centres.tolist()
    assert report.pop("band_labels") == [band_label(c) for c in centres]
    assert report.pop("window_labels") == [window_label(c) for c in windows]
    assert report.pop("worst_band") == window_label(report["worst_band_hz"])
    assert report.pop("mix_ratio_curve") == metrics.mix_ratio_curve(noise, hilbert, FS)
    np.testing.assert_array_equal(np.array(report.pop("band_deficit_db"), dtype=float), deficits)  # None -> NaN
    np.testing.assert_array_equal(np.array(report.pop("window_deficit_db"), dtype=float), judged)
    levels = np.array(report.pop("band_level_db"), dtype=float)
    assert np.nanmax(levels) == 0.0 and np.all(np.isnan(levels) == np.isnan(deficits))  # white noise: all bands
    assert all(type(value) is float for value in report.values())
    json.dumps(report, allow_nan=False)
    assert report["mix_deficit_db"] == metrics.mix_deficit_db(noise, hilbert, FS)
    assert (report["worst_band_hz"], report["worst_band_db"]) == metrics.worst_band(windows, judged)
    assert report["phase_error_deg"] == metrics.phase_error_deg(noise, hilbert, FS)
    assert report["coherence"] == metrics.coherence_summary(noise, hilbert, FS)
    assert report["esr"] == metrics.esr(noise, hilbert)
    assert report["ncc"] == metrics.ncc(noise, hilbert)
    assert report["residual_delay_samples"] == 1.5


def test_a_notch_between_two_bands_counts_fully_in_the_window_between_them(noise):
    # a narrow allpass at 1.41 kHz, the edge between the 1.25 and 1.6 kHz bands: the mix cancels there, and
    # the two bands each hold half of the notch
    b, a = scipy.signal.iirpeak(1410.0, 8.0, fs=FS)
    wet = scipy.signal.lfilter(a[::-1], a, noise)  # the allpass with the peak filter's poles
    centres, bands_db = metrics.band_mix_deficit_db(noise, wet, FS)
    windows, judged = metrics.band_mix_deficit_db(noise, wet, FS, windows=True)
    between = int(np.argmin(np.abs(windows - 1000.0 * 2 ** (3 / 6))))  # 1414 Hz: the window on that edge
    assert window_label(windows[between]) == "1.25-1.6 kHz"
    split = [bands_db[int(np.argmin(np.abs(centres - f)))] for f in (1250.0, 1600.0)]
    assert judged[between] < min(split) - 1.0  # the whole notch in one window
    summary = metrics.mix_summary(noise, wet, FS)
    assert (summary["worst_band"], summary["worst_band_db"]) == ("1.25-1.6 kHz", judged[between])


def test_residual_delay(noise):
    wet = np.concatenate([np.zeros(3), noise[:-3]])
    assert metrics.residual_delay_samples(noise, wet, FS) == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("function", [metrics.mix_deficit_db, metrics.band_mix_deficit_db, metrics.phase_error_deg,
                                      metrics.coherence_summary, metrics.mix_report])
def test_bad_inputs_with_fs(function, noise):
    with pytest.raises(ApftoolsValueError, match="wet signal is silent"):
        function(noise, np.zeros_like(noise), FS)
    with pytest.raises(ApftoolsValueError, match="2 channel.*1"):
        function(np.stack([noise, noise]), noise, FS)
    with pytest.raises(ApftoolsValueError, match="at least 64"):
        function(noise[:10], noise[:10], FS)
    with pytest.raises(ApftoolsTypeError, match="fs must be a real number"):
        function(noise, noise, "48k")


@pytest.mark.parametrize("function", [metrics.level_match_gain, metrics.esr, metrics.esr_db, metrics.ncc])
def test_bad_inputs_time_domain(function, noise):
    with pytest.raises(ApftoolsValueError, match="dry signal is silent"):
        function(np.zeros(10), noise)
    with pytest.raises(ApftoolsValueError, match=r"shape \(N,\) or \(C, N\)"):
        function(np.ones((1, 1, 4)), np.ones(4))


def test_band_harm_is_the_largest_loss_of_any_band_with_energy():
    from apftools.metrics import band_harm_db

    before = np.array([-1.0, -6.0, np.nan, -0.5])
    assert band_harm_db(before, [-0.5, -8.0, -20.0, -0.4]) == pytest.approx(-2.0)  # NaN bands do not count
    assert band_harm_db(before, [0.0, -3.0, 0.0, 0.0]) == 0.0  # every band gained: no harm
    with pytest.raises(ValueError, match="same shape"):
        band_harm_db(before, [0.0])


def test_mix_sums_piece_by_piece_are_the_whole_stft_sums():
    rng = np.random.default_rng(8)
    fs = 8000.0  # frames of 256, hop 64: 1246 frames, five pieces of at most 256
    dry = rng.standard_normal((2, 80000))
    wet = scipy.signal.lfilter([0.2, 0.7], [1.0, 0.3], dry)
    g = metrics.level_match_gain(dry, wet)
    kwargs = {"fs": fs, "window": "hann", "nperseg": 256, "noverlap": 192, "boundary": None, "padded": False}
    d, w = (scipy.signal.stft(x, **kwargs)[2] for x in (dry, g * wet))
    expected = 10 * np.log10(np.sum(np.abs(d + w) ** 2) / np.sum((np.abs(d) + np.abs(w)) ** 2))
    assert metrics.mix_deficit_db(dry, wet, fs) == pytest.approx(expected, abs=1e-12)


def test_mix_ratio_curve_hand_values(noise, hilbert):
    """Identical: 0 dB at every ratio; inverted: 20 log10 |1 - 2r|, the floor at 50%; 90 degrees: 0 dB at the ends."""
    identical = metrics.mix_ratio_curve(noise, 3 * noise, FS)
    assert identical["wet_ratio"] == list(metrics.WET_RATIOS)
    np.testing.assert_allclose(identical["mix_deficit_db"], 0.0, atol=1e-12)
    np.testing.assert_allclose(identical["worst_band_db"], 0.0, atol=1e-12)
    inverted = metrics.mix_ratio_curve(noise, -noise, FS, ratios=[0.0, 0.25, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(inverted["mix_deficit_db"], [0.0, 20 * np.log10(0.5), metrics.MIN_DB,
                                                            20 * np.log10(0.8), 0.0], atol=1e-9)
    assert inverted["worst_band_db"][2] == metrics.MIN_DB
    quadrature = metrics.mix_ratio_curve(noise, hilbert, FS, ratios=[0.0, 0.5, 1.0])["mix_deficit_db"]
    # |(1 - r) + r e^{-j pi/2}|^2 / ((1 - r) + r)^2 = (1 - r)^2 + r^2: -3.01 dB at 50%
    assert quadrature == pytest.approx([0.0, DB_90, 0.0], abs=0.05)
    assert quadrature[1] == metrics.mix_deficit_db(noise, hilbert, FS)
    with pytest.raises(ApftoolsValueError, match=r"wet ratios in \[0, 1\], got"):
        metrics.mix_ratio_curve(noise, noise, FS, ratios=[0.5, 1.5])


def test_band_labels_are_the_iec_61260_nominal_frequencies():
    """IEC 61260-1's nominal third-octave mid-band frequencies, 25 Hz to 20 kHz, for the exact base-2 centres."""
    nominal = [25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600,
               2000, 2500, 3150, 4000, 5000, 6300, 8000, 10000, 12500, 16000, 20000]
    centres = 1000.0 * 2.0 ** (np.arange(-16, 14) / 3)  # the exact base-2 centres of those bands
    assert [nominal_hz(c) for c in centres] == nominal
    np.testing.assert_allclose(third_octave_centres(96000), centres[:-1])  # 20 kHz's band reaches past 20 kHz
    assert [band_label(c) for c in centres[[0, 1, 16, 17, 22, 27]]] == [
        "25 Hz", "31.5 Hz", "1 kHz", "1.25 kHz", "4 kHz", "12.5 kHz"]
    assert band_label(12699.2) == "12.5 kHz" and band_label(5039.7) == "5 kHz"
