r"""A model where people use it: second-order sections for any host, or one impulse response.

An :class:`~apftools.model.Alignment` renders as (:mod:`apftools.model`)

.. math:: y = R\,A\,R\,C\,\big(s\, D_d\, x\big),

delay :math:`D_d`, polarity :math:`s`, causal cascade :math:`C`, and the
anti-causal cascade :math:`A` run over the time-reversed signal.  Two
formats carry it out of Python:

``sos``
    Plain JSON, per output channel: the delay as an integer shift and the
    FIR of its fractional part (the one :func:`apftools.delay.apply_delay`
    uses), the polarity, and both cascades as scipy SOS rows, every section
    multiplied out.  A stretched section :math:`H(z^M)` is a polynomial of
    degree :math:`2M` in :math:`z^{-1}`, factored here into :math:`M`
    second-order rows (its poles are the :math:`M`-th roots of the
    prototype's, every zero the conjugate reciprocal of a pole).  With
    ``scipy.signal``: ``y = s * sosfilt(causal, lfilter(fir, 1, x)
    shifted by shift)``, then ``sosfilt(anticausal, y[::-1])[::-1]``
    (:func:`render_sos` does exactly that, and the tests check it against
    :meth:`~apftools.model.Alignment.apply`).  A fractional delay's FIR is
    a 64-tap windowed sinc centred 31 samples in, so its ``shift`` is
    negative where the delay is under 31 samples: in real time that is
    look-ahead, a latency of ``-shift`` samples to compensate.
``sox``
    An effects file for ``sox --effects-file FILE IN OUT``: sox's ``fir``
    (the fractional delay's taps; sox centres an N-tap filter on tap
    (N - 1) // 2, which is where this one's delay of 31 + mu samples sits,
    so only the integer part remains), ``delay`` (or ``trim`` and ``pad``
    for an advance), ``vol -1`` for the polarity, one ``biquad`` per SOS row,
    and the anti-causal rows between two ``reverse``.  One chain for every
    channel: a model with per-channel parts is refused.  sox passes 32-bit
    integer samples between effects, so a signal needs headroom above the
    allpass's overshoot (tested at -12 dBFS, to 1e-6 of full scale); the
    delay lengthens the output by its samples.
``camilladsp``
    A CamillaDSP (v3) configuration fragment: ``filters`` (``Delay`` in
    samples, with CamillaDSP's ``subsample`` allpass for a fractional part,
    which it documents as accurate up to a quarter of the sample rate;
    ``Gain`` ``inverted`` for the polarity; one ``Biquad`` of type ``Free``
    per SOS row), a ``mixers`` entry spreading a mono dry to every output,
    and the ``pipeline`` steps, one ``Filter`` step per model and the
    channels it serves.  Real-time: a model with an anti-causal part or an
    advance is refused (align with ``--causal``, or export ``fir`` for a
    convolution host).
``fir``
    The whole model, anti-causal part and negative delay included, as one
    impulse response per channel, made causal by a latency :math:`L`: the
    response starts where it first rises above ``level`` (default
    :data:`FIR_LEVEL`) of its peak and ends where it last falls below it.
    Convolving with it gives the offline model's output :math:`L` samples
    later, so a convolution host with delay compensation (or a user who
    delays the wet by :math:`L`) runs the offline model in real time.
"""

import numpy as np
import scipy.signal

from .delay import FRACTIONAL_TAPS, _fractional_delay_fir
from .errors import ApftoolsValueError

SOS_FORMAT = "apftools.sos"
FIR_FORMAT = "apftools.fir"
#: Where the ``fir`` response is cut, re its peak: -120 dB.
FIR_LEVEL = 1e-6


def _section_rows(row, order, stretch):
    """SOS rows of one section :math:`H(z^M)` from its prototype row: the row itself, or for ``M > 1`` the
    poles' M-th roots (the prototype's poles, each turned into M) with their mirrored zeros, paired into rows."""
    if stretch == 1:
        return row[None]
    prototype = np.roots(row[3:4 + order])  # the denominator 1 + a1 z^-1 (+ a2 z^-2)
    poles = np.concatenate([p ** (1.0 / stretch) * np.exp(2j * np.pi * np.arange(stretch) / stretch)
                            for p in prototype.astype(complex)])
    return scipy.signal.zpk2sos(1.0 / np.conj(poles), poles, row[0] / row[3])  # allpass: zeros mirror poles


