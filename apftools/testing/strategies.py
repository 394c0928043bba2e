r"""Hypothesis strategies for filters that are stable by construction, and signals to test them with.

Every filter is built directly from its poles (or reflection coefficients),
never drawn at random and filtered for stability: about 28% of order-4
direct-form polynomials with coefficients in [-1, 1] are stable, 1.5% at
order 8, none at 16.  Everything shrinks toward one section, poles at radius
0, a numerator of 1 and an impulse, so a failure shrinks to the simplest
filter and signal that still fail.

Needs hypothesis (``pip install apftools[testing]``).

Examples
--------
>>> from hypothesis import given
>>> from apftools.testing import assert_stable
>>> from apftools.testing.strategies import stable_sos
>>> @given(stable_sos(margin=1e-3))
... def test_my_coefficients_are_stable(sos):
...     assert_stable(sos, margin=1e-3)
>>> test_my_coefficients_are_stable()
"""

import math

import numpy as np
from hypothesis import strategies as st

from ..errors import ApftoolsValueError

__all__ = ["pole_pairs", "stable_sos", "reflection_coefficients", "stable_polynomials", "sample_rates", "cascades",
           "signals"]

#: Pole pairs: a complex-conjugate pair, two real poles, a repeated real pole.
POLE_KINDS = ("complex", "real", "repeated")
#: Section kinds of :class:`apftools.Cascade` (its spec tokens) that :func:`cascades` draws.
CASCADE_KINDS = ("1", "2", "1w", "2w", "1sw", "2sw", "2sw3")
#: :func:`sample_rates` spans its lowest rate to this many times it: stretch factors 1 to 8.
RATE_SPAN = 8


def sample_rates():
    """Sample rates in Hz (integers): from the lowest at which the parameter table's whole ``fc`` range lies below
    :data:`apftools.structures.FC_NYQUIST_FRACTION` of Nyquist (42 106 Hz) to :data:`RATE_SPAN` times it.
    Shrinks toward the lowest.  Lower rates are valid too (their ``fc`` range is capped): pass your own."""
    from ..structures import FC_NYQUIST_FRACTION, RANGES

    lowest = math.ceil(2.0 * RANGES["fc"].high / FC_NYQUIST_FRACTION)
    return st.integers(lowest, RATE_SPAN * lowest)


def _room(margin, dtype):
    """The largest radius to build at so that the rounding to ``dtype`` keeps every pole within ``1 - margin``.

    Repeated poles split by about the square root of the rounding: four times
    ``sqrt(eps)`` of room (1.4e-3 in float32, 6e-8 in float64).
    """
    eps = np.finfo(dtype).eps
    if not 0.0 <= margin < 1.0:
        raise ApftoolsValueError(f"margin must lie in [0, 1), got {margin!r}")
    room = 1.0 - margin - 4.0 * math.sqrt(eps)
    if room <= 0.0:
        raise ApftoolsValueError(f"margin={margin!r} leaves no radius in {np.dtype(dtype).name}")
    return room


@st.composite
def pole_pairs(draw, max_radius=0.999, kinds=POLE_KINDS):
    """Two poles ``(p1, p2)`` (complex numbers) of a real second-order section, within ``max_radius``.

    ``"complex"``: a conjugate pair at any angle; ``"real"``: two real poles
    of either sign; ``"repeated"``: one real pole twice.  Shrinks toward
    ``"complex"`` at radius 0.
    """
    kind = draw(st.sampled_from(kinds))
    radius = draw(st.floats(0.0, max_radius))
    if kind == "complex":
        pole = radius * complex(math.cos(angle := draw(st.floats(0.0, math.pi))), math.sin(angle))
        return pole, pole.conjugate()
    sign = draw(st.sampled_from((1.0, -1.0)))
    other = sign * radius if kind == "repeated" else draw(st.floats(-max_radius, max_radius))
    return complex(sign * radius), complex(other)


def _denominator(p1, p2):
    return [1.0, -(p1 + p2).real, (p1 * p2).real]


