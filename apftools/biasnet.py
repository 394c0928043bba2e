r"""BiasNet: an over-parameterised network that outputs a cascade's parameters.

Bargum et al. (DAFx 2023), after Pepe et al. (2022), fit allpass cascades by
training a network whose only input is a learnable bias and whose outputs
are the filter parameters; no audio enters the network.  Per section (or one
shared network for the whole cascade):

.. math:: h_0 = \beta, \qquad h_l = \sin(h_{l-1} W_l + b_l) \ (l = 1 .. L-1), \qquad
          z = h_{L-1} W_L + b_L, \qquad \mathrm{forward} = \tanh z,

with :math:`\beta` the 1024 learnable input values (zeros plus a trainable
bias, initialised uniform in [0, 1)) and layer sizes 1024 -> 512 -> 256 -> 128
-> the section's parameter count (``len(kind.param_names)``): 2.76 M weights
for ``"3x2w,1w"`` (the paper's 2.77 M).  The network is evaluated once per
training step, never per sample.

Denormalisation: the pre-activations :math:`z` of all networks, concatenated in
section order, are the cascade's unconstrained ``theta``.
:class:`~apftools.cascade.Cascade` applies :math:`u = \tanh z` (so ``u`` is
exactly :func:`forward`) and maps it through the one parameter table
:data:`apftools.structures.RANGES`, with the same ``R_MAX`` stability bound as
every other fitter: any finite weights give a stable cascade.

References
----------
A. R. Bargum, S. Serafin, C. Erkut, J. D. Parker, "Differentiable all-pass
filters for phase response estimation and automatic signal alignment", Proc. DAFx 2023.
G. Pepe, L. Gabrielli, S. Squartini, L. Cattani, "Deep optimization of
parametric IIR filters for audio equalization", IEEE/ACM TASLP 30, 2022.
V. Sitzmann, J. Martel, A. Bergman, D. Lindell, G. Wetzstein, "Implicit neural
representations with periodic activation functions", NeurIPS 2020 (SIREN).
D. P. Kingma and J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.
"""

import numbers
import time
from dataclasses import dataclass

import autograd.numpy as anp
import numba
import numpy as np
from autograd import value_and_grad
from autograd.extend import defvjp, primitive

from ._threads import blas_single_thread
from ._validate import validate_positive, validate_signal
from .cascade import Cascade
from .errors import ApftoolsTypeError, ApftoolsValueError
from .losses import get_loss, loudest_segment, segment_loss

#: Layer sizes of each per-section network in the paper: the learnable input, then the sine layers.
PAPER_LAYER_SIZES = (1024, 512, 256, 128)


# ---------------------------------------------------------------------------------------------- the network
def init_weights(layer_sizes, rng=None):
    r"""Random parameters of one network, as a pytree.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_input, n_hidden_1, ..., n_output)``, at least two sizes; the
        paper's per-section network is ``(1024, 512, 256, 128, 3)``.
    rng : None, int or numpy.random.Generator
        Seed or generator.

    Returns
    -------
    dict
        ``{"input": beta, "layers": [(W_1, b_1), ..., (W_L, b_L)]}`` with
        ``beta`` of shape (n_input,) and ``W_l`` of shape (n_in, n_out).

    Notes
    -----
    The input ``beta`` is uniform in [0, 1) (the paper's bias).  Weights are
    uniform in :math:`\pm\sqrt{6 / n_{in}}`, SIREN's initialisation for sine
    layers with :math:`\omega_0 = 1` (Sitzmann et al. 2020): with
    arcsine-distributed inputs of variance 1/2 it keeps every pre-activation,
    ``z`` included, at about unit variance, so the initial ``tanh z`` spread
    over the parameter ranges like :meth:`Cascade.init`.  Biases are uniform in
    :math:`\pm 1/\sqrt{n_{in}}` (SIREN's and PyTorch's default).
    """
    sizes = _layer_sizes(layer_sizes, "layer_sizes", minimum=2)
    rng = np.random.default_rng(rng)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.uniform(-1.0, 1.0, (n_in, n_out)) * np.sqrt(6.0 / n_in)
        b = rng.uniform(-1.0, 1.0, n_out) / np.sqrt(n_in)
        layers.append((w, b))
    return {"input": rng.uniform(0.0, 1.0, sizes[0]), "layers": layers}


