"""BiasNet: network gradient, parameters always in range, parameter count, training, determinism, errors."""

import numpy as np
import pytest
from autograd.misc.optimizers import adam
from autograd.test_util import check_grads
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra.numpy import arrays

from apftools import RANGES, R_MAX, ApftoolsTypeError, ApftoolsValueError, Cascade
from apftools.biasnet import (BiasNetFit, _Adam, _leaves, cascade_theta, count_weights, forward,
                              init_networks, init_weights, preactivation, train_biasnet)
from apftools.losses import loudest_segment, segment_loss
from apftools.losses import get_loss
from apftools.metrics import mix_deficit_db
from apftools.structures import A_MAX, FC_NYQUIST_FRACTION, radius_bound
from apftools.synthetic import make_pair

FS = 24000  # make_pair draws fc up to 10 kHz, which needs fs above 21 kHz
SMALL = {"layer_sizes": (32, 32), "learning_rate": 3e-3, "segment_s": 0.25, "held_out_s": 0.5}


@pytest.fixture(scope="module")
def pair():
    # a 1x2w effect (R 0.34, fc 227 Hz, a -0.12) that the small network below fits from every seed tried
    return make_pair("1x2w", FS, 1.5, delay_samples=0.0, polarity=1, rng=5)


def test_network_is_the_documented_sine_mlp_and_its_gradient_is_exact():
    params = init_weights((8, 6, 5, 3), rng=0)
    (w1, b1), (w2, b2), (w3, b3) = params["layers"]
    z = np.sin(np.sin(params["input"] @ w1 + b1) @ w2 + b2) @ w3 + b3
    np.testing.assert_allclose(preactivation(params), z, rtol=1e-14)
    np.testing.assert_allclose(forward(params), np.tanh(z), rtol=1e-14)
    assert np.all((params["input"] >= 0) & (params["input"] < 1))
    assert np.all(np.abs(w1) <= np.sqrt(6 / 8)) and np.all(np.abs(w2) <= np.sqrt(6 / 6))
    check_grads(preactivation, modes=["rev"], order=1)(params)
    check_grads(forward, modes=["rev"], order=1)(init_weights((8, 6), rng=1))


def test_adam_matches_autograds_reference_adam():
    rng = np.random.default_rng(0)
    start, target = rng.standard_normal(50), rng.standard_normal(50)
    reference = adam(lambda x, i: 4 * (x - target) ** 3, start.copy(), num_iters=8, step_size=0.1)
    x = start.copy()
    optimiser = _Adam([x], 0.1)
    for _ in range(8):
        optimiser.step([x], [4 * (x - target) ** 3])
    np.testing.assert_allclose(x, reference, rtol=1e-12)


def test_cascade_parameters_are_the_tanh_outputs_denormalised_through_ranges():
    cascade = Cascade("2w,1", 48000)
    networks = init_networks(cascade, (8, 6), rng=3)
    theta = cascade_theta(networks)
    (u_r, u_fc, u_a), (u_fc1,) = (forward(net) for net in networks)
    np.testing.assert_allclose(np.tanh(theta), np.r_[u_r, u_fc, u_a, u_fc1], rtol=1e-14)
    section = cascade.params(theta)[0]
    a = RANGES["a"].denormalise(u_a)
    assert section["a"] == pytest.approx(a, rel=1e-12)
    assert section["R"] == pytest.approx(RANGES["R"].denormalise(u_r, high=radius_bound(a, 1)), rel=1e-12)
    assert section["fc"] == pytest.approx(RANGES["fc"].denormalise(u_fc), rel=1e-12)  # 20 Hz - 20 kHz at 48 kHz


SPEC = "2w,1w,2,1,2sw4"  # every section kind, one stretched
WEIGHTS = hs.one_of(hs.floats(-1e6, 1e6), hs.sampled_from([-1e6, -30.0, 0.0, 30.0, 1e6]))


