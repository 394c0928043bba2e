"""Cascade: stability, allpass property, responses, processing, gradients and JSON."""

import json

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.signal
from autograd.test_util import check_grads
from conftest import reference_process, upsample_section
from hypothesis import given, settings
from hypothesis import strategies as hs

from apftools import R_MAX, ApftoolsError, Cascade
from apftools import structures as st
from apftools.cascade import ResponseGrid
from apftools.testing import assert_allpass, assert_lossless, assert_stable
from apftools.testing.strategies import cascades

#: Rates with capped fc ranges (8 kHz) and every stretch the default picks (1, 2 and 4).
RATES = hs.sampled_from([8000, 44100, 48000, 96000, 192000])

def expanded_poles(cascade, theta):
    """All z-plane poles, from the expanded polynomials of every section."""
    sos = cascade.sos(theta)
    return np.concatenate([np.roots(np.trim_zeros(upsample_section(row, k.stretch)[1], "b"))
                           for row, k in zip(sos, cascade.kinds)])


# Each example may filter a few hundred thousand samples (the decay of poles at R_MAX);
# 200 examples per property take about 2 s each on 2 cores.
PROPERTY = settings(max_examples=200)


@PROPERTY
@given(cascades(rates=RATES))
def test_every_pole_lies_within_r_max(case):
    cascade, theta = case
    radii = np.abs(expanded_poles(cascade, theta))
    assert np.all(radii <= R_MAX + 1e-9)
    assert_stable(cascade.sos(theta), margin=1 - R_MAX - 1e-12)  # a prototype's radius is R**M <= R
    np.testing.assert_allclose(cascade.pole_radius(theta).max(), np.max(radii, initial=0.0), atol=1e-7)


def long_double_response(cascade, theta, freqs):
    """Response of the expanded coefficients evaluated in extended precision.

    Near a pole at R_MAX, |A(e^jw)| can be 1e-8, where float64 polynomial
    evaluation keeps only ~8 digits; np.clongdouble keeps ~11 there.
    """
    w = 2 * np.pi * np.asarray(freqs, dtype=np.longdouble) / np.longdouble(cascade.fs)
    h = np.ones(len(w), dtype=np.clongdouble)
    for row, kind in zip(cascade.sos(theta), cascade.kinds):
        b, a = (p.astype(np.longdouble) for p in upsample_section(row, kind.stretch))
        z = np.exp(np.clongdouble(-1j) * w[:, None] * np.arange(len(b)))
        h *= (z @ b) / (z @ a)
    return h


@PROPERTY
@given(cascades(rates=RATES))
def test_magnitude_is_one_on_a_dense_grid(case):
    cascade, theta = case
    freqs = np.linspace(0, cascade.fs / 2, 4097)
    reference = long_double_response(cascade, theta, freqs)
    np.testing.assert_allclose(np.abs(reference).astype(float), 1.0, rtol=0, atol=1e-10)
    # every prototype row mirrors its denominator; scipy's evaluation of B/A near a pole at R_MAX keeps ~8 digits
    assert_allpass(cascade.sos(theta), atol=1e-6)
    w, h = cascade.freqz(theta, freqs)
    np.testing.assert_array_equal(w, freqs)  # like scipy.signal.freqz(..., worN=freqs, fs=fs)
    np.testing.assert_allclose(np.abs(h), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h, reference.astype(complex), rtol=0, atol=1e-7)
    # unwrapped phase: 0 at DC and -pi per pole at Nyquist
    phase = cascade.phase(theta, freqs)
    n_poles = sum(k.order * k.stretch for k in cascade.kinds)
    np.testing.assert_allclose(phase[[0, -1]], [0.0, -np.pi * n_poles], atol=1e-9)


def test_response_matches_scipy_freqz():
    cascade = Cascade("2w,1,2sw4,1sw4", 192000)
    theta = cascade.init(rng=12)
    freqs = np.linspace(0, 96000, 1001)
    expected = np.ones(len(freqs), complex)
    for row, kind in zip(cascade.sos(theta), cascade.kinds):
        expected *= scipy.signal.freqz(*upsample_section(row, kind.stretch), worN=freqs, fs=cascade.fs)[1]
    np.testing.assert_allclose(cascade.freqz(theta, freqs)[1], expected, rtol=0, atol=1e-12)