@st.composite
def stable_sos(draw, n_sections=(1, 4), margin=1e-3, dtype="float64", numerator="any", kinds=POLE_KINDS):
    r"""Second-order sections, ``(n, 6)`` in ``dtype``, every pole within ``1 - margin`` after the rounding.

    Parameters
    ----------
    n_sections : (int, int)
        Fewest and most sections.
    margin : float
        Distance of every pole from the unit circle, at least.
    dtype : str
        ``"float64"`` or ``"float32"``: the coefficients are rounded to it
        (poles are built with room for the rounding, :func:`_room`).
    numerator : {"any", "fir", "allpass"}
        ``"any"``: each numerator :math:`(1 - u_0, u_1, u_2)`, :math:`u \in [-4, 4]`;
        ``"fir"``: those numerators over a denominator of 1 (no poles);
        ``"allpass"``: each numerator mirrors its denominator.
    kinds : tuple of str
        Pole pairs drawn (:func:`pole_pairs`).
    """
    if numerator not in ("any", "fir", "allpass"):
        raise ApftoolsValueError(f"numerator must be 'any', 'fir' or 'allpass', got {numerator!r}")
    room = _room(margin, dtype)
    rows = []
    for _ in range(draw(st.integers(*n_sections))):
        denominator = [1.0, 0.0, 0.0] if numerator == "fir" else _denominator(*draw(pole_pairs(room, kinds)))
        if numerator == "allpass":
            top = denominator[::-1]
        else:
            u = [draw(st.floats(-4.0, 4.0)) for _ in range(3)]
            top = [1.0 - u[0], u[1], u[2]]
        rows.append(top + denominator)
    return np.array(rows, dtype=dtype).reshape(-1, 6)


def reflection_coefficients(order=(1, 8), margin=1e-3):
    """Reflection (PARCOR) coefficients, each in ``[-(1 - margin), 1 - margin]``: a lattice that is stable at any
    order (shrinks toward 0)."""
    bound = 1.0 - margin
    return st.integers(*order).flatmap(lambda n: st.lists(st.floats(-bound, bound), min_size=n, max_size=n)).map(
        np.array)


def stable_polynomials(order=(1, 8), margin=1e-3):
    r"""Denominators :math:`1 + a_1 z^{-1} + \dots + a_n z^{-n}`, float64, every root within ``1 - margin``.

    Reflection coefficients within :math:`\pm\rho`, :math:`\rho = 1 - \text{margin}`,
    give, by the step-up recursion
    :math:`a^{(m)} = [a^{(m-1)}, 0] + k_m [0, \overline{a^{(m-1)}}]`, roots inside
    the unit circle; :math:`a_i \rho^i` moves each root :math:`z` to :math:`\rho z`.
    """
    def step_up(ks):
        a = np.ones(1)
        for k in ks:
            a = np.concatenate([a, [0.0]]) + k * np.concatenate([[0.0], a[::-1]])
        return a * (1.0 - margin) ** np.arange(len(a))

    return reflection_coefficients(order, margin).map(step_up)


@st.composite
def cascades(draw, kinds=CASCADE_KINDS, max_sections=4, rates=None, theta_range=6.0, saturate=True):
    """``(Cascade, theta)``: an apftools cascade of ``kinds`` at a rate drawn from ``rates`` (a strategy; default
    :func:`sample_rates`), theta within ``theta_range``.

    Theta is mapped through the one parameter table (:data:`apftools.RANGES`),
    so every draw is a valid filter; ``saturate`` adds values that drive
    ``tanh`` to exactly +-1, the parameters' edges.  Shrinks toward one
    section at theta 0, the middle of every range.
    """
    from hypothesis.extra.numpy import arrays

    from ..cascade import Cascade

    names = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=max_sections))
    cascade = Cascade(",".join(names), draw(sample_rates() if rates is None else rates))
    elements = st.floats(-theta_range, theta_range)
    if saturate:
        elements = st.one_of(elements, st.sampled_from([-1e3, -40.0, 40.0, 1e3]))
    return cascade, draw(arrays(np.float64, cascade.n_params, elements=elements))


@st.composite
def signals(draw, n_samples=(16, 1024)):
    """Test signals, 1-D float64: an impulse at sample 0, a step, seeded white noise or a cosine from DC to Nyquist,
    in that order of shrinking."""
    n = draw(st.integers(*n_samples))
    kind = draw(st.sampled_from(("impulse", "step", "noise", "sine")))
    if kind == "impulse":
        x = np.zeros(n)
        x[0] = 1.0
        return x
    if kind == "step":
        return np.ones(n)
    if kind == "noise":
        return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(n)
    return np.cos(np.pi * draw(st.floats(0.0, 1.0)) * np.arange(n))  # DC to Nyquist, never all zero
