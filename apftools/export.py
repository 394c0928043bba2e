r"""A model where people use it: second-order sections for any host, programs and configurations of real ones,
or one impulse response.

An :class:`~apftools.model.Alignment` renders as (:mod:`apftools.model`)

.. math:: y = R\,A\,R\,C\,\big(s\, D_d\, x\big),

delay :math:`D_d`, polarity :math:`s`, causal cascade :math:`C`, and the
anti-causal cascade :math:`A` run over the time-reversed signal.  These
formats carry it out of Python, each exact at the model's sample rate only
(coefficients do not carry over to another rate: align again there):

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
    look-ahead, a latency of ``-shift`` samples to compensate.  The same
    allpasses also come by frequency and Q (:func:`allpass_by_frequency`),
    for hosts that set allpasses only so.
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
``ffmpeg``
    A filter graph for ``ffmpeg -i IN -filter_complex_script FILE OUT``
    (``-/filter_complex FILE`` from ffmpeg 7), computed in float64
    throughout: ``aiir`` (the fractional delay's taps, without feedback or
    normalisation), ``adelay`` in samples (or ``atrim`` and ``apad`` for an
    advance), ``volume=-1`` for the polarity, one ``biquad`` per SOS row at
    ``f64`` precision, and the anti-causal rows between two ``areverse``; a
    mono dry into several outputs, or one model per channel, through
    ``asplit``, ``pan`` and ``amerge``.  Offline models too.
``faust``
    A Faust program: ``fi.fir`` for the fractional delay, ``@`` for the
    whole samples, ``*(-1)`` for the polarity and ``fi.tf2`` per SOS row,
    one chain per output channel (``_ <:`` spreads a mono dry); Faust
    compiles it to LV2, VST, CLAP, JUCE C++, Web Audio and more.  One model
    for every channel is a mono program, which hosts run on each channel.
    Real-time: causal models only; the fractional FIR's look-ahead becomes a
    latency, the same on every channel, stated in the program
    (``latency_samples``) and returned.
``apo``
    Equalizer APO configuration lines, guarded by ``If: sampleRate ==``
    (coefficients hold at one rate): per channel (``Channel:``; ``all``
    for one model on every channel), the fractional FIR as ``Filter: ON IIR
    Order 63 Coefficients`` without feedback, ``Delay:`` in whole samples,
    the polarity as an order-1 filter of gain -1, and ``Filter: ON IIR Order
    2 Coefficients b0 b1 b2 a0 a1 a2`` per SOS row; ``Copy:`` spreads a mono
    dry.  Equalizer APO passes 32-bit float samples between filters.
    Real-time, with the latency of ``faust``.
``camilladsp``
    A CamillaDSP (v3) configuration fragment: ``filters`` (``Delay`` in
    samples, with CamillaDSP's ``subsample`` allpass for a fractional part,
    which it documents as accurate up to a quarter of the sample rate;
    ``Gain`` ``inverted`` for the polarity; one ``Biquad`` of type ``Free``
    per SOS row), a ``mixers`` entry spreading a mono dry to every output,
    and the ``pipeline`` steps, one ``Filter`` step per model and the
    channels it serves (every channel, for one model on all).  Real-time: a
    model with an anti-causal part or an advance is refused, as by ``faust``
    and ``apo`` (align with ``--causal``, or export ``fir`` for a
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
    prototype's poles each turned into their M M-th roots, paired with their conjugates (the real ones two by
    two), each pair an allpass row whose numerator mirrors its denominator; the prototype's gain on the first."""
    if stretch == 1:
        return row[None]
    prototype = np.roots(row[3:4 + order]).astype(complex)  # the denominator 1 + a1 z^-1 (+ a2 z^-2)
    poles = np.concatenate([p ** (1.0 / stretch) * np.exp(2j * np.pi * np.arange(stretch) / stretch)
                            for p in prototype])
    real = np.sort(poles[np.abs(poles.imag) <= 1e-9].real)
    groups = [(p, np.conj(p)) for p in poles[poles.imag > 1e-9]] + [real[i:i + 2] for i in range(0, len(real), 2)]
    rows = []
    for group in groups:
        denominator = np.real(np.poly(group))
        numerator = denominator[::-1]
        rows.append(np.concatenate([np.pad(numerator, (0, 3 - len(numerator))),
                                    np.pad(denominator, (0, 3 - len(denominator)))]))
    rows = np.array(rows)
    rows[0, :3] *= row[order] / row[3]  # the prototype's g in g (c + d z^-1 + z^-2) / (1 + d z^-1 + c z^-2)
    return rows


