r"""Cascades of allpass sections: parameters, filtering, responses, JSON.

A :class:`Cascade` is the structure (a spec such as ``"3x2w,1w"`` and a
sample rate); the parameters live in a separate unconstrained vector
``theta`` so that optimisers and autograd see a plain array.  Every method
taking ``theta`` is differentiable with autograd.
"""

import math
import warnings

import autograd.numpy as anp
import numpy as np
import scipy.signal
from autograd.extend import defvjp, primitive
from autograd.tracer import getval

from . import structures as st
from ._validate import check_keys, short_repr, validate_fs
from .errors import ApftoolsTypeError, ApftoolsValueError
from .filtering import filter_stretched

MODEL_FORMAT = "apftools.cascade"
MODEL_VERSION = 1


class Cascade:
    r"""A cascade of allpass sections at a fixed sample rate.

    Parameters
    ----------
    spec : str
        Sections in order, e.g. ``"3x2w,1w"`` (see :mod:`apftools.structures`).
    fs : float
        Sample rate in Hz.

    Notes
    -----
    The cascade's transfer function is :math:`H(z) = \prod_s H_s(z^{M_s})`
    with :math:`H_s` from :func:`~apftools.structures.allpass1_sos` or
    :func:`~apftools.structures.allpass2_sos`.  Any finite ``theta`` gives a
    stable, exactly allpass cascade with every pole at radius at most
    :data:`~apftools.structures.R_MAX`.

    Examples
    --------
    >>> import numpy as np
    >>> from apftools import Cascade
    >>> cascade = Cascade("3x2w,1w", fs=48000)
    >>> theta = cascade.init(rng=0)
    >>> y = cascade.process(theta, np.random.default_rng(1).standard_normal(48000))
    >>> cascade.n_params
    11
    """

    def __init__(self, spec, fs):
        self.fs = validate_fs(fs)
        self.kinds = st.parse_spec(spec, self.fs)
        self.spec = st.format_spec(self.kinds)
        self.offsets = []  # per section: parameter name -> index in theta
        n = 0
        for kind in self.kinds:
            self.offsets.append({name: n + j for j, name in enumerate(kind.param_names)})
            n += len(kind.param_names)
        self.n_params = n
        # for sos_jacobian, (slot, section, column) index arrays: slot j steps the j-th parameter of every
        # section having one, at its column of theta
        steps = [(j, s, list(o.values())[j]) for j in range(3) for s, o in enumerate(self.offsets) if len(o) > j]
        self._steps = tuple(np.array(column, dtype=int) for column in zip(*steps))
        # per section, for the map from theta: order, stretch, warping, and the column of each parameter in
        # theta (n_params points at a padded 0, u = 0, for parameters a kind does not have)
        self._order = np.array([k.order for k in self.kinds])
        self._stretch = np.array([k.stretch for k in self.kinds], dtype=float)
        self._warped = np.array([k.warped for k in self.kinds], dtype=float)
        self._index = {name: np.array([o.get(name, n) for o in self.offsets]) for name in ("R", "fc", "a")}
        self._runs = []  # (start, stop, stretch) of consecutive sections sharing a stretch factor
        for i, kind in enumerate(self.kinds):
            if self._runs and self._runs[-1][2] == kind.stretch:
                self._runs[-1][1] = i + 1
            else:
                self._runs.append([i, i + 1, kind.stretch])
        for kind, a in {(k, a) for k in self.kinds for a in ((-st.A_MAX, st.A_MAX) if k.warped else (0.0,))}:
            low, high = st.fc_bounds(kind.order, self.fs, kind.stretch, a)
            if not low < high:
                raise ApftoolsValueError(
                    f"fs={self.fs!r} Hz leaves no room for fc of a {kind.name!r} section: "
                    f"fc would have to lie in ({low:.6g}, {high:.6g}) Hz"
                )

    def __repr__(self):
        return f"Cascade({self.spec!r}, fs={self.fs!r})"

    @property
    def n_sections(self):
        """Number of sections."""
        return len(self.kinds)

    # ------------------------------------------------------------------ parameters
    def init(self, rng=None):
        """A random unconstrained parameter vector.

        Every parameter is drawn with ``tanh(theta)`` uniform in (-0.9, 0.9):
        ``fc`` log-uniform and ``R``, ``a`` uniform over most of their ranges.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
            Seed or generator (``numpy.random.default_rng(rng)``).
        """
        rng = np.random.default_rng(rng)
        return np.arctanh(rng.uniform(-0.9, 0.9, self.n_params))

    def _check_theta(self, theta):
        shape = np.shape(getval(theta))
        if shape != (self.n_params,):
            raise ApftoolsValueError(f"theta must have shape ({self.n_params},) for {self!r}, got {shape}")

    def _physical(self, u):
        """Physical (R, fc, a) of every section from u = tanh(theta) padded with a 0, inside param_bounds.

        Shapes (..., n_sections); R is meaningless for first-order sections, a is 0 for unwarped ones.
        """
        a = self._warped * st.RANGES["a"].denormalise(u[..., self._index["a"]])
        fc_low, fc_high = st.fc_bounds(self._order, self.fs, self._stretch, a)
        R = st.RANGES["R"].denormalise(u[..., self._index["R"]], high=st.radius_bound(a, self._stretch))
        fc = st.RANGES["fc"].denormalise(u[..., self._index["fc"]], fc_low, fc_high)
        return R, fc, a

    def _sos_values(self, theta):
        """Coefficients for a plain (real or complex) theta of shape (..., n_params); no autograd tracing."""
        u = np.tanh(np.concatenate([theta, np.zeros(np.shape(theta)[:-1] + (1,))], axis=-1))
        R, fc, a = self._physical(u)
        fs_proto = self.fs / self._stretch
        second = self._order == 2
        if np.all(second):
            return st.allpass2_sos(R, fc, fs_proto, a)
        if not np.any(second):
            return st.allpass1_sos(fc, fs_proto, a)
        return np.where(second[:, None], st.allpass2_sos(R, fc, fs_proto, a), st.allpass1_sos(fc, fs_proto, a))

    def sos_jacobian(self, theta, step=1e-30):
        """Coefficients and their derivatives, ``(sos, d sos / d theta)``.

        Shapes (n_sections, 6) and (n_sections, 6, n_params); for a batch of
        parameter vectors, ``theta`` of shape (B, n_params), (B, n_sections, 6)
        and (B, n_sections, 6, n_params).

        A section's coefficients depend only on its own parameters, so
        stepping the j-th parameter of every section at once yields all the
        derivatives with respect to j-th parameters: three complex
        evaluations in all, whose real parts are the coefficients.  The map is
        analytic (see :func:`~apftools.structures.radius_bound`), so the
        imaginary part divided by the step is the derivative to rounding,
        without the cancellation of finite differences (Squire and Trapp,
        SIAM Review 40(1), 1998).
        """
        theta = np.asarray(theta, dtype=float)
        if theta.ndim != 2:
            self._check_theta(theta)
        elif theta.shape[1] != self.n_params:
            raise ApftoolsValueError(f"a batch of theta must have shape (B, {self.n_params}) for {self!r}, "
                                     f"got {theta.shape}")
        batch = theta.reshape(-1, self.n_params)
        slots, sections, columns = self._steps
        stepped = np.repeat(batch.astype(complex)[:, None, :], 3, axis=1)
        stepped[:, slots, columns] += 1j * step
        values = self._sos_values(stepped)  # (B, 3, n_sections, 6): one evaluation for the whole batch
        jacobian = np.zeros((len(batch), self.n_sections, 6, self.n_params))
        jacobian[:, sections, :, columns] = np.moveaxis(values[:, slots, sections].imag, 0, 1) / step
        sos = values[:, 0].real  # every kind has a first parameter, so slot 0 leaves no row unstepped
        if theta.ndim == 1:
            return sos[0], jacobian[0]
        return sos, jacobian

    def sos(self, theta):
        """Prototype coefficients of every section, shape (n_sections, 6).

        Row ``s`` holds :math:`H_s(z)`; the cascade applies :math:`H_s(z^{M_s})`
        with ``M_s = kinds[s].stretch``.  Differentiable in ``theta``: one
        autograd primitive whose derivative comes from
        :meth:`sos_jacobian`, instead of some hundred traced small operations.
        """
        self._check_theta(theta)
        return _sos_primitive(theta, self)

    def params(self, theta):
        """Physical parameters of every section.

        Returns
        -------
        list of dict
            Per section ``{"kind": name, "R": ..., "fc": ... (Hz), "a": ...}``
            with only the parameters of that kind.
        """
        self._check_theta(theta)
        theta = np.asarray(getval(theta), dtype=float)
        values = dict(zip(("R", "fc", "a"), self._physical(np.tanh(np.append(theta, 0.0)))))
        return [{"kind": kind.name, **{name: float(values[name][i]) for name in kind.param_names}}
                for i, kind in enumerate(self.kinds)]

    def theta_from_params(self, params):
        """The unconstrained vector for physical parameters (inverse of :meth:`params`).

        Parameters
        ----------
        params : list of dict
            One dict per section with exactly that kind's parameters
            (``"kind"`` may be present and must then match).

        Raises
        ------
        ApftoolsValueError
            Wrong number of sections, missing or unknown names, or a value
            outside its (stability-narrowed) range; the message names the
            section, the value and the range.
        """
        if not isinstance(params, (list, tuple)) or len(params) != self.n_sections:
            raise ApftoolsValueError(
                f"expected a list of {self.n_sections} section dicts for {self!r}, got {short_repr(params)}")
        theta = np.empty(self.n_params)
        for i, (kind, section) in enumerate(zip(self.kinds, params)):
            values = st.check_section(kind, section, self.fs, where=f"section {i}")
            bounds = st.param_bounds(kind.order, self.fs, kind.stretch, values.get("a", 0.0))
            for name in kind.param_names:
                u = st.RANGES[name].normalise(values[name], *bounds[name])
                theta[self.offsets[i][name]] = np.arctanh(u)
        return theta

    # ------------------------------------------------------------------ filtering
    def process(self, theta, x, fs=None):
        """Filter ``x`` through the cascade; differentiable in ``theta`` and ``x``.

        Parameters
        ----------
        theta : array_like, shape (n_params,)
        x : array_like, shape (..., n_samples)
            Real signal(s), time along the last axis (zero initial state).
        fs : float, optional
            Sample rate of ``x`` in Hz; if given it must equal the cascade's.

        Returns
        -------
        ndarray, shape of ``x``
        """
        if fs is not None:
            self.check_fs(fs)
        shape = np.shape(getval(x))
        if len(shape) < 1 or shape[-1] < 1:
            raise ApftoolsValueError(f"x must have at least one sample along its last axis, got shape {shape}")
        sos = self.sos(theta)
        y = anp.transpose(anp.reshape(x, (-1, shape[-1])))
        for start, stop, stretch in self._runs:
            y = filter_stretched(sos[start:stop], y, stretch)
        return anp.reshape(anp.transpose(y), shape)

    def block_filter(self, theta, n_channels):
        r"""A function filtering consecutive blocks with the state carried over: a long signal in bounded memory.

        ``filter(block)`` takes shape ``(n_channels, n)`` and returns the
        cascade's output for it, continuing from the end of the previous
        block, so the outputs joined are :meth:`process` of the blocks joined
        (the same recursion, :func:`scipy.signal.sosfilt` with its state).
        Every block but the last must be a multiple of :attr:`block_multiple`
        samples long: a section stretched by :math:`M` runs on the :math:`M`
        interleaved phases (:func:`~apftools.filtering.filter_stretched`),
        whose order a block must not shift.  Not differentiable.
        """
        sos = self._sos_values(np.asarray(getval(theta), dtype=float))
        states = [np.zeros((stop - start, stretch * n_channels, 2)) for start, stop, stretch in self._runs]

        def filter_block(block):
            y = np.asarray(block, dtype=float)
            n = y.shape[1]
            for i, (start, stop, stretch) in enumerate(self._runs):
                if stretch == 1:  # rows as they are: sosfilt's one copy, no transposes
                    y, states[i] = scipy.signal.sosfilt(sos[start:stop], y, zi=states[i])
                    continue
                phases = np.pad(y, ((0, 0), (0, -n % stretch))).reshape(n_channels, -1, stretch)
                out, states[i] = scipy.signal.sosfilt(
                    sos[start:stop], phases.transpose(0, 2, 1).reshape(n_channels * stretch, -1), zi=states[i])
                y = out.reshape(n_channels, stretch, -1).transpose(0, 2, 1).reshape(n_channels, -1)[:, :n]
            return y

        return filter_block

    @property
    def block_multiple(self):
        """The least common multiple of the sections' stretch factors (see :meth:`block_filter`)."""
        return math.lcm(*(k.stretch for k in self.kinds))

    def check_fs(self, fs):
        """Raise unless ``fs`` (Hz) is this cascade's sample rate (coefficients are never reinterpreted)."""
        fs = validate_fs(fs)
        if fs != self.fs:
            raise ApftoolsValueError(
                f"this cascade was built for fs={self.fs:g} Hz, got a signal at fs={fs:g} Hz; "
                "resample the signal or fit a new cascade at that rate"
            )

    def impulse_response(self, theta, n_samples=None, tol=1e-9):
        """Impulse response; its default length comes from the largest pole radius.

        Warns (``stacklevel=2``) when ``n_samples`` cuts the response before it
        has decayed below ``tol``.
        """
        needed = self.impulse_response_length(theta, tol)
        if n_samples is None:
            n_samples = needed
        elif n_samples < needed:
            warnings.warn(
                f"n_samples={n_samples} truncates the impulse response; it needs {needed} samples "
                f"to decay below {tol:g}",
                stacklevel=2,
            )
        impulse = np.zeros(n_samples)
        impulse[0] = 1.0
        return self.process(theta, impulse)

    def impulse_response_length(self, theta, tol=1e-9):
        """Samples until the impulse response decays below ``tol``.

        See :func:`~apftools.structures.impulse_response_length`.
        """
        decay = st.impulse_response_length(float(np.max(self.pole_radius(theta))), self.n_sections, tol)
        # plus the delay of the numerators, z^-(order M) per section when its poles sit at 0
        return decay + sum(k.order * k.stretch for k in self.kinds)

    def pole_radius(self, theta):
        """Largest z-plane pole radius of each section, shape (n_sections,)."""
        sos = np.asarray(getval(self.sos(theta)))
        a1, a2 = sos[:, 4], sos[:, 5]
        roots = np.stack([(-a1 + s * np.sqrt(a1 * a1 - 4 * a2 + 0j)) / 2 for s in (1, -1)])
        prototype = np.max(np.abs(roots), axis=0)
        return prototype ** (1.0 / self._stretch)

    # ------------------------------------------------------------------ responses
    def freqz(self, theta, freqs_hz):
        r"""``(freqs_hz, h)``: the complex frequency response at ``freqs_hz`` (Hz, within [0, fs/2]), closed form.

        Like :func:`scipy.signal.freqz` with ``worN=freqs_hz`` and ``fs``, it
        returns the frequencies with the response; ``h`` is differentiable in
        ``theta``.

        .. math:: H(e^{j\omega}) = \prod_s \frac{B_s(e^{j M_s \omega})}{A_s(e^{j M_s \omega})}
                  = e^{j \varphi(\omega)}, \qquad \omega = 2 \pi f / f_s,

        evaluated through :meth:`phase`: every section's numerator mirrors its
        denominator exactly, so :math:`|B_s| = |A_s|` and the magnitude is 1 to
        rounding even where :math:`|A_s|` is tiny (poles near the circle), where
        evaluating the two polynomials separately loses up to 1e-8.
        """
        return np.asarray(freqs_hz, dtype=float), anp.exp(1j * self.phase(theta, freqs_hz))

    def phase(self, theta, freqs_hz):
        """Unwrapped phase in radians at ``freqs_hz``, 0 at DC (:class:`ResponseGrid`); differentiable in theta."""
        self._check_theta(theta)
        return _response_primitive(theta, ResponseGrid(self, freqs_hz), 0)

    def group_delay(self, theta, freqs_hz):
        """Group delay in samples at ``freqs_hz`` (:class:`ResponseGrid`); differentiable in theta."""
        self._check_theta(theta)
        return _response_primitive(theta, ResponseGrid(self, freqs_hz), 1)

    # ------------------------------------------------------------------ JSON
    def to_dict(self, theta):
        """Plain-data description: format, version, fs, spec and physical parameters."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "fs": self.fs,
            "spec": self.spec,
            "units": {name: r.unit for name, r in st.RANGES.items()},
            "sections": self.params(theta),
        }

    @classmethod
    def from_dict(cls, data, fs=None):
        """Rebuild ``(cascade, theta)`` from :meth:`to_dict` output, validating everything.

        Parameters
        ----------
        data : dict
        fs : float, optional
            Sample rate the caller will process at; refused if it differs from
            the model's (a model is never silently reinterpreted at another rate).
        """
        if not isinstance(data, dict):
            raise ApftoolsTypeError(f"a cascade model must be a dict, got {type(data).__name__}")
        if data.get("format") != MODEL_FORMAT or data.get("version") != MODEL_VERSION:
            raise ApftoolsValueError(
                f"not an apftools cascade model (format {MODEL_FORMAT!r} version {MODEL_VERSION}): "
                f"got format {short_repr(data.get('format'))} version {short_repr(data.get('version'))}"
            )
        check_keys(data, {"format", "version", "fs", "spec", "units", "sections"}, "a cascade model")
        units = {name: r.unit for name, r in st.RANGES.items()}
        if data["units"] != units:
            raise ApftoolsValueError(f"cascade units must be {units}, got {short_repr(data['units'])}")
        cascade = cls(data["spec"], data["fs"])
        if fs is not None:
            cascade.check_fs(fs)
        return cascade, cascade.theta_from_params(data["sections"])


class ResponseGrid:
    r"""A cascade's closed-form phase and group delay on fixed frequencies, and their derivatives in theta.

    The one implementation of the cascade's response: :meth:`Cascade.phase`,
    :meth:`Cascade.group_delay` and the fitters (which evaluate it thousands
    of times on one grid, so the grid is built and validated once) use it.
    An allpass section is :math:`z^{-n} A(z^{-1})/A(z)` (n its order) in
    :math:`z^{M}`; with :math:`A(e^{j\omega}) = 1 + \sum_{k=1,2} a_k e^{-jkM\omega}`,

    .. math:: \varphi_s = -n M \omega - 2 \arg A, \qquad
              \tau_s = M (n - 2\, \mathrm{Re}\, q), \quad
              q = \frac{\sum_k k a_k e^{-jkM\omega}}{A},

    .. math:: \frac{\partial \varphi_s}{\partial a_k} = -2\, \mathrm{Im}
              \frac{e^{-jkM\omega}}{A}, \qquad
              \frac{\partial \tau_s}{\partial a_k} = -2 M\, \mathrm{Re}
              \frac{(k - q)\, e^{-jkM\omega}}{A},

    summed over sections and chained with :meth:`Cascade.sos_jacobian`.
    :math:`|\arg A| < \pi` because every factor :math:`1 - p e^{-j\omega}`
    of :math:`A` has a positive real part, so the phase is unwrapped.

    Parameters
    ----------
    cascade : Cascade
    freqs_hz : array_like
        1-D frequencies in [0, fs/2] Hz.
    signs : array_like, optional
        +1 or -1 per section (default all +1): -1 counts a section's phase
        and group delay negated, as running it over the time-reversed signal
        (anti-causally) does.
    """

    def __init__(self, cascade, freqs_hz, signs=None):
        freqs = np.asarray(freqs_hz, dtype=float)
        if freqs.ndim != 1 or not np.all(np.isfinite(freqs)) or np.any((freqs < 0) | (freqs > cascade.fs / 2)):
            raise ApftoolsValueError(f"freqs_hz must be a 1-D array of frequencies in [0, fs/2] = "
                                     f"[0, {cascade.fs / 2:g}] Hz, got {short_repr(freqs_hz)}")
        self.cascade = cascade
        self.omega = 2 * np.pi * freqs / cascade.fs
        self._stretch = cascade._stretch
        self._signs = np.ones(cascade.n_sections) if signs is None else np.asarray(signs, dtype=float)
        n_poles = self._signs @ (self._stretch * cascade._order)
        self._linear, self._tau0 = -n_poles * self.omega, n_poles
        self._e = np.exp(-1j * np.arange(1, 3)[:, None, None] * self._stretch[:, None] * self.omega)  # (2, S, F)

    def __call__(self, theta, jacobian=False):
        """``(phase, group_delay)`` in radians and samples, shape (n_freqs,) each; with ``jacobian``
        also their derivatives in theta, shape (n_freqs, n_params) each."""
        if jacobian:
            return self.from_sos(*self.cascade.sos_jacobian(theta))
        return self.from_sos(self.cascade._sos_values(np.asarray(theta, dtype=float)))

    def from_sos(self, sos, d_sos=None, phase=True, delay=True):
        """:meth:`__call__` from the coefficients (with ``d_sos``, their derivatives) of :meth:`Cascade.sos_jacobian`.

        A batch (leading axis B) gives a batch: shapes (B, n_freqs) and
        (B, n_freqs, n_params).  ``phase=False`` or ``delay=False`` skips that
        half (None in its places).
        """
        a1, a2 = sos[..., 4, None], sos[..., 5, None]      # a_k, (..., S, 1)
        den = 1.0 + a1 * self._e[0] + a2 * self._e[1]       # A, (..., S, F)
        inverse = 1.0 / den
        ratio = (self._e[0] * inverse, self._e[1] * inverse)  # e^{-jkMw} / A, (..., S, F) each
        if d_sos is not None:  # (..., 2S, P), rows ordered (s, k)
            d_a = (-2.0 * self._signs[:, None, None] * d_sos[..., 4:6, :]).reshape(
                d_sos.shape[:-3] + (-1, d_sos.shape[-1]))

        def chain(parts):  # sum over s and k of parts[k][..., s, f] * d a_k,s / d theta: (..., F, P)
            stacked = np.stack(parts, axis=-2)  # (..., S, 2, F)
            return np.swapaxes(stacked.reshape(stacked.shape[:-3] + (-1, stacked.shape[-1])), -1, -2) @ d_a

        values, derivatives = [None, None], [None, None]
        if phase:
            values[0] = self._linear - 2.0 * (self._signs @ np.angle(den))
            if d_sos is not None:
                derivatives[0] = chain([ratio[0].imag, ratio[1].imag])
        if delay:
            q = a1 * ratio[0] + 2.0 * a2 * ratio[1]      # (..., S, F)
            values[1] = self._tau0 - 2.0 * ((self._signs * self._stretch) @ q.real)
            if d_sos is not None:
                stretch = self._stretch[:, None]
                derivatives[1] = chain([(stretch * ratio[0] * (1.0 - q)).real,
                                        (stretch * ratio[1] * (2.0 - q)).real])
        return tuple(values) if d_sos is None else (*values, *derivatives)


@primitive
def _response_primitive(theta, grid, which):
    return grid(theta)[which]


defvjp(_response_primitive, lambda ans, theta, grid, which: lambda g: g @ grid(theta, jacobian=True)[2 + which])


@primitive
def _sos_primitive(theta, cascade):
    return cascade._sos_values(theta)


defvjp(_sos_primitive, lambda ans, theta, cascade: (
    lambda g: np.einsum("sk,skp->p", g, cascade.sos_jacobian(theta)[1])))
