"""Loss functions: hand values, an independent STFT reference, gradients against finite differences."""

import autograd
import numpy as np
import pytest
import scipy.signal
from autograd.test_util import check_grads

from apftools.errors import ApftoolsTypeError, ApftoolsValueError
from apftools.losses import LOSSES, esr, get_loss, mr_stft_sum, mse, ncc_loss, stft_frame_length, stft_sum
from apftools.names import LOSS_NAMES

FS = 8000.0  # small STFTs: frames of 64, 256 and 1024 samples


@pytest.fixture
def noise():
    return np.random.default_rng(0).standard_normal(16000)


def test_mse_value_and_gradient():
    rng = np.random.default_rng(0)
    y, target = rng.standard_normal((2, 3, 40))
    np.testing.assert_allclose(mse(y, target), np.mean((y - target) ** 2), rtol=1e-14)
    np.testing.assert_allclose(autograd.grad(mse)(y, target), 2 * (y - target) / y.size, rtol=1e-15)
    np.testing.assert_allclose(autograd.grad(mse, 1)(y, target), -2 * (y - target) / y.size, rtol=1e-15)
    check_grads(mse, modes=["rev"], order=1)(y, target)


def test_esr_hand_values(noise):
    t = np.stack([noise, 0.5 * noise])
    assert esr(np.zeros_like(t), t) == pytest.approx(1.0, rel=1e-12)
    assert esr(t, t) == 0.0
    assert esr(0.5 * t, t) == pytest.approx(0.25, rel=1e-12)
    assert esr(np.zeros(4), np.zeros(4)) == 0.0  # eps keeps silence finite


def test_ncc_minimum_is_at_correlation_plus_one(noise):
    t = noise[:4000]
    u = np.random.default_rng(1).standard_normal(t.size)
    u -= (u @ t) / (t @ t) * t
    u *= np.linalg.norm(t) / np.linalg.norm(u)  # orthogonal to t, same energy
    angles = np.linspace(-np.pi, np.pi, 73)
    values = [ncc_loss(np.cos(a) * t + np.sin(a) * u, t) for a in angles]
    np.testing.assert_allclose(values, 1 - np.cos(angles), atol=1e-12)  # correlation cos(a)
    assert angles[np.argmin(values)] == 0.0
    assert ncc_loss(2 * t, t) == pytest.approx(0.0, abs=1e-12)
    assert ncc_loss(-t, t) == pytest.approx(2.0, abs=1e-12)


def reference_stft_sum(y, t, fs, frame, band_hz):
    """The documented equation, framed frame by frame: starts -(frame - hop) + j hop up to n - 1, zeros outside."""
    hop, n = frame // 4, y.shape[-1]
    window = scipy.signal.windows.hann(frame, sym=False)

    def spectra(x):
        frames = []
        for start in range(-(frame - hop), n, hop):
            segment = np.zeros(x.shape[:-1] + (frame,))
            lo, hi = max(start, 0), min(start + frame, n)
            segment[..., lo - start:hi - start] = x[..., lo:hi]
            frames.append(segment * window)
        return np.fft.rfft(np.stack(frames, axis=-2), axis=-1)

    f = np.fft.rfftfreq(frame, 1 / fs)
    keep = (f >= band_hz[0]) & (f <= min(band_hz[1], fs / 2))
    Y, T = spectra(y)[..., keep], spectra(t)[..., keep]

    def mag(z):
        return np.sqrt(np.abs(z) ** 2 + 1e-12)

    return np.sum(np.abs(mag(Y) + mag(T) - mag(Y + T))) / np.sum(mag(Y) + mag(T))


@pytest.mark.parametrize("shape, fs, band_hz", [
    ((2, 3000), FS, (20.0, 20000.0)),     # band clipped to fs/2: the Nyquist bin is kept
    ((3001,), 44100.0, (100.0, 5000.0)),  # a length that is not a multiple of the hop
    ((1, 100), FS, (31.25, 1000.0)),      # shorter than a frame; lower edge exactly on bin 1
])
def test_stft_sum_matches_reference(shape, fs, band_hz):
    y, t = np.random.default_rng(2).standard_normal((2,) + shape)
    expected = reference_stft_sum(y, t, fs, stft_frame_length(fs, 0.0427), band_hz)
    assert stft_sum(y, t, fs, band_hz=band_hz) == pytest.approx(expected, rel=1e-12)


def test_stft_sum_hand_values(noise):
    t = noise
    assert stft_sum(t, t, FS) < 1e-6
    assert stft_sum(3 * t, t, FS) < 1e-6  # in phase at every bin: gain is ignored
    assert stft_sum(-t, t, FS) == pytest.approx(1.0, abs=1e-6)  # |Y + T| = 0 everywhere
    hilbert = np.imag(scipy.signal.hilbert(t))  # 90 degrees at equal magnitude: (2 - sqrt(2)) / 2
    assert stft_sum(hilbert, t, FS) == pytest.approx(1 - np.sqrt(2) / 2, abs=0.02)
    stereo = np.stack([t, t])
    assert stft_sum(stereo * [[1], [-1]], stereo, FS) == pytest.approx(0.5, abs=1e-6)  # pooled over channels


