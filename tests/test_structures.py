"""Section kinds, spec strings, coefficient functions and the parameter table."""

import numpy as np
import pytest
import scipy.signal

from apftools import RANGES, ApftoolsError
from apftools import structures as st


@pytest.mark.parametrize(
    ("spec", "fs", "names"),
    [
        ("3x2w,1w", 48000, ["2w", "2w", "2w", "1w"]),
        ("1, 2 ,1w", 44100, ["1", "2", "1w"]),
        ("2sw,1sw", 192000, ["2sw4", "1sw4"]),
        ("2x2sw5", 192000, ["2sw5", "2sw5"]),
        ("2sw", 48000, ["2sw1"]),
    ],
)
def test_parse_spec(spec, fs, names):
    kinds = st.parse_spec(spec, fs)
    assert [k.name for k in kinds] == names
    assert st.parse_spec(st.format_spec(kinds), fs) == kinds


def test_format_spec_groups_runs():
    assert st.format_spec(st.parse_spec("2w,2w,2w,1w,2w", 48000)) == "3x2w,1w,2w"


@pytest.mark.parametrize(("spec", "words"), [
    ("", "bad section ''"), ("3", "bad section '3'"), ("2x", "bad section '2x'"), ("2ws", "bad section '2ws'"),
    ("2w4", "bad section '2w4'"), ("x2", "bad section 'x2'"), ("1,2,2q", "bad section '2q'"),
    ("0x2w", "asks for 0 section(s) in '0x2w'"), ("1sw0", "[1, 1053] in '1sw0', got 0"),
    ("2sw2000", "[1, 1053] in '2sw2000', got 2000"), (None, "must be a string such as '3x2w,1w', got None")])
def test_bad_spec_is_refused_with_the_token(spec, words):
    with pytest.raises(ValueError) as info:
        st.parse_spec(spec, 48000)
    assert isinstance(info.value, ApftoolsError) and words in str(info.value)


@pytest.mark.parametrize(("fs", "stretch"), [(44100, 1), (48000, 1), (88200, 2), (96000, 2), (192000, 4), (384000, 9)])
def test_default_stretch_keeps_rate_above_40k(fs, stretch):
    assert st.default_stretch(fs) == stretch
    assert fs / stretch >= st.STRETCH_MIN_RATE_HZ > fs / (stretch + 1)  # the largest such M


def test_kind_param_names():
    assert st.SectionKind(2, True).param_names == ("R", "fc", "a")
    assert st.SectionKind(1, False).param_names == ("fc",)


@pytest.mark.parametrize("name", sorted(RANGES))
def test_param_range_maps_are_inverse(name):
    r = RANGES[name]
    u = np.linspace(-0.999, 0.999, 101)
    values = r.denormalise(u)
    assert np.all(np.diff(values) > 0)
    assert np.all((values > r.low) & (values < r.high))
    np.testing.assert_allclose(r.normalise(values), u, atol=1e-12)
    # saturated u = +-1 lands strictly inside the closed interval, EDGE_MARGIN / 2 of the way in (in t)
    low, high = r.denormalise(np.array([-1.0, 1.0]))
    assert r.low < low < high < r.high
    width = np.log(r.high / r.low) if r.scale == "log" else r.high - r.low
    inside = np.log([low / r.low, r.high / high]) if r.scale == "log" else np.array([low - r.low, r.high - high])
    np.testing.assert_allclose(inside / width, st.EDGE_MARGIN / 2, rtol=1e-6)


@pytest.mark.parametrize("fs", [8000, 48000, 192000])
@pytest.mark.parametrize("fc", [50.0, 1000.0, 3000.0])
def test_first_order_phase_is_minus_90_degrees_at_fc(fs, fc):
    sos = st.allpass1_sos(np.array([fc]), fs)
    _, h = scipy.signal.freqz(sos[0, :3], sos[0, 3:], worN=[fc], fs=fs)
    np.testing.assert_allclose(np.angle(h), -np.pi / 2, atol=1e-12)
    np.testing.assert_allclose(np.abs(h), 1.0, atol=1e-12)