def cascade_sos(cascade, theta):
    """Every section of ``cascade`` at ``theta`` as scipy SOS rows, shape (n_rows, 6), stretched ones expanded."""
    prototype = np.asarray(cascade.sos(theta), dtype=float)
    if not len(prototype):
        return np.zeros((0, 6))
    return np.vstack([_section_rows(row, kind.order, kind.stretch) for row, kind in zip(prototype, cascade.kinds)])


def _delay_parts(delay_samples):
    """``(shift, fir)``: :func:`apftools.delay.apply_delay` of ``delay_samples`` as an integer shift after an FIR."""
    whole = int(np.floor(delay_samples))
    mu = float(delay_samples) - whole
    if mu == 0.0:
        return whole, np.ones(1)
    return whole - (FRACTIONAL_TAPS // 2 - 1), _fractional_delay_fir(mu)


def to_sos(alignment):
    """The ``sos`` export of ``alignment`` (module docstring): a JSON-ready dict.

    Returns
    -------
    dict
        ``format``, ``fs`` (Hz), ``mode``, ``dry_channels`` and ``channels``:
        per output channel ``{"input": dry channel index, "polarity",
        "delay_samples", "shift", "fir", "causal_sos", "anticausal_sos"}``.
    """
    n_out = 1 if alignment.channels is None else len(alignment.channels)
    dry_channels = alignment.dry_channels or n_out
    channels = []
    for c in range(n_out):
        model = alignment.models[0 if alignment.channels is None else alignment.channels[c]]
        shift, fir = _delay_parts(model.delay_samples)
        causal, anticausal = ((cascade_sos(cascade, theta) if cascade is not None else np.zeros((0, 6))).tolist()
                              for cascade, theta in ((model.cascade, model.theta),
                                                     (model.anticausal, model.anticausal_theta)))
        channels.append({"input": 0 if dry_channels == 1 else c, "polarity": int(model.polarity),
                         "delay_samples": float(model.delay_samples), "shift": shift, "fir": fir.tolist(),
                         "causal_sos": causal, "anticausal_sos": anticausal})
    return {"format": SOS_FORMAT, "fs": alignment.fs, "mode": alignment.mode, "dry_channels": dry_channels,
            "channels": channels}


def render_sos(exported, x):
    """Render ``x`` (channels, samples) through a :func:`to_sos` export with scipy alone, same length as ``x``."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    out = []
    n = x.shape[1]
    for channel in exported["channels"]:
        shift = channel["shift"]  # y[t] = (fir * x)[t - shift]: an advance reads past the end, zeros there
        delayed = scipy.signal.lfilter(channel["fir"], [1.0], np.pad(x[channel["input"]], (0, max(0, -shift))))
        shifted = np.zeros(n)
        if shift >= 0:
            shifted[shift:] = delayed[:max(n - shift, 0)]
        else:
            shifted[:] = delayed[-shift:]
        y = channel["polarity"] * shifted
        if channel["causal_sos"]:
            y = scipy.signal.sosfilt(channel["causal_sos"], y)
        if channel["anticausal_sos"]:
            y = scipy.signal.sosfilt(channel["anticausal_sos"], y[::-1])[::-1]
        out.append(y)
    return np.array(out)


def to_sox(alignment):
    """The ``sox`` export (module docstring): one line of sox effects, for a model with one chain for all channels."""
    if alignment.channels is not None and len(set(alignment.channels)) > 1 or len(alignment.models) > 1:
        raise ApftoolsValueError("sox runs one chain of effects on every channel, and this model has one per channel "
                                 "group; export --format sos or fir instead")
    exported = to_sos(alignment)["channels"][0]
    model = alignment.models[0]
    whole = int(np.floor(model.delay_samples))
    effects = []
    if len(exported["fir"]) > 1:  # the fractional part; sox's fir takes off the taps' (N - 1) // 2 themselves
        effects += ["fir", *map(repr, exported["fir"])]
    if whole > 0:
        effects += ["delay", f"{whole}s"]
    elif whole < 0:
        effects += ["trim", f"{-whole}s", "pad", "0", f"{-whole}s"]
    if model.polarity < 0:
        effects += ["vol", "-1"]
    for key, around in (("causal_sos", []), ("anticausal_sos", ["reverse"])):
        if exported[key]:
            effects += around + [word for row in exported[key] for word in ["biquad", *map(repr, row)]] + around
    return " ".join(effects or ["vol", "1"]) + "\n"


def _number(value):
    """A float as YAML 1.1 and 1.2 both read it: always a point in the mantissa."""
    return f"{float(value):.17e}"


def to_camilladsp(alignment):
    """The ``camilladsp`` export (module docstring): the text of a CamillaDSP configuration fragment."""
    if any(m.anticausal is not None or m.delay_samples < 0 for m in alignment.models):
        raise ApftoolsValueError("CamillaDSP runs in real time and this model needs the future (an anti-causal part or "
                                 "an advance): align with --causal, or export --format fir for a convolution host")
    exported = to_sos(alignment)
    channels = exported["channels"]
    owner = [0] * len(channels) if alignment.channels is None else list(alignment.channels)
    filters, steps = [f"# apftools: {alignment.mode} model at {alignment.fs:g} Hz", "filters:"], []
    for k, model in enumerate(alignment.models):
        served = [c for c in range(len(channels)) if owner[c] == k]
        if not served:
            continue
        channel, names = channels[served[0]], []
        if model.delay_samples > 0:
            names.append(f"apftools_{k}_delay")
            filters += [f"  {names[-1]}:", "    type: Delay", "    parameters:",
                        f"      delay: {_number(model.delay_samples)}", "      delay_unit: samples",
                        f"      subsample: {'false' if float(model.delay_samples).is_integer() else 'true'}"]
        if model.polarity < 0:
            names.append(f"apftools_{k}_polarity")
            filters += [f"  {names[-1]}:", "    type: Gain", "    parameters:", "      gain: 0.0",
                        "      inverted: true"]
        for i, row in enumerate(channel["causal_sos"]):
            names.append(f"apftools_{k}_section{i}")
            filters += [f"  {names[-1]}:", "    type: Biquad", "    parameters:", "      type: Free",
                        *(f"      {key}: {_number(row[j])}" for key, j in
                          (("a1", 4), ("a2", 5), ("b0", 0), ("b1", 1), ("b2", 2)))]
        if names:
            steps += ["  - type: Filter", f"    channels: {served}", "    names:", *(f"      - {n}" for n in names)]
    mixer = []
    if exported["dry_channels"] == 1 and len(channels) > 1:  # one dry channel feeds every output
        mixer = ["mixers:", "  apftools_spread:", "    channels:", "      in: 1", f"      out: {len(channels)}",
                 "    mapping:", *(line for c in range(len(channels))
                                   for line in (f"      - dest: {c}", "        sources:", "          - channel: 0"))]
        steps = ["  - type: Mixer", "    name: apftools_spread"] + steps
    if len(filters) == 2:
        filters = filters[:1]  # nothing to filter: no empty mapping
    return "\n".join(filters + mixer + (["pipeline:"] + steps if steps else [])) + "\n"


def to_fir(alignment, level=FIR_LEVEL):
    """The ``fir`` export (module docstring): ``(responses (channels, taps), latency_samples)``.

    ``level`` (a fraction of the peak, in (0, 1)) is where the response is
    cut before and after; the latency is the same for every channel, so
    they stay aligned with each other.
    """
    if not 0.0 < level < 1.0:
        raise ApftoolsValueError(f"level must be a fraction of the peak in (0, 1), got {level!r}")
    n_in = alignment.dry_channels or (1 if alignment.channels is None else len(alignment.channels))
    # room either side of the impulse: every model's ring (to -80 dB) and delay; doubled until the ends are quiet
    span = FRACTIONAL_TAPS + max(len(m.impulse_response()[0]) + int(abs(m.delay_samples)) for m in alignment.models)
    while True:
        impulse = np.zeros((n_in, 2 * span + 1))
        impulse[:, span] = 1.0
        y = np.atleast_2d(alignment.apply(impulse))
        loud = np.flatnonzero(np.max(np.abs(y), axis=0) >= level * np.max(np.abs(y)))
        if loud[0] > 0 and loud[-1] < y.shape[1] - 1:
            break
        span *= 2
    return y[:, loud[0]:loud[-1] + 1], span - int(loud[0])