def cascade_sos(cascade, theta):
    """Every section of ``cascade`` at ``theta`` as scipy SOS rows, shape (n_rows, 6), stretched ones expanded."""
    prototype = np.asarray(cascade.sos(theta), dtype=float)
    if not len(prototype):
        return np.zeros((0, 6))
    return np.vstack([_section_rows(row, kind.order, kind.stretch) for row, kind in zip(prototype, cascade.kinds)])


def allpass_by_frequency(rows, fs):
    r"""Allpass SOS rows as the allpasses hosts set by frequency (and Q): ``(sections, gain)``.

    A row :math:`g\,(c + d z^{-1} + z^{-2}) / (1 + d z^{-1} + c z^{-2})` with
    complex poles is the RBJ cookbook allpass (CamillaDSP's ``Allpass``,
    Equalizer APO's ``AP``) with

    .. math:: \alpha = \frac{1 - c}{1 + c}, \quad \cos\omega_0 = \frac{-d}{1 + c}, \quad
              Q = \frac{\sin\omega_0 (1 + c)}{2 (1 - c)}, \quad f_0 = \frac{\omega_0 f_s}{2\pi};

    one with real poles (:math:`Q \le 1/2`), and every first-order row
    :math:`g\,(c + z^{-1}) / (1 + c z^{-1})`, are first-order allpasses
    (CamillaDSP's ``AllpassFO``) at :math:`f = \frac{f_s}{\pi}\arctan\frac{1 + c}{1 - c}`, where
    their phase is -90 degrees.  ``gain`` is the product of the rows' :math:`g`, 1 or -1 to rounding.

    Parameters
    ----------
    rows : array_like, shape (n_rows, 6)
        Allpass rows, as :func:`cascade_sos` gives them.
    fs : float
        Sample rate in Hz.

    Returns
    -------
    (list of dict, float)
        ``{"order": 2, "f0_hz", "q"}`` or ``{"order": 1, "f0_hz"}`` per allpass, in the rows' order.

    References
    ----------
    R. Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter coefficients" (the allpass).
    """
    sections, gain = [], 1.0
    for row in np.asarray(rows, dtype=float).reshape(-1, 6):
        b0, b1, b2, _, a1, a2 = row / row[3]
        order = 1 if a2 == 0.0 and b2 == 0.0 else 2
        g = b1 if order == 1 else b2
        if not np.allclose([b0, b1] if order == 2 else [b0], g * np.array([a2, a1] if order == 2 else [a1]),
                           rtol=1e-9, atol=1e-12):
            raise ApftoolsValueError(f"the row {row.tolist()} is not an allpass (its numerator does not mirror its "
                                     "denominator)")
        gain *= g
        if order == 2 and a1 * a1 < 4.0 * a2:  # complex poles: one RBJ allpass
            omega = np.arccos(-a1 / (1.0 + a2))
            sections.append({"order": 2, "f0_hz": float(omega * fs / (2 * np.pi)),
                             "q": float(np.sin(omega) * (1.0 + a2) / (2.0 * (1.0 - a2)))})
            continue
        for c in ([a1] if order == 1 else -np.roots([1.0, a1, a2]).real):  # 1 + a1 z^-1 + a2 z^-2 = prod(1 + c z^-1)
            sections.append({"order": 1, "f0_hz": float(fs / np.pi * np.arctan((1.0 + c) / (1.0 - c)))})
    return sections, float(gain)


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
        "delay_samples", "shift", "fir", "causal_sos", "anticausal_sos",
        "causal_by_frequency", "anticausal_by_frequency"}``, the last two
        ``{"sections", "gain"}`` of :func:`allpass_by_frequency`.
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
        by_frequency = {}
        for part, rows in (("causal", causal), ("anticausal", anticausal)):
            sections, gain = allpass_by_frequency(rows, alignment.fs)
            by_frequency[f"{part}_by_frequency"] = {"sections": sections, "gain": gain}
        channels.append({"input": 0 if dry_channels == 1 else c, "polarity": int(model.polarity),
                         "delay_samples": float(model.delay_samples), "shift": shift, "fir": fir.tolist(),
                         "causal_sos": causal, "anticausal_sos": anticausal, **by_frequency})
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