# Each example builds a small network and evaluates it once (no filtering); 100 examples take about 1 s
# and reach saturated tanh outputs (|z| > 19) as well as the middle of every range.
@settings(max_examples=100)
@given(data=hs.data(), shared=hs.booleans())
def test_any_finite_weights_give_parameters_in_range_and_poles_within_r_max(data, shared):
    cascade = Cascade(SPEC, 48000)
    networks = init_networks(cascade, (4, 3), shared=shared, rng=0)
    for leaf in _leaves(networks):
        leaf[...] = data.draw(arrays(np.float64, leaf.shape, elements=WEIGHTS))
    theta = cascade_theta(networks)
    assert np.all(np.isfinite(theta))
    for section, kind in zip(cascade.params(theta), cascade.kinds):
        assert RANGES["fc"].low <= section["fc"] <= min(RANGES["fc"].high, FC_NYQUIST_FRACTION * 24000 / kind.stretch)
        assert 0.0 <= section.get("R", 0.0) <= R_MAX
        assert -A_MAX <= section.get("a", 0.0) <= A_MAX
    assert np.all(cascade.pole_radius(theta) <= R_MAX + 1e-12)


def test_paper_network_has_2_76_million_parameters_for_3x2w_1w():
    cascade = Cascade("3x2w,1w", 48000)
    # per section: 1024 input values + (1024*512 + 512) + (512*256 + 256) + (256*128 + 128) + (128*k + k)
    hidden = 1024 + 1024 * 512 + 512 + 512 * 256 + 256 + 256 * 128 + 128  # 690 048
    per_2w, per_1w = hidden + 128 * 3 + 3, hidden + 128 * 2 + 2  # 690 435 and 690 306
    assert 3 * per_2w + per_1w == 2_761_611  # the paper's "2.77 M"
    assert count_weights(init_networks(cascade, rng=0)) == 2_761_611
    assert count_weights(init_networks(cascade, shared=True, rng=0)) == hidden + 128 * 11 + 11


def test_warm_up_gives_the_segment_the_state_of_the_whole_signal(pair):
    loss = get_loss("mse")
    window = (12000, 18000)
    warmed = segment_loss(pair.cascade, loss, pair.dry, pair.wet, FS, window, pair.theta)(pair.theta)
    cold = loss(pair.cascade.process(pair.theta, pair.dry[..., 12000:18000]), pair.wet[..., 12000:18000], FS)
    noise = 1e-6 * np.mean(pair.wet[..., 12000:18000] ** 2)  # make_pair adds noise 60 dB below the wet
    assert warmed == pytest.approx(noise, rel=0.1)
    assert cold > 100 * noise  # restarting from zero state leaves a transient the fit would chase


def test_training_reaches_the_true_cascade_loss_and_an_in_phase_mix(pair):
    fit = train_biasnet(pair.cascade, pair.dry, pair.wet, FS, max_steps=300, rng=0, **SMALL)
    assert isinstance(fit, BiasNetFit) and fit.network_weights_count == 32 + 32 * 32 + 32 + 32 * 3 + 3
    held_out = loudest_segment(pair.wet, FS, SMALL["held_out_s"])
    truth = segment_loss(pair.cascade, get_loss("mse"), pair.dry, pair.wet, FS, held_out, pair.theta)
    # the true cascade leaves the noise (-60 dB); the fit's own error adds at most as much again
    assert fit.loss <= 2.0 * truth(pair.theta)
    assert fit.loss == min(loss for _, loss in fit.held_out_history)
    assert mix_deficit_db(pair.cascade.process(fit.theta, pair.dry), pair.wet, FS) > -0.05


def test_same_seed_same_result_and_the_callback_sees_every_step(pair):
    calls = []
    first = train_biasnet(pair.cascade, pair.dry, pair.wet, FS, max_steps=30, rng=7,
                          callback=lambda step, loss: calls.append((step, loss)), **SMALL)
    second = train_biasnet(pair.cascade, pair.dry, pair.wet, FS, max_steps=30, rng=np.random.default_rng(7), **SMALL)
    np.testing.assert_array_equal(first.theta, second.theta)
    assert first.history == second.history and first.held_out_history == second.held_out_history
    assert calls == list(enumerate(first.history, start=1)) and len(calls) == 30
    other = train_biasnet(pair.cascade, pair.dry, pair.wet, FS, max_steps=30, rng=8, **SMALL)
    assert not np.array_equal(first.theta, other.theta)