@pytest.mark.parametrize("fs", [8000, 48000, 192000])
@pytest.mark.parametrize(("R", "fc"), [(0.5, 100.0), (0.99, 1000.0), (0.9999, 3000.0)])
def test_second_order_poles_sit_at_R_and_fc(fs, R, fc):
    sos = st.allpass2_sos(np.array([R]), np.array([fc]), fs)[0]
    poles = np.roots(sos[3:])
    np.testing.assert_allclose(np.abs(poles), R, rtol=1e-9)
    np.testing.assert_allclose(np.sort(np.abs(np.angle(poles))), 2 * np.pi * fc / fs, rtol=1e-6)
    np.testing.assert_array_equal(sos[:3], sos[3:][::-1])  # mirrored numerator: allpass
    # near the unit circle the phase passes -180 degrees at fc (exactly so as R -> 1)
    _, h = scipy.signal.freqz(sos[:3], sos[3:], worN=[fc], fs=fs)
    assert abs(abs(np.angle(h[0])) - np.pi) < 20 * (1 - R) / np.sin(2 * np.pi * fc / fs)


def warp_composition(prototype_b, prototype_a, a, w):
    """H(D(z)) on the unit circle: every z^-1 of the prototype replaced by D(z) = (a + z^-1)/(1 + a z^-1)."""
    z1 = np.exp(-1j * w)
    d = (a + z1) / (1 + a * z1)
    powers = d[:, None] ** np.arange(len(prototype_b))
    return (powers @ prototype_b) / (powers @ prototype_a)


@pytest.mark.parametrize("a", [-0.8, -0.3, 0.0, 0.5, 0.89])
def test_warped_sections_equal_the_composition(a):
    fs = 48000.0
    w = np.linspace(0, np.pi, 257)
    warped2 = st.allpass2_sos(np.array([0.95]), np.array([700.0]), fs, np.array([a]))[0]
    proto2 = st.allpass2_sos(np.array([0.95]), np.array([700.0]), fs)[0]
    _, h2 = scipy.signal.freqz(warped2[:3], warped2[3:], worN=w)
    np.testing.assert_allclose(h2, warp_composition(proto2[:3], proto2[3:], a, w), atol=1e-10)
    warped1 = st.allpass1_sos(np.array([300.0]), fs, np.array([a]))[0]
    proto1 = st.allpass1_sos(np.array([300.0]), fs)[0]
    _, h1 = scipy.signal.freqz(warped1[:2], warped1[3:5], worN=w)
    np.testing.assert_allclose(h1, warp_composition(proto1[:2], proto1[3:5], a, w), atol=1e-10)


@pytest.mark.parametrize("a", [-0.9, -0.5, 0.0, 0.5, 0.9])
@pytest.mark.parametrize("stretch", [1, 4])
def test_radius_bound_is_tight_for_the_worst_pole_angle(a, stretch):
    R = st.radius_bound(a, stretch)
    # poles next to the real axis on the side a pulls towards the circle (fc in units of fs);
    # not on it, where a double root would leave np.roots only sqrt(eps) accurate
    worst_fc = 1e-3 if a < 0 else 0.5 - 1e-3
    sos = st.allpass2_sos(np.array([R]), np.array([worst_fc]), 1.0, np.array([a]))[0]
    radius = np.max(np.abs(np.roots(sos[3:]))) ** (1.0 / stretch)
    assert radius <= st.R_MAX + 1e-12
    assert radius >= st.R_MAX - 1e-3


@pytest.mark.parametrize(("radius", "n_poles"), [(0.5, 1), (0.99, 1), (0.9999, 1), (0.999, 6)])
def test_impulse_response_length_reaches_tol(radius, n_poles):
    tol = 1e-9
    length = st.impulse_response_length(radius, n_poles, tol)
    # an n-fold real pole: impulse response C(n + m - 1, m - 1) r^n scaled to unit energy
    sos = np.tile([1.0, 0, 0, 1, -radius, 0], (n_poles, 1))
    h = scipy.signal.sosfilt(sos, np.r_[1.0, np.zeros(length + 10)])
    h /= np.sqrt(np.sum(h**2))
    assert np.max(np.abs(h[length:])) < tol
    assert st.impulse_response_length(0.0, 2) == 1
