"""Measured transfer functions: Welch H1 estimate, coherence, log grid, group delay."""

import dataclasses

import numpy as np
import pytest
import scipy.signal

from apftools import ApftoolsValueError, bands
from apftools.response import TransferFunction, default_nperseg, log_grid, low_frequency_sign, transfer_function

FS = 48000


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(1).standard_normal((2, 4 * FS))


def test_h1_estimate_matches_the_filter_response(noise):
    sos = scipy.signal.butter(2, [300, 3000], "bandpass", fs=FS, output="sos")
    tf = transfer_function(noise, scipy.signal.sosfilt(sos, noise), FS)
    _, expected = scipy.signal.sosfreqz(sos, worN=tf.freqs_hz, fs=FS)
    band = (tf.freqs_hz > 100) & (tf.freqs_hz < 10000)
    # a linear filter of the dry: coherence 1 and H equal to the filter's response
    # (Welch's Hann segments smear a little where the response is steep)
    np.testing.assert_allclose(tf.h[band], expected[band], atol=5e-3)
    assert np.min(tf.coherence[band & (np.abs(expected) > 0.1)]) > 0.99
    assert tf.fs == FS and tf.freqs_hz[-1] == FS / 2


def test_coherence_falls_with_added_noise(noise):
    rng = np.random.default_rng(2)
    tf = transfer_function(noise, noise + rng.standard_normal(noise.shape), FS)
    # equal signal and noise power: gamma^2 = 1 / (1 + 1) = 0.5
    assert np.median(tf.coherence) == pytest.approx(0.5, abs=0.03)
    np.testing.assert_allclose(np.median(np.real(tf.h)), 1.0, atol=0.03)


def test_weights_give_every_band_with_energy_its_mean_coherence():
    freqs = np.array([100.0, 105.0, 200.0, 1000.0, 21000.0])  # bands 100, 100, 200, 1000 Hz; 21 kHz in none
    coherence = np.array([1.0, 0.5, 0.8, 1.0, 1.0])
    power = np.array([1.0, 3.0, 10.0, 1e-10, 1.0])  # the 1 kHz band is 93 dB below the 200 Hz band: no energy
    tf = TransferFunction(freqs, np.ones(5, complex), coherence, power, np.zeros(5), FS)
    # band 100 Hz: total 0.75 (mean coherence) shared as gamma^2 P = 1 : 1.5; band 200 Hz: 0.8
    raw = np.array([0.75 * 1.0 / 2.5, 0.75 * 1.5 / 2.5, 0.8, 0.0, 0.0])
    np.testing.assert_allclose(tf.weights, raw / raw.sum())
    # given bands (the ones the metrics judge) overrule the level: the 1 kHz band gets its full share, the
    # 200 Hz band none; NaN leaves the 100 Hz band to its level
    given = np.zeros(len(bands.third_octave_centres(FS)))
    k100, k200, k1000 = bands.third_octave_index(freqs[[0, 2, 3]], FS)
    given[k100], given[k1000] = np.nan, 1.0
    chosen = dataclasses.replace(tf, bands=given)
    np.testing.assert_allclose(chosen.weights, np.array([0.3, 0.45, 0.0, 1.0, 0.0]) / 1.75)
    np.testing.assert_array_equal(chosen.select(np.array([True, True, True, True, False])).bands, chosen.bands)
    np.testing.assert_array_equal(tf.select(np.array([True, False, True, False, False])).freqs_hz, [100.0, 200.0])


def test_which_bands_have_energy_does_not_depend_on_how_many_bins_the_grid_kept():
    # power density falling as f^-3: the 16 kHz band's mean level times its width is 56 dB below the
    # 25 Hz band's, but a 128-point log grid keeps 4 of its 1266 bins, so bin sums would put it at 81 dB
    freqs = np.linspace(0.0, FS / 2, 8193)[1:]
    power = (20.0 / freqs) ** 3
    tf = TransferFunction(freqs, np.ones(len(freqs), complex), np.ones(len(freqs)), power, np.zeros(len(freqs)), FS)

    def bands_with_weight(t):
        index = bands.third_octave_index(t.freqs_hz, FS)
        return np.bincount(index[index >= 0], t.weights[index >= 0], len(bands.third_octave_centres(FS))) > 0

    full, thinned = bands_with_weight(tf), bands_with_weight(log_grid(tf, n_points=128))
    np.testing.assert_array_equal(full, thinned)
    assert full[bands.third_octave_centres(FS).searchsorted(15000.0)]  # the 16 kHz band


