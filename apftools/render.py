r"""Rendering an alignment block by block: any length in bounded memory, identical to the whole-signal result.

An :class:`~apftools.model.Alignment` renders

.. math:: y = R\,A\,R\,C\,\big(s\, D_d\, x\big)

(:mod:`apftools.model`): a delay :math:`D_d`, a polarity :math:`s`, a
causal cascade :math:`C` and an anti-causal cascade :math:`A` run over the
time-reversed signal.  :func:`render_blocks` computes it in blocks of
:data:`BLOCK` samples:

1. forward, block by block: each block of the delayed dry is read from the
   source with the few samples the fractional-delay filter needs around it
   (:func:`apftools.delay.delayed_range`) and filtered by :math:`C` with its
   state carried from the block before (:meth:`Cascade.block_filter`);
2. with anti-causal sections, each block of that forward pass is filtered by
   :math:`A` over the time-reversed block and the :func:`_lookahead` samples
   after it, from rest: the whole signal's reversed pass, which starts from
   rest at the end of the signal, is the same recursion, and what it carries
   into the block from beyond the look-ahead is the input there weighted by
   the impulse response's tail, less than :data:`TAIL` in total.

Every output row is rendered on its own (:func:`_row_blocks`), the rows side
by side (:func:`apftools._threads.together`) from one read of the source per
block.  Memory holds a few blocks (and twice the look-ahead) whatever the
length; the output equals the whole-signal rendering to rounding and
:data:`TAIL`, and is written in one forward pass: no scratch file.
"""

import contextlib
import threading

import numpy as np

from ._threads import together
from .delay import delayed_range, zero_padded
from .errors import ApftoolsValueError

#: Samples per block (5.5 s at 48 kHz); a block of 8 channels in float64 takes 16 MB.  Blocks of 1.4 s made
#: `apply` on a 10-minute stereo file with a 19 460-sample look-ahead 1.2 times as slow (more hand-offs
#: between the rows rendered side by side, each block's look-ahead a larger share), for 32 MB less.
BLOCK = 1 << 18
#: What the reversed pass of a block may neglect of the input beyond its look-ahead: the sum of the
#: anti-causal impulse response's magnitudes past it, per unit of input amplitude.
TAIL = 1e-12
#: With anti-causal sections, blocks grow to twice the look-ahead, but a block and its look-ahead hold at
#: most this many samples over all channels (16 MB in float64) unless BLOCK alone needs more.
MAX_FRAMES = 1 << 21


class ArrayReader:
    """An in-memory signal with the ``read(start, stop)`` of :class:`apftools.io.AudioReader` (zeros outside)."""

    def __init__(self, data, fs):
        self.data = np.atleast_2d(np.asarray(data, dtype=float))
        self.channels, self.frames = self.data.shape
        self.fs = fs
        self.read = zero_padded(self.data)


def _plan(alignment, source):
    """Per model: (model, its output channels, the source channels feeding them); and the output channel count."""
    if alignment.channels is None:
        return [(alignment.models[0], list(range(source.channels)), list(range(source.channels)))], source.channels
    if source.channels != alignment.dry_channels:
        raise ApftoolsValueError(f"this model needs a dry with {alignment.dry_channels} channel(s) (it gives "
                                 f"{len(alignment.channels)}); the signal has {source.channels}")
    plan = [(model, members, [c if alignment.dry_channels > 1 else 0 for c in members])
            for model, members in zip(alignment.models, alignment.groups())]
    return plan, len(alignment.channels)


def render_blocks(alignment, source, **options):
    """Yield consecutive blocks, shape (channels, n), of ``alignment`` applied to ``source``.

    Parameters
    ----------
    alignment : Alignment
    source : AudioReader or ArrayReader
        The dry, at the alignment's sample rate.
    block : int
        Samples per block (rounded down to a multiple of every stretch factor; with anti-causal
        sections at least twice the look-ahead).
    progress : callable, optional
        ``progress(fraction, label)``.
    """
    if source.fs != alignment.fs:
        raise ApftoolsValueError(f"{getattr(source, 'path', 'the signal')} is at {source.fs:g} Hz but the model "
                                 f"was fitted at {alignment.fs:g} Hz; resample it or align again at its rate")
    plan, n_out = _plan(alignment, source)
    return _blocks(plan, n_out, source, **options)


