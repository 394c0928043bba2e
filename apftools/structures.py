r"""Allpass section kinds, their coefficients and their parameter ranges.

Kinds (the tokens of a cascade spec such as ``"3x2w,1w"``):

=======  =====================================================================
``1``    first-order allpass, parameter ``fc`` (90-degree frequency, Hz)
``2``    second-order allpass, parameters ``R`` (pole radius) and ``fc`` (Hz)
``1w``   warped first-order: ``fc`` and warp coefficient ``a``
``2w``   warped second-order: ``R``, ``fc`` and ``a``
``1sw``  stretched + warped first-order, :math:`H_{1w}(z^M)`
``2sw``  stretched + warped second-order, :math:`H_{2w}(z^M)`
=======  =====================================================================

A token may start with a count (``3x2w`` is three ``2w`` sections) and a
stretched kind may end with its stretch factor M (``2sw4``); without it M is
:func:`default_stretch` of the sample rate.  A stretched section's prototype
runs at ``fs / M``: its ``fc`` is a frequency of that prototype, and its
response repeats every ``fs / M`` Hz.

Stability by construction
-------------------------
Optimisers work on an unconstrained vector ``theta``.  Each entry maps through
``u = tanh(theta)`` into [-1, 1] and :meth:`ParamRange.denormalise` maps ``u``
into the interior of the physical range in :data:`RANGES`, the one parameter
table of apftools (BiasNet's tanh outputs use the same map).  The ranges are
narrowed per section by :func:`param_bounds` so that every pole of every kind
lies at radius at most :data:`R_MAX` in the z-plane:

* warping maps a prototype pole :math:`p` to :math:`(p - a)/(1 - a p)`, whose
  radius is at most :math:`(|p| + |a|)/(1 + |a||p|)`, so a second-order
  section with warp ``a`` allows :math:`R \le (r - |a|)/(1 - |a| r)`; a
  first-order section's real pole is bounded exactly through its ``fc`` range;
* stretching takes M-th roots of the prototype's poles, so the prototype
  bound is :math:`r = R_{max}^M`.

Round trip by construction
--------------------------
:func:`param_bounds` is the one definition of each parameter's allowed set:
the closed interval ``[low, high]``.  The map from ``theta`` uses it, and so
does :func:`check_section`, which validates models on load.  The map keeps a
margin of :data:`EDGE_MARGIN` of the interval's width at either end, so every
value it can produce in float64, even with ``tanh`` saturated to exactly
:math:`\pm 1` (:math:`|\theta| \gtrsim 19`), lies strictly inside the
closed interval that :func:`check_section` accepts, with room to spare for
the rounding of the bounds themselves.

References
----------
Bargum, Serafin, Erkut, Parker, "Differentiable all-pass filters for phase
response estimation and automatic signal alignment", DAFx 2023.
Härmä et al., "Frequency-warped signal processing for audio applications",
JAES 48(11), 2000.
Zölzer (ed.), *DAFX: Digital Audio Effects*, 2nd ed., Wiley 2011, ch. 2.
"""

import math
import numbers
import re
from dataclasses import dataclass

import numpy as np

from .errors import ApftoolsTypeError, ApftoolsValueError

#: Largest pole radius of any section, in the z-plane, for every kind.  A pole
#: at this radius decays by 60 dB in about 69 000 samples.
R_MAX = 0.9999
#: Largest magnitude of the warp coefficient ``a``.
A_MAX = 0.9
#: ``fc`` stays below this fraction of the section's Nyquist frequency.
FC_NYQUIST_FRACTION = 0.95
#: The default stretch factor keeps ``fs / M`` at or above this rate (Hz).
STRETCH_MIN_RATE_HZ = 40000.0
#: Fraction of every parameter's interval that the map from ``theta`` leaves free at each end (half of it
#: at each end): 1e-9 of the width is far above float64 rounding (1e-16) and far below anything audible.
EDGE_MARGIN = 1e-9
#: Largest stretch factor M: the largest with R_MAX**M > A_MAX, so a warped section keeps room for R.
MAX_STRETCH = int(math.log(A_MAX) / math.log(R_MAX))
#: Most sections in one cascade (a spec or a model file asking for more is refused).
MAX_SECTIONS = 256
#: Largest ``|u|`` that :meth:`ParamRange.normalise` returns, so ``arctanh(u)`` stays finite.
_U_MAX = float(np.nextafter(1.0, 0.0))