def test_stft_sum_is_scale_free_symmetric_and_blind_to_colouration(noise):
    y = np.r_[0.0, noise[:-1]]  # one-sample delay: a phase error
    assert stft_sum(y, noise, FS) > 0.1
    assert stft_sum(1e-3 * y, 1e-3 * noise, FS) == pytest.approx(stft_sum(y, noise, FS), rel=1e-6)  # up to eps
    assert stft_sum(noise, y, FS) == pytest.approx(stft_sum(y, noise, FS), rel=1e-14)
    coloured = np.convolve(noise, [0.25, 0.5, 0.25], mode="same")  # zero-phase, magnitudes from 1 to 0
    assert stft_sum(coloured, noise, FS) < 1e-3


def test_stft_sum_band_limits_in_hz():
    fs, n = 96000.0, 48000
    rng = np.random.default_rng(3)
    t = rng.standard_normal(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[np.fft.rfftfreq(n, 1 / fs) < 25000.0] = 0.0
    # Tapered so that its truncation at the signal ends does not leak below 20 kHz.
    above = np.fft.irfft(spectrum, n) * scipy.signal.windows.tukey(n, 0.2)
    assert stft_sum(t + above, t, fs) < 1e-9
    assert stft_sum(t + above, t, fs, band_hz=(20.0, 48000.0)) > 0.01


def test_stft_frame_length_scales_with_fs():
    assert [stft_frame_length(48000, s) for s in (0.0107, 0.0427, 0.1707)] == [512, 2048, 8192]
    assert stft_frame_length(96000, 0.0427) == 2 * stft_frame_length(48000, 0.0427) == 4096
    assert stft_frame_length(44100, 0.0427) == 2048
    assert stft_frame_length(FS, 0.0427) == 256
    assert stft_frame_length(FS, 1e-6) == 4


def test_mr_stft_sum_is_the_mean_over_resolutions(noise):
    y = np.imag(scipy.signal.hilbert(noise))
    frames_s = (0.0107, 0.0427, 0.1707)
    expected = np.mean([stft_sum(y, noise, FS, frame_s=f) for f in frames_s])
    assert mr_stft_sum(y, noise, FS, frames_s=frames_s) == pytest.approx(expected, rel=1e-14)
    assert mr_stft_sum(-noise, noise, FS) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("argnum", [0, 1])
def test_loss_gradients(name, argnum):
    args = list(np.random.default_rng(4).standard_normal((2, 2, 3000)))
    loss = get_loss(name)

    def of_one(x):
        args[argnum] = x
        return loss(*args, FS)

    check_grads(of_one, modes=["rev"], order=1)(args[argnum])


def test_stft_sum_gradient_of_one_channel():
    y, t = np.random.default_rng(5).standard_normal((2, 1000))
    check_grads(lambda y: stft_sum(y, t, FS), modes=["rev"], order=1)(y)


def test_registry_has_a_uniform_signature():
    rng = np.random.default_rng(6)
    y, t = rng.standard_normal((2, 2, 500))
    for name, direct in [("mse", mse), ("esr", esr), ("ncc", ncc_loss)]:
        assert get_loss(name)(y, t, FS) == direct(y, t)
    assert get_loss("stft_sum")(y, t, FS) == stft_sum(y, t, FS)
    assert tuple(LOSSES) == LOSS_NAMES == ("mse", "esr", "ncc", "stft_sum", "mr_stft_sum")  # the CLI lists LOSS_NAMES


def test_get_loss_errors():
    with pytest.raises(ApftoolsValueError, match=r"unknown loss 'l2'; expected one of mse, esr, ncc, stft_sum, mr"):
        get_loss("l2")
    with pytest.raises(ApftoolsTypeError, match="loss name must be a str, got 3"):
        get_loss(3)


def test_bad_arguments_are_refused():
    t = np.zeros(1000)
    with pytest.raises(ApftoolsValueError, match=r"same shape, got \(999,\) and \(1000,\)"):
        esr(np.zeros(999), t)
    with pytest.raises(ApftoolsValueError, match=r"same shape, got \(2, 1000\) and \(1000,\)"):
        stft_sum(np.zeros((2, 1000)), t, FS)
    with pytest.raises(ApftoolsValueError, match=r"band_hz .* got \(5000.0, 6000.0\)"):
        stft_sum(t, t, FS, band_hz=(5000.0, 6000.0))  # above fs/2
    with pytest.raises(ApftoolsValueError, match=r"band_hz .* got \(100.0, 110.0\)"):
        stft_sum(t, t, FS, band_hz=(100.0, 110.0))  # between two bins 31.25 Hz apart
    with pytest.raises(ApftoolsTypeError, match="band_hz must be two frequencies"):
        stft_sum(t, t, FS, band_hz=(20.0,))
    with pytest.raises(ApftoolsValueError, match="frame_s must be a positive finite duration in seconds, got 0"):
        stft_sum(t, t, FS, frame_s=0)
    with pytest.raises(ApftoolsTypeError, match="frame_s must be a real number of seconds, got '1'"):
        stft_frame_length(FS, "1")
    with pytest.raises(ApftoolsValueError, match="fs must be a positive"):
        stft_sum(t, t, -1.0)
    with pytest.raises(ApftoolsValueError, match="at least one sample"):
        stft_sum(np.zeros(0), np.zeros(0), FS)
    with pytest.raises(ApftoolsValueError, match=r"frames_s must hold at least one frame duration in seconds, "
                                                 r"got \(\)"):
        mr_stft_sum(t, t, FS, frames_s=())