def _hidden(weights):
    """Inputs of every layer: ``[h_0, h_1, ..., h_{L-1}]`` and the pre-activations ``a_l`` of the sine layers."""
    h = [np.asarray(weights["input"], dtype=float)]
    a = []
    for w, b in weights["layers"][:-1]:
        a.append(h[-1] @ w + b)
        h.append(np.sin(a[-1]))
    return h, a


@primitive
def preactivation(weights):
    r"""The network's last pre-activation :math:`z` (before tanh), shape (n_output,).

    Differentiable with autograd in ``weights`` (a pytree from
    :func:`init_weights`).  One autograd primitive with a hand-written
    backpropagation (:func:`backprop`): tracing the pytree op by op would make
    autograd build a zero cotangent of every weight at every indexing.
    """
    h, _ = _hidden(weights)
    w, b = weights["layers"][-1]
    return h[-1] @ w + b


def backprop(weights, g):
    r"""Cotangent of ``weights`` for the cotangent ``g`` of :func:`preactivation`: the vector-Jacobian product.

    With :math:`\delta_L = g` and, going down,
    :math:`\delta_l = (W_{l+1} \delta_{l+1}) \odot \cos a_l`:
    :math:`\partial / \partial W_l = h_{l-1} \delta_l^T`,
    :math:`\partial / \partial b_l = \delta_l`, and the input's cotangent is
    :math:`W_1 \delta_1`.

    Returns
    -------
    dict
        Same structure as ``weights``.
    """
    h, a = _hidden(weights)
    delta = np.asarray(g, dtype=float)
    grads = []
    for layer in range(len(weights["layers"]) - 1, -1, -1):
        w, _ = weights["layers"][layer]
        grads.append((np.outer(h[layer], delta), delta))
        delta = w @ delta
        if layer > 0:
            delta = delta * np.cos(a[layer - 1])
    return {"input": delta, "layers": grads[::-1]}


defvjp(preactivation, lambda ans, weights: lambda g: backprop(weights, g))


def forward(weights):
    r"""The network's outputs :math:`\tanh z` in (-1, 1), the normalised parameters (autograd-differentiable)."""
    return anp.tanh(preactivation(weights))