def _ffmpeg_chain(channel):
    """ffmpeg filters running one channel of a :func:`to_sos` export, in float64 throughout."""
    filters, shift = [], channel["shift"]
    if len(channel["fir"]) > 1:  # the fractional FIR, delaying by its own 31 + mu samples (the shift counts them)
        filters.append(f"aiir=zeros='{' '.join(map(repr, channel['fir']))}':poles=1:gains=1:format=tf:process=d:"
                       "precision=dbl:normalize=0")
    if shift > 0:
        filters.append(f"adelay=delays={shift}S:all=1")
    elif shift < 0:
        filters.append(f"atrim=start_sample={-shift},apad=pad_len={-shift}")
    if channel["polarity"] < 0:
        filters.append("volume=volume=-1:precision=double")
    for key, around in (("causal_sos", []), ("anticausal_sos", ["areverse"])):
        if channel[key]:
            filters += around + ["biquad=" + ":".join(f"{name}={value!r}" for name, value in
                                                      zip(("b0", "b1", "b2", "a0", "a1", "a2"), row)) + ":r=f64"
                                 for row in channel[key]] + around
    return filters


def to_ffmpeg(alignment):
    """The ``ffmpeg`` export (module docstring): a filter graph for ``ffmpeg -filter_complex_script``."""
    exported = to_sos(alignment)
    channels = exported["channels"]
    head = "[0:a]aformat=sample_fmts=dblp"
    if alignment.channels is None or len(set(alignment.channels)) == 1 and exported["dry_channels"] > 1:
        return ",".join([head] + _ffmpeg_chain(channels[0])) + "\n"  # one chain runs on every channel
    n = len(channels)
    lines = [head + f",asplit={n}" + "".join(f"[in{c}]" for c in range(n)) + ";"]
    for c, channel in enumerate(channels):
        chain = [f"pan=mono|c0=c{channel['input']}"] + _ffmpeg_chain(channel)
        lines.append(f"[in{c}]" + ",".join(chain) + f"[out{c}];")
    lines.append("".join(f"[out{c}]" for c in range(n)) + f"amerge=inputs={n}")
    return "\n".join(lines) + "\n"


def _number(value):
    """A float as YAML 1.1 and 1.2 both read it: always a point in the mantissa."""
    return f"{float(value):.17e}"


def _real_time(alignment, host):
    """``(to_sos's export, latency)`` of a model ``host`` runs in real time, refusing one that needs the future; the
    latency (samples, the same for every channel) is the fractional delays' FIR look-ahead (a negative ``shift``)."""
    if any(m.anticausal is not None or m.delay_samples < 0 for m in alignment.models):
        raise ApftoolsValueError(f"{host} runs in real time and this model needs the future (an anti-causal part or an "
                                 "advance): align with --causal, or export --format fir for a convolution host")
    exported = to_sos(alignment)
    return exported, max(0, -min(channel["shift"] for channel in exported["channels"]))


