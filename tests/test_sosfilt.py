"""apftools.sosfilt as a drop-in for scipy.signal.sosfilt: scipy's own tests, state in and out, blocks.

scipy's ``TestSOSFilt`` (shipped in the scipy wheel) runs here with its
module's ``sosfilt`` replaced by apftools' traced path: every call goes
through the compiled kernels and their autograd primitive, not through
scipy.  Complex input is supported untraced only (the adjoint is real), so
for complex dtypes the substitute falls back to the untraced call, which is
scipy's; the README lists that exception.
"""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.signal
import scipy.signal.tests.test_signaltools as scipy_tests
from autograd.test_util import check_grads
from conftest import random_stable_sos

from apftools import sosfilt
from autograd.tracer import getval


def traced_sosfilt(sos, x, axis=-1, zi=None):
    """apftools.sosfilt evaluated on its traced path (x boxed), returning plain arrays like scipy."""
    x = np.asarray(x)
    if np.iscomplexobj(x) or np.iscomplexobj(sos) or (zi is not None and np.iscomplexobj(zi)):
        return sosfilt(sos, x, axis=axis, zi=zi)
    captured = []

    def run(xx):
        captured.append(sosfilt(sos, xx, axis=axis, zi=zi))
        return anp.sum(captured[0] if zi is None else captured[0][0])

    autograd.make_vjp(run)(x)
    return getval(captured[0]) if zi is None else tuple(getval(part) for part in captured[0])


@pytest.fixture
def xp():
    return np


@pytest.fixture
def on_the_traced_path(monkeypatch):
    monkeypatch.setattr(scipy_tests, "sosfilt", traced_sosfilt)


@pytest.mark.usefixtures("on_the_traced_path")
class TestScipySOSFilt(scipy_tests.TestSOSFilt):
    """scipy's TestSOSFilt, every test and dtype, against apftools' traced sosfilt."""


def test_the_substitute_really_traces(monkeypatch):
    calls = []
    import apftools.filtering as filtering

    original = filtering._cascade_state
    monkeypatch.setattr(filtering, "_cascade_state", lambda *a: calls.append(1) or original(*a))
    sos = scipy.signal.butter(2, 0.1, output="sos")
    y, zf = traced_sosfilt(sos, np.ones(10), zi=np.zeros((1, 2)))
    assert calls and np.allclose(y, scipy.signal.sosfilt(sos, np.ones(10)))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gradients_with_state_in_and_out(axis):
    rng = np.random.default_rng(axis + 5)
    sos = random_stable_sos(rng, 3, max_radius=0.9)
    x = rng.standard_normal((40, 30))
    zi_shape = (3,) + tuple(2 if i == axis % 2 else n for i, n in enumerate(x.shape))
    zi = rng.standard_normal(zi_shape)
    weights = rng.standard_normal(x.shape)

    def loss(free, xx, z):  # the five free coefficients per section; a0 stays 1
        s = anp.concatenate([free[:, :3], anp.ones((3, 1)), free[:, 3:]], axis=1)
        y, zf = sosfilt(s, xx, axis=axis, zi=z)
        return anp.sum(weights * y) + anp.sum(zf**2)  # the final state's cotangent matters too

    check_grads(loss, modes=["rev"], order=1)(np.delete(sos, 3, axis=1), x, zi)


def test_blocks_with_carried_state_equal_one_shot_in_value_and_gradient():
    rng = np.random.default_rng(3)
    sos = random_stable_sos(rng, 4, max_radius=0.95)
    x = rng.standard_normal((2, 9000))
    weights = rng.standard_normal(x.shape)

    def blockwise(s, xx):
        state = anp.zeros((4, 2, 2))
        blocks = []
        for start in range(0, 9000, 2048):  # a loop over blocks, not samples
            y, state = sosfilt(s, xx[:, start:start + 2048], zi=state)
            blocks.append(y)
        return anp.concatenate(blocks, axis=1)

    np.testing.assert_allclose(blockwise(sos, x), scipy.signal.sosfilt(sos, x), rtol=0, atol=1e-12)
    one_shot = autograd.grad(lambda s, xx: anp.sum(weights * sosfilt(s, xx)), (0, 1))(sos, x)
    in_blocks = autograd.grad(lambda s, xx: anp.sum(weights * blockwise(s, xx)), (0, 1))(sos, x)
    for a, b in zip(in_blocks, one_shot):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_float32_stays_float32_and_bad_state_shapes_are_refused():
    sos = scipy.signal.butter(2, 0.1, output="sos")
    x = np.ones(16, dtype=np.float32)
    assert traced_sosfilt(sos, x).dtype == np.float64  # scipy's rule: result_type(sos, x)
    single = traced_sosfilt(sos.astype(np.float32), x)
    assert single.dtype == np.float32
    np.testing.assert_array_equal(single, scipy.signal.sosfilt(sos.astype(np.float32), x))  # float32 arithmetic
    with pytest.raises(ValueError, match=r"Invalid zi shape: zi must have shape \(1, 2\)"):
        autograd.make_vjp(lambda xx: sosfilt(sos, xx, zi=np.zeros((1, 3)))[0])(x.astype(float))
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        autograd.make_vjp(lambda xx: sosfilt(sos, xx, axis=2))(x.astype(float))


def test_reversed_filtering_in_blocks_from_the_end_equals_one_shot():
    from apftools.filtering import sosfilt_reversed

    rng = np.random.default_rng(8)
    sos = random_stable_sos(rng, 3, max_radius=0.95)
    x = rng.standard_normal((2, 7000))
    one_shot = sosfilt_reversed(sos, x)
    np.testing.assert_allclose(one_shot, scipy.signal.sosfilt(sos, x[:, ::-1])[:, ::-1], rtol=0, atol=1e-12)
    weights = rng.standard_normal(x.shape)

    def blocks_from_the_end(s):
        state, pieces = anp.zeros((3, 2, 2)), []
        for stop in range(7000, 0, -1500):  # the last block first, the state carried towards the start
            y, state = sosfilt_reversed(s, x[:, max(0, stop - 1500):stop], zi=state)
            pieces.insert(0, y)
        return anp.concatenate(pieces, axis=1)

    np.testing.assert_allclose(blocks_from_the_end(sos), one_shot, rtol=0, atol=1e-12)
    np.testing.assert_allclose(autograd.grad(lambda s: anp.sum(weights * blocks_from_the_end(s)))(sos),
                               autograd.grad(lambda s: anp.sum(weights * sosfilt_reversed(s, x)))(sos), rtol=1e-10)