def test_log_grid_keeps_every_low_bin_and_thins_the_top(noise):
    tf = transfer_function(noise, noise, FS)
    grid = log_grid(tf, n_points=256)
    assert grid.freqs_hz[0] >= 20.0 and grid.freqs_hz[-1] <= 20000.0
    assert np.all(np.diff(grid.freqs_hz) > 0)
    assert len(grid.freqs_hz) <= 256
    low = tf.freqs_hz[(tf.freqs_hz >= 20) & (tf.freqs_hz <= 100)]
    np.testing.assert_array_equal(grid.freqs_hz[grid.freqs_hz <= 100], low)
    # the grid is close to log-spaced at the top: successive ratios stay near (20000/20)**(1/255)
    top = grid.freqs_hz[grid.freqs_hz > 2000]
    assert np.max(top[1:] / top[:-1]) < 1.05


def test_log_grid_stays_below_nyquist_at_low_rates():
    fs = 16000
    x = np.random.default_rng(3).standard_normal(fs)
    grid = log_grid(transfer_function(x, x, fs))
    assert grid.freqs_hz[-1] <= 0.45 * fs


def test_group_delay_of_a_pure_delay(noise):
    delay = 25
    wet = np.concatenate([np.zeros((2, delay)), noise[:, :-delay]], axis=1)
    tau = log_grid(transfer_function(noise, wet, FS)).group_delay
    np.testing.assert_allclose(np.median(tau), delay, atol=0.05)


def test_default_segment_scales_with_fs_and_length():
    assert default_nperseg(48000, 10**6) == 8192
    assert default_nperseg(96000, 10**6) == 16384
    assert default_nperseg(48000, 8000) == 1024  # a power of two, at most a quarter of a short signal


def test_shape_and_length_errors(noise):
    with pytest.raises(ApftoolsValueError, match="same shape"):
        transfer_function(noise, noise[:1], FS)
    with pytest.raises(ApftoolsValueError, match="shorter than one Welch segment"):
        transfer_function(noise[:, :100], noise[:, :100], FS, nperseg=256)


def test_welch_summed_piece_by_piece_is_scipys_over_the_whole_signal():
    rng = np.random.default_rng(7)
    dry = rng.standard_normal((2, 64 * 600)) + 0.5  # 1199 segments of 64: five pieces of at most 256; each
    # segment's mean is removed, as scipy does
    wet = scipy.signal.lfilter([0.5, 0.3], [1.0, -0.4], dry) + 0.1 * rng.standard_normal(dry.shape)
    tf = transfer_function(dry, wet, 8000.0, nperseg=64)
    kwargs = {"fs": 8000.0, "nperseg": 64, "window": "hann"}
    s_dw = np.sum(scipy.signal.csd(dry, wet, **kwargs)[1], axis=0)
    s_dd, s_ww = (np.sum(scipy.signal.welch(x, **kwargs)[1], axis=0) for x in (dry, wet))
    np.testing.assert_allclose(tf.h, s_dw / s_dd, rtol=1e-12)
    np.testing.assert_allclose(tf.coherence, np.abs(s_dw) ** 2 / (s_dd * s_ww), rtol=1e-12)
    np.testing.assert_allclose(tf.power, np.abs(s_dw), rtol=1e-12)


def test_the_low_frequency_sign_reads_the_bins_below_the_audio_band(noise):
    # an inverted 4th-order Linkwitz-Riley low-pass: -1 at DC, whatever the phase around its crossover
    sos = np.concatenate([scipy.signal.butter(2, 2000, fs=FS, output="sos")] * 2)
    tf = transfer_function(noise, -scipy.signal.sosfilt(sos, noise), FS)
    assert low_frequency_sign(tf) == pytest.approx(-1.0, abs=1e-3)
    assert low_frequency_sign(transfer_function(noise, scipy.signal.sosfilt(sos, noise), FS)) == pytest.approx(
        1.0, abs=1e-3)
    # a high-pass rolls the lowest bins off: nothing to read (its phase there is a lead, not a polarity)
    high = scipy.signal.butter(2, 200, "highpass", fs=FS, output="sos")
    assert np.isnan(low_frequency_sign(transfer_function(noise, scipy.signal.sosfilt(high, noise), FS)))
    # unrelated signals: no coherent bin
    other = np.random.default_rng(9).standard_normal(noise.shape)
    assert np.isnan(low_frequency_sign(transfer_function(noise, other, FS)))