def count_weights(tree):
    """Number of scalar parameters in a pytree of arrays (dicts, lists, tuples)."""
    if isinstance(tree, dict):
        return sum(count_weights(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(count_weights(v) for v in tree)
    return int(np.size(tree))


def init_networks(cascade, layer_sizes=PAPER_LAYER_SIZES, *, shared=False, rng=None):
    """The networks of a cascade: one per section, or one shared network with ``cascade.n_params`` outputs.

    Parameters
    ----------
    cascade : Cascade
    layer_sizes : sequence of int
        Input and hidden sizes, the output size is added per network (the
        section's ``len(kind.param_names)``, or ``n_params`` when shared).
    shared : bool
    rng : None, int or numpy.random.Generator

    Returns
    -------
    list of dict
        Network pytrees in section order; :func:`cascade_theta` turns them into ``theta``.
    """
    _check_cascade(cascade)
    sizes = _layer_sizes(layer_sizes, "layer_sizes", minimum=1)
    rng = np.random.default_rng(rng)
    outputs = [cascade.n_params] if shared else [len(kind.param_names) for kind in cascade.kinds]
    return [init_weights(sizes + (n,), rng) for n in outputs]


def cascade_theta(networks):
    """The cascade's ``theta``: the networks' pre-activations concatenated (Cascade applies tanh and RANGES)."""
    return anp.concatenate([preactivation(net) for net in networks])


# ---------------------------------------------------------------------------------------------- training
@dataclass
class BiasNetFit:
    """Result of :func:`train_biasnet`.

    Attributes
    ----------
    theta : ndarray
        The cascade parameters (network pre-activations) with the lowest held-out loss.
    loss : float
        That held-out loss.
    history : list of float
        Training loss of every step (on that step's random segment).
    held_out_history : list of (int, float)
        ``(step, held-out loss)`` at every evaluation; step 0 is the initialisation.
    steps : int
        Steps run (fewer than ``max_steps`` after early stopping).
    seconds : float
        Wall time of the training.
    network_weights_count : int
        Trainable parameters of all networks.
    """

    theta: np.ndarray
    loss: float
    history: list
    held_out_history: list
    steps: int
    seconds: float
    network_weights_count: int


class _Adam:
    """Adam (Kingma and Ba 2015) updating the leaves of a pytree in place, float64.

    One fused compiled pass per leaf (:func:`_adam_update`): 2.76 M weights
    take about 10 ms, a third of the same update in numpy expressions.
    """

    def __init__(self, leaves, learning_rate, b1=0.9, b2=0.999, eps=1e-8):
        self.learning_rate, self.b1, self.b2, self.eps = learning_rate, b1, b2, eps
        self.m = [np.zeros(x.size) for x in leaves]
        self.v = [np.zeros(x.size) for x in leaves]
        self.t = 0

    def step(self, leaves, grads):
        self.t += 1
        correction = np.sqrt(1.0 - self.b2**self.t)
        step = self.learning_rate * correction / (1.0 - self.b1**self.t)
        for x, g, m, v in zip(leaves, grads, self.m, self.v):  # leaves are C-contiguous: reshape is a view
            _adam_update(x.reshape(-1), np.ascontiguousarray(g).reshape(-1), m, v, self.b1, self.b2, step,
                         self.eps * correction)


@numba.njit(cache=True, nogil=True)
def _adam_update(x, g, m, v, b1, b2, step, eps):
    r"""One Adam step in place: :math:`m \leftarrow \beta_1 m + (1 - \beta_1) g`,
    :math:`v \leftarrow \beta_2 v + (1 - \beta_2) g^2`, :math:`x \leftarrow x - s\, m / (\sqrt{v} + \epsilon')`.

    ``step`` and ``eps`` carry the bias corrections:
    :math:`s = \eta \sqrt{1 - \beta_2^t} / (1 - \beta_1^t)` and
    :math:`\epsilon' = \epsilon \sqrt{1 - \beta_2^t}`, which is Adam's
    :math:`\eta \hat m / (\sqrt{\hat v} + \epsilon)` exactly.  A loop over
    weights, not samples.
    """
    for i in range(x.size):
        gi = g[i]
        mi = b1 * m[i] + (1.0 - b1) * gi
        vi = b2 * v[i] + (1.0 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        x[i] -= step * mi / (np.sqrt(vi) + eps)


def _leaves(tree):
    """The arrays of a pytree in a fixed order (dict keys sorted)."""
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in _leaves(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _leaves(item)]
    return [tree]


def _outside_objective(cascade, loss_fn, dry, wet, fs, held_out):
    """The loss on the whole signal except the held-out window (``segment_s=None``)."""
    def outside(s):
        return anp.concatenate([s[..., :held_out[0]], s[..., held_out[1]:]], axis=-1)

    target = outside(wet)
    return lambda t: loss_fn(outside(cascade.process(t, dry)), target, fs)


#: Most Adam steps of :func:`train_biasnet` by default (early stopping may end sooner).
MAX_STEPS = 1000


def train_biasnet(cascade, dry, wet, fs, *, loss="mse", layer_sizes=PAPER_LAYER_SIZES, shared=False,
                  learning_rate=1e-5, max_steps=MAX_STEPS, segment_s=0.5, held_out_s=1.0, eval_every=25, patience=250,
                  max_seconds=None, rng=None, callback=None):
    r"""Fit ``cascade`` to a dry/wet pair by training BiasNet with Adam.

    Every step evaluates the networks once (:func:`cascade_theta`), filters a
    random ``segment_s`` segment of ``dry`` through the cascade and takes the
    loss against ``wet``, with exact gradients through
    :func:`apftools.sosfilt` and :func:`backprop`.  The cascade starts
    filtering before the segment, as long as its impulse response needs to
    decay below :data:`apftools.losses.WARMUP_TOL` (at most
    :data:`apftools.losses.MAX_WARMUP_S`), and that warm-up is left out of the
    loss, so the segment sees the filter state the whole signal would give
    it (the research code restarted from zero state).

    A held-out window, the loudest ``held_out_s`` seconds of the wet
    (:func:`apftools.losses.loudest_segment`), is never trained on.  Its loss,
    warmed up the same way and evaluated every ``eval_every`` steps, picks
    the returned ``theta`` and stops the training after ``patience`` steps
    without improvement.

    Parameters
    ----------
    cascade : Cascade
    dry : array_like, shape (n_samples,) or (n_channels, n_samples)
        Dry with the bulk delay and polarity already applied (as for
        :func:`apftools.fit.fit_time`).
    wet : array_like, same shape as ``dry``
    fs : float
        Sample rate in Hz; must be the cascade's.
    loss : str
        A name from :data:`apftools.losses.LOSSES`.
    layer_sizes : sequence of int
        Input and hidden sizes of each network (the paper's by default; the
        output size follows from the cascade).
    shared : bool
        One network for all sections instead of one per section.
    learning_rate : float
        Adam step size.  Adam moves every weight by up to about the step size
        per step and the moves of many weights add up in :math:`z`, so the
        step that is safe shrinks as the network grows: 1e-5 (the paper's
        value) for the paper's 690 000 weights per section, about 1e-3 for
        ``layer_sizes=(64, 64)``; 1e-4 already throws the paper's network
        into poor minima.
    max_steps : int
        At most this many steps (about 25 ms each for ``"3x2w,1w"`` with the
        paper's sizes on 2 cores, whatever the signal length).
    segment_s : float or None
        Segment length in seconds; ``None`` trains on the whole signal
        outside the held-out window at every step.
    held_out_s : float
        Length of the held-out window in seconds.
    eval_every, patience : int
        Steps between held-out evaluations; steps without a held-out
        improvement before stopping.
    max_seconds : float, optional
        Also stop once the training has run this long (the held-out loss is
        evaluated then); the result then depends on the machine's speed.
    rng : None, int or numpy.random.Generator
        Seeds the initialisation and the segments (same seed, same result).
    callback : callable, optional
        ``callback(step, loss)`` after every step (steps count from 1).

    Returns
    -------
    BiasNetFit

    Examples
    --------
    >>> from apftools.synthetic import make_pair
    >>> pair = make_pair("1x2w", fs=24000, seconds=1.0, delay_samples=0.0, polarity=1, rng=0)
    >>> fit = train_biasnet(pair.cascade, pair.dry, pair.wet, 24000, layer_sizes=(32, 32),
    ...                     learning_rate=1e-3, max_steps=20, segment_s=0.1, held_out_s=0.25, rng=0)
    >>> fit.steps, fit.theta.shape, fit.network_weights_count
    (20, (3,), 1187)
    """
    start_time = time.perf_counter()
    _check_cascade(cascade)
    cascade.check_fs(fs)
    dry, wet = validate_signal(dry, "dry"), validate_signal(wet, "wet")
    if dry.ndim > 2 or dry.shape != wet.shape:
        raise ApftoolsValueError(
            f"dry and wet must have the same shape (n_samples,) or (n_channels, n_samples), "
            f"got {dry.shape} and {wet.shape}")
    loss_fn = get_loss(loss)
    sizes = _layer_sizes(layer_sizes, "layer_sizes", minimum=1)
    learning_rate = validate_positive(learning_rate, "learning_rate")
    max_steps = _count(max_steps, "max_steps")
    eval_every = _count(eval_every, "eval_every")
    patience = _count(patience, "patience")
    max_seconds = np.inf if max_seconds is None else validate_positive(max_seconds, "max_seconds")
    if callback is not None and not callable(callback):
        raise ApftoolsTypeError(f"callback must be callable as callback(step, loss), got {callback!r}")
    n = dry.shape[-1]
    held_out = loudest_segment(wet, fs, validate_positive(held_out_s, "held_out_s"))
    length = 1 if segment_s is None else int(round(validate_positive(segment_s, "segment_s") * fs))
    # segment starts that keep [start, start + length) off the held-out window: before it, then after it
    before, after = max(0, held_out[0] - length + 1), max(0, n - length + 1 - held_out[1])
    if length < 1 or before + after == 0:
        raise ApftoolsValueError(
            f"the signals ({n} samples, {n / fs:.3g} s at {fs:g} Hz) are too short for a held-out window of "
            f"{held_out_s!r} s and training segments of {segment_s!r} s outside it")
    rng = np.random.default_rng(rng)

    def held_out_loss(theta):
        return float(segment_loss(cascade, loss_fn, dry, wet, fs, held_out, theta)(theta))

    with blas_single_thread():
        networks = init_networks(cascade, sizes, shared=shared, rng=rng)
        leaves = _leaves(networks)
        adam = _Adam(leaves, learning_rate)
        splits = np.cumsum([net["layers"][-1][1].size for net in networks])[:-1]
        theta = np.asarray(cascade_theta(networks))
        best_loss, best_theta, best_step = held_out_loss(theta), theta.copy(), 0
        history, held_out_history = [], [(0, best_loss)]
        step = 0
        while step < max_steps and step - best_step < patience:
            step += 1
            if segment_s is None:
                objective = _outside_objective(cascade, loss_fn, dry, wet, fs, held_out)
            else:
                k = int(rng.integers(before + after))
                start = k if k < before else held_out[1] + k - before
                objective = segment_loss(cascade, loss_fn, dry, wet, fs, (start, start + length), theta)
            value, g_theta = value_and_grad(objective)(theta)
            grads = [backprop(net, g) for net, g in zip(networks, np.split(g_theta, splits))]
            adam.step(leaves, _leaves(grads))
            theta = np.asarray(cascade_theta(networks))
            history.append(float(value))
            if callback is not None:
                callback(step, float(value))
            out_of_time = time.perf_counter() - start_time >= max_seconds
            if step % eval_every == 0 or step == max_steps or out_of_time:
                held_out_history.append((step, held_out_loss(theta)))
                if held_out_history[-1][1] < best_loss:
                    best_loss, best_theta, best_step = held_out_history[-1][1], theta.copy(), step
            if out_of_time:
                break
    return BiasNetFit(best_theta, best_loss, history, held_out_history, step, time.perf_counter() - start_time,
                      count_weights(networks))


# ---------------------------------------------------------------------------------------------- validation
def _check_cascade(cascade):
    if not isinstance(cascade, Cascade):
        raise ApftoolsTypeError(f"cascade must be an apftools.Cascade, got {cascade!r}")


def _layer_sizes(sizes, name, minimum):
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise ApftoolsTypeError(f"{name} must be a sequence of positive ints such as (1024, 512, 256, 128), "
                                f"got {sizes!r}")
    if len(sizes) < minimum or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                                       for s in sizes):
        raise ApftoolsValueError(f"{name} must hold at least {minimum} positive int(s), got {sizes!r}")
    return tuple(int(s) for s in sizes)


def _count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ApftoolsTypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ApftoolsValueError(f"{name} must be at least 1, got {value!r}")
    return int(value)
