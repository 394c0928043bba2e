"""L-BFGS fitting: phase-response fit from starts at group-delay peaks, then refinement on audio."""

import numpy as np
import pytest
import scipy.signal

from apftools import ApftoolsValueError, Cascade
from apftools.fit import (LOW_GROUP_DELAY_S, ResponseModel, _anchor_delays, _phase_objective, _shape_objective,
                          fit_frequency, fit_time, peak_start, phase_loss, ring_penalty, ring_radius)
from apftools.losses import loudest_segment
from apftools.response import TransferFunction

FS = 48000


def exact_response(cascade, theta, delay=0.0, polarity=1, n=400):
    """A noiseless 'measured' response of the cascade plus a delay, on a log grid."""
    freqs = np.geomspace(20.0, 20000.0, n)
    h = polarity * cascade.freqz(theta, freqs)[1] * np.exp(-2j * np.pi * freqs / FS * delay)
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


def test_response_model_counts_the_anticausal_cascade_negated_with_exact_derivatives():
    cascade, _ = true_cascade("2x2w,1w,1sw4")
    anticausal = Cascade("2w,2,1", FS)
    freqs = np.geomspace(20.0, 20000.0, 50)
    # poles beyond the ring bound's radius 0.905: at 300 Hz (fully penalised) and at 45 Hz (on the gate's
    # slope), so the penalty's derivative through both its factors is checked
    wide = anticausal.theta_from_params([{"R": 0.99, "fc": 300.0, "a": 0.0}, {"R": 0.99, "fc": 45.0}, {"fc": 3e3}])
    theta = np.concatenate([cascade.init(7), wide])
    model = ResponseModel(cascade, freqs, anticausal, ring_bound=20.0)
    phase, tau, d_phase, d_tau, ring, d_ring = model(theta)
    assert ring > 1.0
    # reference: scipy's responses of the sections; time reversal conjugates the anti-causal ones
    h = np.ones(len(freqs), complex)
    expected_tau = np.zeros(len(freqs))
    for part, sign in ((cascade, 1), (anticausal, -1)):
        for row, kind in zip(part.sos(theta[:cascade.n_params] if sign > 0 else theta[cascade.n_params:]), part.kinds):
            b, a = np.zeros(2 * kind.stretch + 1), np.zeros(2 * kind.stretch + 1)
            b[::kind.stretch], a[::kind.stretch] = row[:3], row[3:]
            response = scipy.signal.freqz(b, a, worN=freqs, fs=FS)[1]
            h *= response if sign > 0 else np.conj(response)
            expected_tau += sign * scipy.signal.group_delay((b, a), w=freqs, fs=FS)[1]
    np.testing.assert_allclose(np.exp(1j * phase), h, atol=1e-12)
    np.testing.assert_allclose(tau, expected_tau, rtol=1e-7, atol=1e-9)
    step = 1e-5  # five-point differences (error ~ step**4): the narrow sections' group delay is steep
    for j in range(len(theta)):
        e = np.eye(len(theta))[j] * step
        values = [model(theta + k * e) for k in (-2, -1, 1, 2)]
        for i, derivative in ((0, d_phase[:, j]), (1, d_tau[:, j]), (4, d_ring[j])):
            minus2, minus1, plus1, plus2 = (np.asarray(v[i]) for v in values)
            expected = (minus2 - 8 * minus1 + 8 * plus1 - plus2) / (12 * step)
            np.testing.assert_allclose(derivative, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("spec", ["2", "2w", "1w", "2sw4"])
def test_ring_penalty_is_zero_exactly_when_every_pole_is_within_the_radius(spec):
    cascade = Cascade(spec, 192000)
    rng = np.random.default_rng(3)
    bound = 60.0
    rho = ring_radius(cascade, bound)
    assert cascade.kinds[0].stretch * (1 + rho[0]) / (1 - rho[0]) == pytest.approx(bound)
    gate_on = (np.array([1.5]), np.array([2.0]))  # every pole angle above the gate
    for theta in 3 * rng.standard_normal((200, cascade.n_params)):
        sos, d_sos = cascade.sos_jacobian(theta)
        radius = cascade.pole_radius(theta) ** cascade.kinds[0].stretch  # prototype radius
        penalty = ring_penalty(sos, d_sos, rho, *gate_on)[0]
        if radius[0] < rho[0] - 1e-9:
            assert penalty == 0.0
        elif radius[0] > rho[0] + 1e-6:
            assert penalty > 0.0


def test_poles_below_the_gate_are_held_by_the_looser_bound():
    fs = 48000
    cascade = Cascade("2,1", fs)
    model = ResponseModel(cascade, np.geomspace(20.0, 20000.0, 64), ring_bound=50.0)  # rho = 0.96
    # below the gate: a group-delay peak of LOW_GROUP_DELAY_S, 960 samples, radius 1 - 2 / 961 = 0.9979
    assert model.rho_low[0] == pytest.approx(1 - 2 / (LOW_GROUP_DELAY_S * fs + 1))
    low = [{"R": 0.997, "fc": 30.0}, {"fc": 30.0}]  # poles at 30 Hz and at DC
    narrow = [{"R": 0.9995, "fc": 30.0}, {"fc": 30.0}]
    high = [{"R": 0.997, "fc": 300.0}, {"fc": 30.0}]
    assert model(cascade.theta_from_params(low))[4] == 0.0
    assert model(cascade.theta_from_params(narrow))[4] > 0.1
    assert model(cascade.theta_from_params(high))[4] > 1.0
    # on the gate's slope (45 Hz) beyond both radii: the derivative through both bounds and the gate
    theta = cascade.theta_from_params([{"R": 0.9995, "fc": 45.0}, {"fc": 30.0}])
    np.testing.assert_allclose(model(theta)[5], central_differences(lambda t: model(t)[4:], theta), rtol=1e-6)


def test_objectives_are_zero_at_the_truth_and_their_gradients_are_exact():
    cascade, theta = true_cascade()
    tf = exact_response(cascade, theta, delay=0.3)
    model = ResponseModel(cascade, tf.freqs_hz)
    truth = np.append(theta, 0.3)
    for batched in (_phase_objective(model, tf, 1), _shape_objective(model, tf)):
        def objective(params, batched=batched):  # one row of the batch the objectives take
            value, grad = batched(params[None])
            return value[0], grad[0]

        value, grad = objective(truth)
        assert value == pytest.approx(0.0, abs=1e-20)
        np.testing.assert_allclose(grad, 0.0, atol=1e-10)
        point = np.append(cascade.init(1), 0.1)
        np.testing.assert_allclose(objective(point)[1], central_differences(objective, point), rtol=1e-6, atol=1e-9)
    # inverted polarity is the farthest a phasor can be: 1 - cos(pi) = 2
    assert _phase_objective(model, tf, -1)(truth[None])[0] == pytest.approx([2.0])
    # a batch is its rows; per-row polarities follow the rows the optimiser passes
    points = np.array([truth, np.append(cascade.init(2), -0.4), np.append(cascade.init(3), 1.2)])
    both = _phase_objective(model, tf, np.array([1, -1, 1, -1]))
    for rows in ([0, 1, 2], [1, 3], [3]):
        value, grad = both(points[np.array(rows) % 3], np.array(rows))
        for k, row in enumerate(rows):
            single = _phase_objective(model, tf, (1, -1)[row % 2])(points[row % 3][None])
            np.testing.assert_allclose(value[k], single[0][0], rtol=1e-13)
            np.testing.assert_allclose(grad[k], single[1][0], rtol=1e-12, atol=1e-15)


def test_the_kernels_refuse_rows_they_would_read_past():
    """The C kernels index theta without bounds: rows shorter than the parameters (and, for the losses, tau) or
    a target index out of range are refused before any memory is read."""
    cascade, theta = true_cascade()
    tf = exact_response(cascade, theta)
    kernels = ResponseModel(cascade, tf.freqs_hz).kernels
    targets, weights = np.ones((1, len(tf.freqs_hz)), complex), np.ones(len(tf.freqs_hz))
    with pytest.raises(ValueError, match=f"at least {cascade.n_params + 1} values"):
        kernels.objective(theta[None], 0, targets, [0], weights, 0.0, 0.0)  # tau missing
    with pytest.raises(ValueError, match=f"at least {cascade.n_params} values"):
        kernels.response(theta[None, :-1])
    with pytest.raises(ValueError, match="an index into the 1 targets"):
        kernels.minimize(np.append(theta, 0.0)[None], 3, -np.inf, 0, targets, [1], weights, 0.0, 0.0, 10, 1e-9, 1e-5,
                         1e-4, 20)


@pytest.mark.parametrize("lower", [None, 0.0])
def test_the_compiled_minimiser_follows_the_numpy_reference(lower):
    """Geometry.minimize is lbfgs.minimize in compiled code: the same iterations from the same starts, up to
    the order of the sums in its dot products."""
    from apftools import lbfgs

    cascade, theta = true_cascade()
    tf = exact_response(cascade, theta, delay=-0.3)  # below the bound: it holds the delay
    model = ResponseModel(cascade, tf.freqs_hz, ring_bound=200.0)
    starts = np.array([np.append(cascade.init(seed), 0.0) for seed in range(4)])
    # a few iterations, where rounding has not yet taken a path elsewhere (after a hundred it has, on this
    # multimodal landscape: another order of summation is another run)
    for objective in (_shape_objective(model, tf), _phase_objective(model, tf, [1, -1, 1, 1])):
        compiled = objective.minimize(starts, 4, lower)
        reference = lbfgs.minimize(objective, starts, 4, lower)
        np.testing.assert_allclose(compiled.x, reference.x, rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(compiled.fun, reference.fun, rtol=1e-9)
        np.testing.assert_array_equal(compiled.nit, reference.nit)
        assert lower is None or np.all(compiled.x[:, -1] >= lower) and np.any(compiled.x[:, -1] == lower)


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
    assert fit.other_polarity_loss > 1e3 * fit.loss  # the cascade cannot take up an inversion over the band


def test_fit_frequency_compares_its_results_on_every_bin_of_dense():
    cascade = Cascade("2x2", FS)
    params = cascade.params(cascade.init(0))
    for section, (radius, fc) in zip(params, [(0.998, 5000.0), (0.9, 500.0)]):
        section.update(R=radius, fc=fc)
    theta = cascade.theta_from_params(params)

    def response(freqs):
        n = len(freqs)
        return TransferFunction(freqs, cascade.freqz(theta, freqs)[1], np.ones(n), np.ones(n),
                                cascade.group_delay(theta, freqs), FS)

    grid, dense = response(np.geomspace(20.0, 20000.0, 60)), response(np.arange(4, 4001) * 5.0)  # FFT bins
    on_grid, checked = (fit_frequency(cascade, grid, n_starts=8, rng=2, ring_bound_samples=np.inf, dense=d)
                        for d in (None, dense))

    def dense_loss(fit):
        return phase_loss(cascade, dense, fit.theta, fit.delay_samples, fit.polarity)

    # the grid sees the narrow section's phase only every 620 Hz at 5 kHz: the grid's best fits the grid
    # three times better than every bin (measured 3.0)
    assert on_grid.loss < 0.5 * dense_loss(on_grid)
    # the fit sees its inputs rounded to 2^-20 (settle): phases within 1e-6 rad
    assert checked.loss == pytest.approx(dense_loss(checked), rel=1e-5)
    assert dense_loss(checked) <= dense_loss(on_grid) * (1 + 1e-9)


def test_anchor_delays_finds_the_delay_that_fits_the_phase_on_every_bin():
    cascade, theta = true_cascade()
    freqs = np.arange(4, 4001) * FS / 9600  # the bins of a 9600-point FFT, 20 Hz to 20 kHz
    h = -cascade.freqz(theta, freqs)[1] * np.exp(-2j * np.pi * freqs / FS * 37.25)
    ones = np.ones(len(freqs))
    dense = TransferFunction(freqs, h, ones, ones, cascade.group_delay(theta, freqs) + 37.25, FS)
    model = ResponseModel(cascade, freqs)
    params = np.array([np.append(theta, tau) for tau in (0.0, 30.0, -12.0)])
    # the true cascade and polarity, from wrong delays: the true delay, to the last digit
    assert list(_anchor_delays(model, dense, np.array([-1, -1]), params[:2])) == [37.25, 37.25]
    # with the wrong polarity, or a bound above the truth: the best delay in steps of 1/8 sample, better
    # than any other tried here
    for sign, bound in ((1, None), (-1, 40.0)):
        [tau] = _anchor_delays(model, dense, np.array([sign]), params[2:], bound)
        steps = np.arange(-400, 801) / 8
        steps = steps[steps >= (bound or -np.inf)]
        losses = [phase_loss(cascade, dense, theta, t, sign) for t in steps]
        assert tau * 8 == round(tau * 8) and tau >= (bound or -np.inf)
        assert phase_loss(cascade, dense, theta, tau, sign) <= min(losses) + 1e-12
    with pytest.raises(ApftoolsValueError, match="bins of one FFT"):
        fit_frequency(cascade, exact_response(cascade, theta), dense=exact_response(cascade, theta))


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