@dataclass(frozen=True)
class ParamRange:
    """A named physical parameter range and its map from (-1, 1).

    Attributes
    ----------
    name : str
    low, high : float
        Closed interval of the parameter (:func:`param_bounds` narrows it per section).
    unit : str
        ``"Hz"`` for frequencies, ``""`` for dimensionless values.
    scale : {"linear", "log"}
        How ``u`` in (-1, 1) spreads over the interval.
    """

    name: str
    low: float
    high: float
    unit: str
    scale: str

    def denormalise(self, u, low=None, high=None):
        r"""Map ``u`` in [-1, 1] into the interior of [low, high]; ``low``/``high`` may narrow the range.

        .. math:: t = \tfrac12 \big(1 + (1 - \epsilon) u\big) \in
                  [\epsilon / 2,\ 1 - \epsilon / 2], \qquad
                  v = \mathrm{low} + t\,(\mathrm{high} - \mathrm{low}) \ \text{or} \
                  \mathrm{low}\,(\mathrm{high} / \mathrm{low})^t \ \text{(log scale)},

        with :math:`\epsilon` = :data:`EDGE_MARGIN`: even ``u = +-1`` lands
        strictly inside the closed interval.
        """
        low = self.low if low is None else low
        high = self.high if high is None else high
        t = 0.5 * (1.0 + (1.0 - EDGE_MARGIN) * u)
        if self.scale == "log":
            return low * (high / low) ** t
        return low + t * (high - low)

    def normalise(self, value, low=None, high=None):
        """Inverse of :meth:`denormalise`, clipped to ``|u| < 1`` for values in the margins or on the bounds."""
        low = self.low if low is None else low
        high = self.high if high is None else high
        if self.scale == "log":
            t = np.log(value / low) / np.log(high / low)
        else:
            t = (value - low) / (high - low)
        return np.clip((2.0 * t - 1.0) / (1.0 - EDGE_MARGIN), -_U_MAX, _U_MAX)


#: The parameter table shared by the fitters, BiasNet, model files and the CLI.
RANGES = {
    "R": ParamRange("R", 0.0, R_MAX, "", "linear"),
    "fc": ParamRange("fc", 20.0, 20000.0, "Hz", "log"),
    "a": ParamRange("a", -A_MAX, A_MAX, "", "linear"),
}


@dataclass(frozen=True)
class SectionKind:
    """One allpass section kind: its order, warping and stretch factor."""

    order: int
    warped: bool
    stretch: int = 1
    stretched: bool = False

    @property
    def name(self):
        """The spec token of this kind, e.g. ``"2w"`` or ``"2sw4"``."""
        if self.stretched:
            return f"{self.order}sw{self.stretch}"
        return f"{self.order}{'w' if self.warped else ''}"

    @property
    def param_names(self):
        """Names of this kind's physical parameters, in ``theta`` order."""
        names = ("R", "fc") if self.order == 2 else ("fc",)
        return names + ("a",) if self.warped else names


