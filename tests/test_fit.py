"""L-BFGS fitting: phase-response fit from starts at group-delay peaks, then refinement on audio."""

import numpy as np
import pytest

from apftools import ApftoolsValueError, Cascade
from apftools.fit import (ResponseModel, _phase_objective, _shape_objective, fit_frequency, fit_time,
                          loudest_segment, peak_start)
from apftools.response import TransferFunction

FS = 48000


def exact_response(cascade, theta, delay=0.0, polarity=1, n=400):
    """A noiseless 'measured' response of the cascade plus a delay, on a log grid."""
    freqs = np.geomspace(20.0, 20000.0, n)
    h = polarity * cascade.freqz(theta, freqs) * np.exp(-2j * np.pi * freqs / FS * delay)
    return TransferFunction(freqs, h, np.ones(n), np.ones(n), cascade.group_delay(theta, freqs) + delay, FS)


def true_cascade(spec="2x2w,1w"):
    cascade = Cascade(spec, FS)
    params = cascade.params(cascade.init(0))
    for section, (radius, fc, a) in zip(params, [(0.99, 300.0, 0.0), (0.95, 4000.0, 0.0)]):
        section.update(R=radius, fc=fc, a=a)
    return cascade, cascade.theta_from_params(params)


def central_differences(objective, point, step=1e-6):
    return np.array([(objective(point + step * e)[0] - objective(point - step * e)[0]) / (2 * step)
                     for e in np.eye(len(point))])


def test_response_model_matches_the_cascade_and_its_derivatives():
    cascade, _ = true_cascade("2x2w,1w,1sw4")
    freqs = np.geomspace(20.0, 20000.0, 50)
    theta = cascade.init(7)
    phase, tau, d_phase, d_tau = ResponseModel(cascade, freqs)(theta)
    np.testing.assert_allclose(phase, cascade.phase(theta, freqs), atol=1e-12)
    np.testing.assert_allclose(tau, cascade.group_delay(theta, freqs), rtol=1e-12)
    step = 1e-6
    for j in range(cascade.n_params):
        e = np.eye(cascade.n_params)[j] * step
        np.testing.assert_allclose(d_phase[:, j], (cascade.phase(theta + e, freqs) - cascade.phase(theta - e, freqs))
                                   / (2 * step), rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(d_tau[:, j], (cascade.group_delay(theta + e, freqs)
                                                 - cascade.group_delay(theta - e, freqs)) / (2 * step),
                                   rtol=1e-5, atol=1e-6)


def test_objectives_are_zero_at_the_truth_and_their_gradients_are_exact():
    cascade, theta = true_cascade()
    tf = exact_response(cascade, theta, delay=0.3)
    model = ResponseModel(cascade, tf.freqs_hz)
    truth = np.append(theta, 0.3)
    for objective in (_phase_objective(model, tf, 1), _shape_objective(model, tf)):
        value, grad = objective(truth)
        assert value == pytest.approx(0.0, abs=1e-20)
        np.testing.assert_allclose(grad, 0.0, atol=1e-10)
        point = np.append(cascade.init(1), 0.1)
        np.testing.assert_allclose(objective(point)[1], central_differences(objective, point), rtol=1e-6, atol=1e-9)
    # inverted polarity is the farthest a phasor can be: 1 - cos(pi) = 2
    assert _phase_objective(model, tf, -1)(truth)[0] == pytest.approx(2.0)


def test_peak_start_puts_second_order_sections_on_group_delay_peaks():
    cascade, theta = true_cascade()
    tf = exact_response(cascade, theta)
    start = cascade.params(peak_start(cascade, tf, np.random.default_rng(0)))
    fcs = sorted(section["fc"] for section in start[:2])
    # the group-delay peak of a sharp second-order section sits at fc (to a grid step, 1.7%)
    assert fcs[0] == pytest.approx(300.0, rel=0.02) and fcs[1] == pytest.approx(4000.0, rel=0.02)
    radii = sorted(section["R"] for section in start[:2])
    # the peak height (1 + R) / (1 - R) in samples gives R back, up to the other sections' delay
    assert radii == pytest.approx([0.95, 0.99], abs=0.01)


def test_fit_frequency_recovers_phase_delay_and_polarity():
    cascade, theta = true_cascade()
    tf = exact_response(cascade, theta, delay=-0.4, polarity=-1)
    # told the wrong polarity, the fit finds the right one
    fit = fit_frequency(cascade, tf, polarity=1, n_starts=8, rng=0)
    assert fit.polarity == -1
    assert fit.loss < 1e-7  # 0.03 degrees RMS
    assert fit.delay_samples == pytest.approx(-0.4, abs=1e-3)
    np.testing.assert_allclose(np.unwrap(cascade.phase(fit.theta, tf.freqs_hz)),
                               np.unwrap(cascade.phase(theta, tf.freqs_hz)), atol=1e-3)
    assert fit.shape_losses == sorted(fit.shape_losses)


def test_fit_frequency_is_reproducible_and_checks_fs():
    cascade, theta = true_cascade()
    tf = exact_response(cascade, theta)
    first, second = (fit_frequency(cascade, tf, n_starts=3, rng=5) for _ in range(2))
    np.testing.assert_array_equal(first.theta, second.theta)
    with pytest.raises(ApftoolsValueError, match="44100"):
        fit_frequency(Cascade("1x2", 44100), tf)


def test_loudest_segment():
    x = np.zeros((2, 10 * FS))
    x[1, 6 * FS:7 * FS] = 1.0
    start, stop = loudest_segment(x, FS, 2.0)
    assert stop - start == 2 * FS and start <= 6 * FS and stop >= 7 * FS
    assert loudest_segment(x, FS, 20.0) == (0, 10 * FS)


@pytest.mark.parametrize("loss", ["mse", "stft_sum"])
def test_fit_time_refines_a_perturbed_start_to_the_truth(loss):
    cascade, theta = true_cascade("2x2w")
    rng = np.random.default_rng(3)
    dry = rng.standard_normal(FS)
    wet = cascade.process(theta, dry)
    start = theta + 0.05 * rng.standard_normal(theta.shape)
    history = []
    fit = fit_time(cascade, start, dry, wet, FS, loss=loss, max_iter=100, segment_s=0.5, callback=history.append)
    assert fit.history[0] == 1.0 and fit.history[1:] == history
    assert fit.history[-1] < 1e-6
    np.testing.assert_allclose(cascade.group_delay(fit.theta, [100.0, 1000.0, 5000.0]),
                               cascade.group_delay(theta, [100.0, 1000.0, 5000.0]), rtol=1e-3)
    assert fit.segment[1] - fit.segment[0] == FS // 2