def to_camilladsp(alignment):
    """The ``camilladsp`` export (module docstring): the text of a CamillaDSP configuration fragment."""
    exported, _ = _real_time(alignment, "CamillaDSP")  # its own subsample delay: no look-ahead
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
        if names:  # without a channel list, CamillaDSP applies the step to every channel
            steps += ["  - type: Filter"] + ([f"    channels: {served}"] if alignment.channels is not None else []) + [
                "    names:", *(f"      - {n}" for n in names)]
    mixer = []
    if exported["dry_channels"] == 1 and len(channels) > 1:  # one dry channel feeds every output
        mixer = ["mixers:", "  apftools_spread:", "    channels:", "      in: 1", f"      out: {len(channels)}",
                 "    mapping:", *(line for c in range(len(channels))
                                   for line in (f"      - dest: {c}", "        sources:", "          - channel: 0"))]
        steps = ["  - type: Mixer", "    name: apftools_spread"] + steps
    if len(filters) == 2:
        filters = filters[:1]  # nothing to filter: no empty mapping
    return "\n".join(filters + mixer + (["pipeline:"] + steps if steps else [])) + "\n"


def to_faust(alignment):
    """The ``faust`` export (module docstring): ``(the text of a Faust program, latency_samples)``."""
    exported, latency = _real_time(alignment, "A Faust program")
    chains = []
    for channel in exported["channels"]:
        parts = [f"fi.fir(({', '.join(map(repr, channel['fir']))}))"] if len(channel["fir"]) > 1 else []
        if channel["shift"] + latency:
            parts.append(f"@({channel['shift'] + latency})")
        if channel["polarity"] < 0:
            parts.append("*(-1)")
        parts += [f"fi.tf2({', '.join(repr(row[j]) for j in (0, 1, 2, 4, 5))})" for row in channel["causal_sos"]]
        chains.append(f"({' : '.join(parts) or '_'})")  # parenthesised: Faust's ',' binds tighter than ':'
    spread = "_ <: " if exported["dry_channels"] == 1 and len(chains) > 1 else ""
    lines = [f"// apftools: {alignment.mode} model at {alignment.fs:g} Hz, latency {latency} samples",
             'declare name "apftools alignment";', f'declare latency_samples "{latency}";', 'import("stdfaust.lib");',
             f"process = {spread}{', '.join(chains)};"]
    return "\n".join(lines) + "\n", latency


def to_apo(alignment):
    """The ``apo`` export (module docstring): ``(the text of an Equalizer APO configuration, latency_samples)``."""
    exported, latency = _real_time(alignment, "Equalizer APO")
    channels = exported["channels"]
    lines = [f"# apftools: {alignment.mode} model at {alignment.fs:g} Hz, latency {latency} samples",
             f"If: sampleRate == {alignment.fs:g}"]
    if exported["dry_channels"] == 1 and len(channels) > 1:  # one dry channel feeds every output
        lines.append("Copy: " + " ".join(f"{c + 1}=1" for c in range(1, len(channels))))
    for c, channel in enumerate(channels):
        lines.append(f"Channel: {'all' if alignment.channels is None else c + 1}")  # None: one model for all
        if len(channel["fir"]) > 1:  # the fractional FIR as an IIR filter without feedback
            order = len(channel["fir"]) - 1
            lines.append(f"Filter: ON IIR Order {order} Coefficients "
                         + " ".join(map(repr, channel["fir"] + [1.0] + [0.0] * order)))
        if channel["shift"] + latency:
            lines.append(f"Delay: {channel['shift'] + latency} samples")
        if channel["polarity"] < 0:  # -1 times the input: an IIR filter of order 1 with b = (-1, 0), a = (1, 0)
            lines.append("Filter: ON IIR Order 1 Coefficients -1.0 0.0 1.0 0.0")
        lines += ["Filter: ON IIR Order 2 Coefficients " + " ".join(map(repr, row)) for row in channel["causal_sos"]]
    lines += ["Channel: all", "EndIf:"]
    return "\n".join(lines) + "\n", latency


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