@PROPERTY
@given(cascades(rates=RATES))
def test_energy_is_preserved_once_the_tail_is_included(case):
    cascade, theta = case
    x = np.random.default_rng(0).standard_normal(256)
    assert_lossless(lambda signal: cascade.process(theta, signal), x, cascade.impulse_response_length(theta, tol=1e-9),
                    rtol=1e-9)


@PROPERTY
@given(cascades(kinds=["1", "2", "1w", "2w"], rates=RATES, theta_range=2.0, saturate=False))
def test_group_delay_matches_scipy(case):
    cascade, theta = case
    freqs = np.linspace(0, cascade.fs / 2, 513)
    expected = sum(scipy.signal.group_delay((row[:3], row[3:]), w=freqs, fs=cascade.fs)[1]
                   for row in cascade.sos(theta))
    # scipy's polynomial formula is the inexact side here: it loses ~1e-5 relative at delays of
    # ~1000 samples and 1e-2 right next to the circle (the mpmath-checked regressions below), so
    # this property keeps |theta| <= 2 and compares to 1e-4; the next tests are tighter
    np.testing.assert_allclose(cascade.group_delay(theta, freqs), expected, rtol=1e-4, atol=1e-9)


def test_a_batch_of_thetas_gives_each_row_its_own_response_and_derivatives():
    cascade = Cascade("2x2w,1w,2sw2,1", 96000)
    thetas = 1.5 * np.random.default_rng(4).standard_normal((5, cascade.n_params))
    grid = ResponseGrid(cascade, np.geomspace(20.0, 40000.0, 64), [1, -1, 1, 1, -1])
    sos, d_sos = cascade.sos_jacobian(thetas)
    batch = grid.from_sos(sos, d_sos)
    for row, theta in enumerate(thetas):
        single_sos, single_d = cascade.sos_jacobian(theta)
        np.testing.assert_array_equal(sos[row], single_sos)
        np.testing.assert_array_equal(d_sos[row], single_d)
        for got, expected in zip(batch, grid(theta, jacobian=True)):
            np.testing.assert_allclose(got[row], expected, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match=r"batch of theta must have shape \(B, 12\)"):
        cascade.sos_jacobian(np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("spec", "fs", "theta", "freq", "expected"),
    [  # shrunk by hypothesis; expected = -d(phase)/d(omega) of the float64 coefficients with mpmath at 50 digits
       # (recomputed when the map gained its EDGE_MARGIN: saturated theta now stops just inside the bounds)
        ("2w", 8000, [40.0, 40.0, 40.0], 511 * 4000 / 512, 44.472761665186596),  # scipy: 44.4728328
        ("2", 96000, [4.0, -1000.0], 0.0, 915.1844787196272),  # scipy: 915.0791508
        ("2w", 44100, [3.0, -1000.0, -1000.0], 0.0, 12196.338902588934),  # scipy: 12047.2307692
    ],
)
def test_group_delay_regressions_next_to_poles(spec, fs, theta, freq, expected):
    tau = Cascade(spec, fs).group_delay(np.array(theta), [freq])
    np.testing.assert_allclose(tau, expected, rtol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_group_delay_matches_scipy_tightly_away_from_the_circle(seed):
    cascade = Cascade("1,2,1w,2w", 48000)
    theta = cascade.init(rng=seed)  # tanh(theta) within +-0.9: poles well inside R_MAX
    freqs = np.linspace(0, 24000, 513)
    expected = sum(scipy.signal.group_delay((row[:3], row[3:]), w=freqs, fs=cascade.fs)[1]
                   for row in cascade.sos(theta))
    np.testing.assert_allclose(cascade.group_delay(theta, freqs), expected, rtol=1e-9)


def test_group_delay_of_stretched_sections_scales_with_the_stretch():
    fs = 192000
    stretched, prototype = Cascade("2sw4", fs), Cascade("2w", fs / 4)
    theta = np.array([0.8, -0.3, 0.4])
    params = stretched.params(theta)
    prototype_theta = prototype.theta_from_params([{**params[0], "kind": "2w"}])
    freqs = np.linspace(0, fs / 8, 101)
    np.testing.assert_allclose(stretched.group_delay(theta, freqs),
                               4 * prototype.group_delay(prototype_theta, freqs), rtol=1e-12)


@pytest.mark.parametrize("shape", [(5000,), (2, 5000)])
def test_process_matches_sosfilt_of_the_coefficients(shape):
    cascade = Cascade("3x2w,1w", 48000)
    theta = cascade.init(rng=1)
    x = np.random.default_rng(2).standard_normal(shape)
    np.testing.assert_allclose(cascade.process(theta, x), scipy.signal.sosfilt(cascade.sos(theta), x),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_samples", [4800, 4801, 4803])
def test_stretched_process_matches_upsampled_lfilter(n_samples):
    cascade = Cascade("2w,2sw4,1sw4,1,2sw3", 192000)
    theta = cascade.init(rng=3)
    x = np.random.default_rng(4).standard_normal((2, n_samples))
    np.testing.assert_allclose(cascade.process(theta, x), reference_process(cascade, cascade.sos(theta), x),
                               rtol=0, atol=1e-11)


@pytest.mark.parametrize("n_samples", [4800, 4803])
def test_block_filter_continues_the_whole_signal_across_blocks(n_samples):
    cascade = Cascade("2w,2sw4,1sw4,1,2sw3", 192000)  # runs of stretch 1, 4, 1 and 3
    theta = cascade.init(rng=5)
    x = np.random.default_rng(6).standard_normal((2, n_samples))
    block_filter = cascade.block_filter(theta, 2)
    cuts = [0, 1200, 1212, 3600, n_samples]  # multiples of 12 but the last
    blocks = [block_filter(x[:, a:b]) for a, b in zip(cuts, cuts[1:])]
    np.testing.assert_allclose(np.concatenate(blocks, axis=1), reference_process(cascade, cascade.sos(theta), x),
                               rtol=0, atol=1e-11)


def complex_step_grad(cascade, theta, x, weights, h=1e-30):
    grad = np.empty(cascade.n_params)
    for i in range(cascade.n_params):
        step = theta.astype(complex)
        step[i] += 1j * h
        grad[i] = np.sum(weights * reference_process(cascade, cascade.sos(step), x)).imag / h
    return grad


@pytest.mark.parametrize(("spec", "fs"), [("3x2w,1w", 48000), ("1,2,1w,2w", 44100), ("2sw,1sw,2w", 192000)])
@pytest.mark.parametrize("saturated", [False, True])
def test_theta_gradient_matches_complex_step(spec, fs, saturated):
    cascade = Cascade(spec, fs)
    theta = cascade.init(rng=5)
    if saturated:  # pole radii pushed to R_MAX (tanh(8) = 1 - 2e-7)
        for offsets in cascade.offsets:
            if "R" in offsets:
                theta[offsets["R"]] = 8.0
    rng = np.random.default_rng(6)
    x, weights = rng.standard_normal((2, 3000))
    grad = autograd.grad(lambda t: anp.sum(weights * cascade.process(t, x)))(theta)
    expected = complex_step_grad(cascade, theta, x, weights)
    assert np.linalg.norm(grad - expected) <= 1e-9 * np.linalg.norm(expected)


def test_check_grads_through_process():
    cascade = Cascade("2w,1w,2sw2", 96000)
    x = np.random.default_rng(8).standard_normal(400)
    check_grads(lambda t: anp.sum(anp.sin(cascade.process(t, x))), modes=["rev"], order=1)(cascade.init(rng=9))
    check_grads(lambda t: anp.sum(cascade.group_delay(t, np.linspace(0, 48000, 50))), modes=["rev"], order=1)(
        cascade.init(rng=9))


def test_init_is_reproducible():
    cascade = Cascade("3x2w,1w", 48000)
    np.testing.assert_array_equal(cascade.init(rng=4), cascade.init(np.random.default_rng(4)))
    assert not np.array_equal(cascade.init(rng=4), cascade.init(rng=5))
    assert cascade.n_params == 11 and cascade.n_sections == 4


def test_json_round_trip_is_exact():
    cascade = Cascade("2w,1,2,1sw,2sw", 192000)
    theta = cascade.init(rng=10)
    data = json.loads(json.dumps(cascade.to_dict(theta)))
    assert data["fs"] == 192000.0 and data["spec"] == "2w,1,2,1sw4,2sw4" and data["units"]["fc"] == "Hz"
    loaded, theta2 = Cascade.from_dict(data)
    assert loaded.spec == cascade.spec and loaded.fs == cascade.fs
    for before, after in zip(data["sections"], loaded.params(theta2)):
        assert before.keys() == after.keys()
        for name in before.keys() - {"kind"}:
            np.testing.assert_allclose(after[name], before[name], rtol=1e-13)
    np.testing.assert_allclose(loaded.sos(theta2), cascade.sos(theta), rtol=1e-12, atol=1e-15)


@PROPERTY
@given(cascades(rates=RATES))
def test_every_theta_round_trips_through_json(case):
    # round trip by construction: whatever the map produces from any finite theta, saturated tanh included,
    # validation accepts, and the loaded cascade has the same coefficients
    cascade, theta = case
    loaded, theta2 = Cascade.from_dict(json.loads(json.dumps(cascade.to_dict(theta))), fs=cascade.fs)
    assert loaded.spec == cascade.spec
    np.testing.assert_allclose(loaded.sos(theta2), cascade.sos(theta), rtol=0, atol=1e-12)
    assert np.all(loaded.pole_radius(theta2) <= R_MAX + 1e-12)


@pytest.mark.parametrize("value", [-1e3, -40.0, -19.0, 19.0, 40.0, 1e3])
def test_saturated_parameters_stay_inside_the_closed_bounds(value):
    # tanh(19) == 1.0 in float64: the map still stops EDGE_MARGIN / 2 inside every bound
    cascade = Cascade("2w,1w,2,1,2sw4,1sw4", 192000)
    theta = np.full(cascade.n_params, value)
    for kind, section in zip(cascade.kinds, cascade.params(theta)):
        bounds = st.param_bounds(kind.order, cascade.fs, kind.stretch, section.get("a", 0.0))
        for name in kind.param_names:
            low, high = (float(b) for b in bounds[name])
            assert low < section[name] < high, (kind.name, name, section[name], low, high)
    cascade.theta_from_params(cascade.params(theta))


@pytest.mark.parametrize(
    "section",
    [  # values that `apftools align` wrote and `apply` refused before the bounds became one closed definition
        {"kind": "2w", "R": 0.0, "fc": 156.7, "a": 0.9},
        {"kind": "2w", "R": 0.9629631535161415, "fc": 20.0, "a": -0.9},
        {"kind": "2w", "R": float(st.radius_bound(0.89976976687987, 1)), "fc": 19897.6, "a": 0.89976976687987},
    ],
)
def test_values_on_the_closed_bounds_are_accepted(section):
    cascade = Cascade("2w", 48000)
    params = cascade.params(cascade.theta_from_params([section]))[0]
    for name in ("R", "fc", "a"):
        assert params[name] == pytest.approx(section[name], rel=1e-8, abs=1e-9)


def test_a_bad_warp_is_reported_as_itself():
    # a = 1.0 used to be reported as "R=0.837... is outside (0, -1)"
    with pytest.raises(ValueError, match=r"section 0 \(2w\): a=1.0 is outside \[-0.9, 0.9\]"):
        Cascade("2w", 48000).theta_from_params([{"R": 0.837, "fc": 100.0, "a": 1.0}])


def test_params_round_trip_through_theta():
    cascade = Cascade("2w,1w,2", 48000)
    params = [{"kind": "2w", "R": 0.99, "fc": 120.0, "a": 0.3}, {"fc": 2500.0, "a": -0.6}, {"R": 0.5, "fc": 19000.0}]
    theta = cascade.theta_from_params(params)
    for given_, got in zip(params, cascade.params(theta)):
        for name, value in given_.items():
            if name != "kind":
                np.testing.assert_allclose(got[name], value, rtol=1e-12)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ([{"R": 1.2, "fc": 100.0, "a": 0.1}], r"R=1.2 is outside \[0.0, 0.99"),
        ([{"R": 0.5, "fc": 5.0, "a": 0.1}], r"fc=5.0 Hz is outside \[20.0"),
        ([{"R": 0.5, "fc": 100.0, "a": 0.95}], r"a=0.95 is outside \[-0.9, 0.9\]"),
        ([{"R": 0.5, "fc": 100.0}], r"needs parameters \['R', 'fc', 'a'\]"),
        ([{"R": 0.5, "fc": float("nan"), "a": 0.0}], "fc=nan is not a finite number"),
        ([{"kind": "1w", "fc": 100.0, "a": 0.0}], "is '1w' but the spec says '2w'"),
        ([], "expected a list of 1 section dicts"),
    ],
)
def test_bad_params_are_refused_with_the_value(params, match):
    with pytest.raises(ValueError, match=match):
        Cascade("2w", 48000).theta_from_params(params)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": "other"}, "not an apftools cascade model"),
        ({"version": 99}, "not an apftools cascade model"),
        ({"fs": -1}, "positive finite sample rate"),
        ({"spec": "3q"}, "bad section '3q'"),
        ({"spec": "99999999999x2"}, "a cascade holds 1 to 256 sections"),
        ({"spec": "2sw1054"}, r"stretch factor must be in \[1, 1053\]"),
        ({"units": {"R": "", "fc": "kHz", "a": ""}}, "cascade units must be"),
        ({"extra": 1}, r"unknown \['extra'\]"),
        ({"sections": [{"kind": "2w", "R": 0.99999, "fc": 100.0, "a": 0.0}]}, "R=0.99999 is outside"),
    ],
)
def test_bad_models_are_refused(change, match):
    data = Cascade("2w", 48000).to_dict(np.zeros(3))
    data.update(change)
    with pytest.raises(ApftoolsError, match=match):
        Cascade.from_dict(data)