def default_stretch(fs):
    """Stretch factor M for stretched kinds at sample rate ``fs`` (Hz).

    The largest M with ``fs / M >= STRETCH_MIN_RATE_HZ``, at least 1: 1 at
    48 kHz, 2 at 96 kHz, 4 at 192 kHz.
    """
    return max(1, int(fs // STRETCH_MIN_RATE_HZ))


_TOKEN = re.compile(r"^(?:(\d+)\s*x\s*)?([12])(w|sw(\d+)?)?$")


def parse_spec(spec, fs):
    """Parse a cascade spec such as ``"3x2w,1w"`` into a tuple of :class:`SectionKind`.

    Parameters
    ----------
    spec : str
        Comma-separated tokens ``[COUNTx]KIND`` with KIND one of ``1``, ``2``,
        ``1w``, ``2w``, ``1sw[M]``, ``2sw[M]``.
    fs : float
        Sample rate in Hz (already validated), for the default stretch.
    """
    if not isinstance(spec, str):
        raise ApftoolsValueError(f"cascade spec must be a string such as '3x2w,1w', got {spec!r}")
    kinds = []
    for token in spec.split(","):
        match = _TOKEN.match(token.strip())
        if match is None:
            raise ApftoolsValueError(
                f"bad section {token.strip()!r} in cascade spec {spec!r}: expected "
                "[COUNTx]KIND with KIND one of 1, 2, 1w, 2w, 1sw[M], 2sw[M], e.g. '3x2w,1w'"
            )
        count, order, suffix, stretch = match.groups()
        count = 1 if count is None else int(count)
        if not 1 <= count <= MAX_SECTIONS - len(kinds):
            raise ApftoolsValueError(f"cascade spec {spec!r} asks for {count} section(s) in {token.strip()!r}; "
                                     f"a cascade holds 1 to {MAX_SECTIONS} sections")
        stretched = suffix is not None and suffix.startswith("sw")
        stretch = (int(stretch) if stretch else default_stretch(fs)) if stretched else 1
        if not 1 <= stretch <= MAX_STRETCH:
            raise ApftoolsValueError(
                f"stretch factor must be in [1, {MAX_STRETCH}] in {token.strip()!r}, got {stretch}")
        kinds += [SectionKind(int(order), suffix is not None, stretch, stretched)] * count
    return tuple(kinds)


def format_spec(kinds):
    """The canonical spec string of ``kinds`` (inverse of :func:`parse_spec`)."""
    runs = []
    for kind in kinds:
        if runs and runs[-1][1] == kind.name:
            runs[-1][0] += 1
        else:
            runs.append([1, kind.name])
    return ",".join(name if count == 1 else f"{count}x{name}" for count, name in runs)


def allpass1_sos(fc, fs, a=0.0):
    r"""Coefficients of (warped) first-order allpass sections.

    .. math:: H(z) = \frac{k + D(z)}{1 + k D(z)}, \qquad
              k = \frac{\tan(\pi f_c / f_s) - 1}{\tan(\pi f_c / f_s) + 1}, \qquad
              D(z) = \frac{a + z^{-1}}{1 + a z^{-1}},

    which multiplies out to :math:`(g + z^{-1}) / (1 + g z^{-1})` with
    :math:`g = (k + a)/(1 + k a)`: warping a first-order allpass only moves
    its coefficient.  With ``a = 0`` the phase is -90 degrees at ``fc``.

    Parameters
    ----------
    fc : array_like
        90-degree frequency of the unwarped prototype in Hz, in (0, fs/2).
    fs : float
        Sample rate in Hz (``fs / M`` for a stretched section).
    a : array_like
        Warp coefficient, :math:`|a| < 1`.

    Returns
    -------
    sos : ndarray, shape (n, 6)
        Rows ``[g, 1, 0, 1, g, 0]``.
    """
    t = np.tan(np.pi * fc / fs)
    k = (t - 1.0) / (t + 1.0)
    g = (k + a) / (1.0 + k * a)
    one, zero = np.ones_like(g), np.zeros_like(g)
    return np.stack([g, one, zero, one, g, zero], axis=-1)


def allpass2_sos(R, fc, fs, a=0.0):
    r"""Coefficients of (warped) second-order allpass sections.

    The prototype with pole radius :math:`R` and centre frequency :math:`f_c`,

    .. math:: H(z) = \frac{c + d z^{-1} + z^{-2}}{1 + d z^{-1} + c z^{-2}}, \qquad
              c = R^2, \quad d = -2 R \cos(2 \pi f_c / f_s),

    has every unit delay replaced by :math:`D(z) = (a + z^{-1})/(1 + a z^{-1})`.
    Multiplying out by :math:`(1 + a z^{-1})^2` gives a biquad with numerator
    :math:`[n_0, n_1, n_2]` and the mirrored denominator :math:`[n_2, n_1, n_0]`:

    .. math:: n_0 = c + a d + a^2, \quad n_1 = 2 a (1 + c) + d (1 + a^2), \quad
              n_2 = 1 + a d + c a^2,

    normalised by :math:`n_2 = |1 - a p|^2 > 0` (:math:`p` a prototype pole),
    which cannot vanish for :math:`|a| < 1` and :math:`R < 1`.

    Parameters
    ----------
    R : array_like
        Prototype pole radius in [0, 1).
    fc : array_like
        Prototype centre frequency in Hz (phase -180 degrees there when a = 0).
    fs : float
        Sample rate in Hz (``fs / M`` for a stretched section).
    a : array_like
        Warp coefficient, :math:`|a| < 1`.

    Returns
    -------
    sos : ndarray, shape (n, 6)
    """
    c = R * R
    d = -2.0 * R * np.cos(2.0 * np.pi * fc / fs)
    n0 = c + a * d + a * a
    n1 = 2.0 * a * (1.0 + c) + d * (1.0 + a * a)
    n2 = 1.0 + a * d + c * a * a
    b0, b1 = n0 / n2, n1 / n2
    one = np.ones_like(b0)
    return np.stack([b0, b1, one, one, b1, b0], axis=-1)


def radius_bound(a, stretch):
    r"""Largest prototype pole radius R of a second-order section with warp ``a`` and stretch M.

    :math:`(r - |a|)/(1 - |a| r)` with :math:`r = R_{max}^M`, so that every
    pole of :math:`H(D(z^M))` lies within :data:`R_MAX`.  :math:`|a|` is taken
    as :math:`\sqrt{a^2 + 10^{-24}}` (at most :math:`10^{-12}` more
    conservative) so the map stays analytic for complex-step derivatives.
    """
    r = R_MAX**stretch
    abs_a = np.sqrt(a * a + 1e-24)
    return (r - abs_a) / (1.0 - abs_a * r)


def fc_bounds(order, fs, stretch, a):
    """Open interval (low, high) of ``fc`` in Hz for sections with warp ``a`` (``order`` may be an array).

    The table's range, capped below :data:`FC_NYQUIST_FRACTION` of the
    prototype's Nyquist frequency and, for first-order sections, to the
    frequencies whose warped pole stays within :data:`R_MAX`.
    """
    fs_proto = fs / stretch
    low = RANGES["fc"].low + 0.0 * a
    high = np.minimum(RANGES["fc"].high, FC_NYQUIST_FRACTION * fs_proto / 2.0) + 0.0 * a
    first = np.asarray(order) == 1
    if not np.any(first):
        return low, high
    # g = (k + a)/(1 + k a) lies in [-r, r] exactly when k lies between (-r - a)/(1 + r a) and (r - a)/(1 - r a);
    # the 90-degree frequency of coefficient k is (fs / pi) arctan((1 + k)/(1 - k)), which at those ends is
    # arctan(beta / rho) and arctan(beta rho) with beta = (1 - a)/(1 + a) and rho = (1 + r)/(1 - r)
    r = R_MAX**stretch
    rho, beta = (1.0 + r) / (1.0 - r), (1.0 - a) / (1.0 + a)
    low_1 = np.maximum(low, fs_proto / np.pi * np.arctan(beta / rho))
    high_1 = np.minimum(high, fs_proto / np.pi * np.arctan(beta * rho))
    if np.all(first):
        return low_1, high_1
    return np.where(first, low_1, low), np.where(first, high_1, high)


def param_bounds(order, fs, stretch, a):
    """The closed interval ``(low, high)`` of every parameter of a section with warp ``a``.

    The one definition of each parameter's allowed set: the map from
    ``theta`` (:meth:`apftools.Cascade.params`) lands inside it by
    construction and :func:`check_section` accepts exactly it.  ``a`` may be
    an array (one value per section); so may ``stretch``.

    Returns
    -------
    dict
        ``{"a": ..., "fc": ...}`` plus ``"R"`` for second-order sections.
    """
    bounds = {"a": (RANGES["a"].low, RANGES["a"].high), "fc": fc_bounds(order, fs, stretch, a)}
    if order == 2:
        bounds["R"] = (RANGES["R"].low, radius_bound(a, stretch))
    return bounds


def check_section(kind, section, fs, where="section"):
    """Validate one section's physical parameters against :func:`param_bounds`.

    Parameters
    ----------
    kind : SectionKind
    section : dict
        ``{"kind": name (optional), name: value, ...}`` with exactly the
        kind's :attr:`~SectionKind.param_names`.
    fs : float
        Sample rate in Hz (validated).
    where : str
        How messages name the section, e.g. ``"section 2"``.

    Returns
    -------
    dict
        The parameters as floats (without ``"kind"``).

    Raises
    ------
    ApftoolsTypeError, ApftoolsValueError
        Not a dict, another kind, missing or unknown names, a value that is
        not a finite number, or one outside its interval; the message names
        the parameter, its value and the interval.  ``a`` is checked first,
        since the other intervals depend on it.
    """
    if not isinstance(section, dict):
        raise ApftoolsTypeError(f"{where} must be a dict of parameters, got {section!r}")
    values = dict(section)
    if values.pop("kind", kind.name) != kind.name:
        raise ApftoolsValueError(f"{where} is {section['kind']!r} but the spec says {kind.name!r}")
    if set(values) != set(kind.param_names):
        raise ApftoolsValueError(
            f"{where} ({kind.name}) needs parameters {list(kind.param_names)}, got {sorted(map(str, values))}")
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ApftoolsValueError(f"{where} ({kind.name}): {name}={value!r} is not a finite number")
    values = {name: float(value) for name, value in values.items()}
    a = values.get("a", 0.0)
    for name in ("a", "R", "fc"):  # a first: the other bounds are computed from it
        if name not in values:
            continue
        bounds = (RANGES["a"].low, RANGES["a"].high) if name == "a" else \
            param_bounds(kind.order, fs, kind.stretch, a)[name]
        low, high = (float(b) for b in bounds)
        if not low <= values[name] <= high:
            unit = f" {RANGES[name].unit}" if RANGES[name].unit else ""
            depends = f" for a={a!r}" if name != "a" and kind.warped else ""
            raise ApftoolsValueError(
                f"{where} ({kind.name}): {name}={values[name]!r}{unit} is outside [{low!r}, {high!r}]{unit}{depends}, "
                f"the range that keeps every pole within R_MAX={R_MAX} at fs={fs:g} Hz")
    return values


def impulse_response_length(radius, n_poles, tol=1e-9):
    r"""Samples until an impulse response whose slowest pole has ``radius`` decays below ``tol``.

    With :math:`\nu = -\ln r`, ``n_poles`` = m coinciding poles give an
    envelope :math:`(\nu n)^{m-1} e^{-\nu n} / (m-1)!`; the length solves
    :math:`t = \ln(1/\mathrm{tol}) + (m-1)\ln t - \ln (m-1)!` for :math:`t = \nu n`
    by fixed-point iteration.  Assuming all poles coincide at the largest
    radius makes this a safe upper estimate (never the research notebook's
    fixed 1000 samples: a pole at R_MAX needs about 200 000).
    """
    if radius <= 0.0:
        return 1
    nu = -math.log(radius)
    t = math.log(1.0 / tol)
    for _ in range(50):
        t = math.log(1.0 / tol) + (n_poles - 1) * math.log(max(t, 1.0)) - math.lgamma(n_poles)
    return int(math.ceil(max(t, 1.0) / nu)) + 1