def _blocks(plan, n_out, source, block=BLOCK, progress=None):
    """:func:`render_blocks` of a plan (:func:`_plan`): every output row rendered on its own, side by side."""
    n = source.frames
    multiple = int(np.lcm.reduce([c.block_multiple for m, _, _ in plan for c, _, _ in m.parts()] or [1]))
    block = max(multiple, block - block % multiple)
    progress = progress or (lambda fraction, label: None)
    # the reversed pass of each block starts from rest `lookahead` samples past its end (zeros past the dry's)
    lookahead = max([_lookahead(m.anticausal, m.anticausal_theta) for m, _, _ in plan if m.anticausal is not None]
                    or [0])
    lookahead += -lookahead % multiple
    if lookahead:  # long blocks spread the look-ahead's cost; their memory stays within MAX_FRAMES samples
        block = max(block, min(2 * lookahead, (MAX_FRAMES // n_out - lookahead) // multiple * multiple))
    read = _SharedReads(source)
    rows = sorted((row, model, channel) for model, members, inputs in plan for row, channel in zip(members, inputs))
    streams = [_row_blocks(model, lambda a, b, c=channel: read(a, b)[c], n, block, lookahead, multiple)
               for _, model, channel in rows]
    for start in range(0, n, block):
        yield np.stack(together(*(lambda stream=stream: next(stream) for stream in streams)))
        progress(min(start + block, n) / n, "rendering")


def _row_blocks(model, read, n, block, lookahead, multiple):
    """The blocks of one output row: ``read(a, b)`` its dry channel's samples a to b (zeros outside)."""
    causal = model.cascade.block_filter(model.theta, 1) if model.cascade is not None else None

    def forward(start, stop):
        y = model.polarity * delayed_range(read, start, stop, model.delay_samples)
        return y if causal is None else causal(y[None])[0]

    if model.anticausal is None:
        for start in range(0, n, block):
            yield forward(start, min(start + block, n))
        return
    held = np.empty(0)  # the forward pass from the current block's start on
    for start in range(0, n, block):
        stop = min(start + block, n)
        # cut where the whole signal's reversed pass would, so a stretched section keeps its phases
        end = stop + lookahead + (n - stop - lookahead) % multiple
        while len(held) < min(end, n) - start:
            a = start + len(held)
            held = np.concatenate([held, forward(a, min(a + block, n))])
        out = np.zeros(end - start)
        out[:min(len(held), end - start)] = held[:end - start]
        reversed_pass = model.anticausal.block_filter(model.anticausal_theta, 1)
        held = held[stop - start:]
        yield reversed_pass(out[None, ::-1])[0, ::-1][:stop - start]


class _SharedReads:
    """``read(a, b)`` of a source shared by rows rendered side by side: one read per range, one at a time."""

    def __init__(self, source):
        self.source, self.lock, self.last = source, threading.Lock(), (None, None)

    def __call__(self, start, stop):
        with self.lock:
            if self.last[0] != (start, stop):
                self.last = (start, stop), self.source.read(start, stop)
            return self.last[1]


def _lookahead(cascade, theta):
    """Samples after which the reversed pass's neglected input counts less than :data:`TAIL` in total."""
    radius = float(np.max(cascade.pole_radius(theta)))
    return cascade.impulse_response_length(theta, tol=TAIL * (1.0 - radius))


def _joined(blocks, channels, frames):
    """The blocks written into one array as they come (no list of blocks beside the result)."""
    out, start = np.empty((channels, frames)), 0
    for block in blocks:
        out[:, start:start + block.shape[1]] = block
        start += block.shape[1]
    return out


def render(alignment, source, **options):
    """The whole output of :func:`render_blocks` as one array, shape (channels, n)."""
    return _joined(render_blocks(alignment, source, **options), _plan(alignment, source)[1], source.frames)


def render_model(model, x):
    """One :class:`~apftools.model.ChannelModel` applied to every channel of the array ``x``.

    The body of :meth:`ChannelModel.apply`.
    """
    source = ArrayReader(x, None)
    rows = list(range(source.channels))
    return _joined(_blocks([(model, rows, rows)], source.channels, source), source.channels, source.frames)


def render_to_file(alignment, source, path, *, mix=None, overwrite=False, progress=None, bits=None):
    """Write :func:`render_blocks` to the audio file ``path`` (:func:`apftools.io.audio_writer`, atomic).

    ``mix = (mix_path, wet, wet_ratio)`` writes :meth:`Alignment.mix` of the
    same blocks to ``mix_path`` too, over the dry's and the wet's common
    length (``wet`` an AudioReader or ArrayReader of 1 or the output's channel
    count).  ``bits`` is :func:`~apftools.io.audio_writer`'s sample format.
    Returns the output's ``(channels, frames)``.
    """
    from .io import audio_writer

    channels = _plan(alignment, source)[1]
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(audio_writer(path, alignment.fs, channels, overwrite=overwrite, bits=bits))]
        if mix is not None:
            mix_path, wet, wet_ratio = mix
            if wet.channels not in (1, channels):
                raise ApftoolsValueError(f"the wet has {wet.channels} channels; the aligned dry has {channels}")
            writers.append(stack.enter_context(audio_writer(mix_path, alignment.fs, channels, overwrite=overwrite,
                                                            bits=bits)))
            common = min(source.frames, wet.frames)

        def write(block, start):
            writers[0](block)
            if mix is not None and start < common:
                part = block[:, :common - start]
                writers[1]((1.0 - wet_ratio) * part + wet_ratio * wet.read(start, start + part.shape[1]))

        blocks = render_blocks(alignment, source, progress=progress)
        start, block = 0, next(blocks, None)
        while block is not None:  # each block is written while the next one is computed
            following, _ = together(lambda: next(blocks, None), lambda: write(block, start))
            start, block = start + block.shape[1], following
    return channels, start