def test_two_identical_channels_train_like_one(pair):
    mono = train_biasnet(pair.cascade, pair.dry, pair.wet, FS, max_steps=20, rng=1, **SMALL)
    stereo = train_biasnet(pair.cascade, np.tile(pair.dry, (2, 1)), np.tile(pair.wet, (2, 1)), FS, max_steps=20,
                           rng=1, **SMALL)
    np.testing.assert_allclose(stereo.theta, mono.theta, rtol=1e-9)
    np.testing.assert_allclose(stereo.history, mono.history, rtol=1e-9)


def test_early_stopping_keeps_the_best_held_out_theta(pair):
    fit = train_biasnet(pair.cascade, pair.dry, pair.wet, FS, max_steps=3000, eval_every=5, patience=40, rng=0,
                        **SMALL)
    best_step = min(fit.held_out_history, key=lambda item: item[1])[0]
    assert fit.steps == best_step + 40 < 3000  # stopped after 40 steps without a held-out improvement
    assert len(fit.history) == fit.steps
    held_out = loudest_segment(pair.wet, FS, SMALL["held_out_s"])
    recomputed = segment_loss(pair.cascade, get_loss("mse"), pair.dry, pair.wet, FS, held_out, fit.theta)
    # the same loss on the same segment, summed along another code path: equal to rounding
    assert recomputed(fit.theta) == pytest.approx(fit.loss, rel=1e-12)


def test_whole_signal_training_uses_everything_outside_the_held_out_window(pair):
    fit = train_biasnet(pair.cascade, pair.dry, pair.wet, FS, max_steps=150, rng=0,
                        **{**SMALL, "segment_s": None})
    assert mix_deficit_db(pair.cascade.process(fit.theta, pair.dry), pair.wet, FS) > -0.05


@pytest.mark.parametrize("kwargs, error, match", [
    ({"cascade": "1x2w"}, ApftoolsTypeError, r"cascade must be an apftools.Cascade, got '1x2w'"),
    ({"fs": 48000}, ApftoolsValueError, r"built for fs=24000 Hz, got a signal at fs=48000 Hz"),
    ({"wet": np.zeros(100)}, ApftoolsValueError, r"same shape .* got \(1, 36000\) and \(100,\)"),
    ({"loss": "l1"}, ApftoolsValueError, r"unknown loss 'l1'"),
    ({"layer_sizes": (64, 0)}, ApftoolsValueError, r"positive int\(s\), got \(64, 0\)"),
    ({"layer_sizes": "64"}, ApftoolsTypeError, r"sequence of positive ints .* got '64'"),
    ({"learning_rate": -1e-3}, ApftoolsValueError, r"learning_rate must be positive and finite, got -0.001"),
    ({"learning_rate": "fast"}, ApftoolsTypeError, r"learning_rate must be a real number, got 'fast'"),
    ({"max_steps": 0}, ApftoolsValueError, r"max_steps must be at least 1, got 0"),
    ({"patience": 2.5}, ApftoolsTypeError, r"patience must be an int, got 2.5"),
    ({"segment_s": float("nan")}, ApftoolsValueError, r"segment_s must be positive and finite, got nan"),
    ({"held_out_s": 1.4}, ApftoolsValueError, r"too short for a held-out window of 1.4 s and training segments"),
    ({"callback": 3}, ApftoolsTypeError, r"callback must be callable .* got 3"),
])
def test_bad_arguments_are_refused_with_the_culprit(pair, kwargs, error, match):
    args = {"cascade": pair.cascade, "dry": pair.dry, "wet": pair.wet, "fs": FS, **kwargs}
    with pytest.raises(error, match=match):
        train_biasnet(args.pop("cascade"), args.pop("dry"), args.pop("wet"), args.pop("fs"), **args)


def test_init_weights_refuses_a_network_without_layers():
    with pytest.raises(ApftoolsValueError, match=r"at least 2 positive int\(s\), got \(1024,\)"):
        init_weights((1024,), rng=0)