def test_another_sample_rate_is_refused_not_reinterpreted():
    cascade = Cascade("2w", 48000)
    with pytest.raises(ValueError, match="built for fs=48000 Hz, got a signal at fs=44100 Hz"):
        Cascade.from_dict(cascade.to_dict(np.zeros(3)), fs=44100)
    with pytest.raises(ValueError, match="built for fs=48000 Hz"):
        cascade.process(np.zeros(3), np.ones(10), fs=96000)
    np.testing.assert_array_equal(cascade.process(np.zeros(3), np.ones(10), fs=48000.0),
                                  cascade.process(np.zeros(3), np.ones(10)))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: Cascade("2w", 0), ValueError, "positive finite sample rate"),
        (lambda: Cascade("2w", "48k"), TypeError, "fs must be a real number"),
        (lambda: Cascade("2w", 40), ValueError, "leaves no room for fc"),
        (lambda: Cascade("2w", 48000).process(np.zeros(2), np.ones(5)), ValueError, r"theta must have shape \(3,\)"),
        (lambda: Cascade("2w", 48000).freqz(np.zeros(3), [30000.0]), ValueError, r"\[0, 24000\] Hz"),
    ],
)
def test_bad_arguments_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_impulse_response_length_comes_from_the_poles_and_truncation_warns():
    cascade = Cascade("2", 48000)
    theta = cascade.theta_from_params([{"R": 0.99989, "fc": 1000.0}])
    length = cascade.impulse_response_length(theta)
    assert length > 150_000  # the research notebook used 1000 samples
    h = cascade.impulse_response(theta)
    assert len(h) == length and abs(h[-1]) < 1e-9 and np.sum(h**2) == pytest.approx(1.0, rel=1e-9)
    with pytest.warns(UserWarning, match="truncates the impulse response"):
        cascade.impulse_response(theta, n_samples=1000)
