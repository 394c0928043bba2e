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
2. with anti-causal sections, the result goes to a scratch file and is
   filtered by :math:`A` from the last block to the first, the state carried
   backwards (the reversed pass starts from rest at the end of the signal,
   as the whole-signal rendering does), then read forward again.

Memory holds a few blocks whatever the length; the output equals
:meth:`Alignment.apply` on the whole signal to rounding (the same
recursions; the delay's convolution is computed block by block).
"""

import contextlib
import errno
import os
import tempfile

import numpy as np

from .delay import delayed_range, zero_padded
from .errors import ApftoolsValueError

#: Samples per block (1.4 s at 48 kHz); a block of 8 channels in float64 takes 4 MB.
BLOCK = 1 << 16


class ArrayReader:
    """An in-memory signal with the ``read(start, stop)`` of :class:`apftools.io.AudioReader` (zeros outside)."""

    def __init__(self, data, fs):
        self.data = np.atleast_2d(np.asarray(data, dtype=float))
        self.channels, self.frames = self.data.shape
        self.fs = fs
        self.read = zero_padded(self.data)


class _Scratch:
    """Float64 frames of the forward pass, written and read by sample range: a temporary file, or an array."""

    def __init__(self, channels, frames, directory=None):
        self.channels = channels
        self.array = np.empty((channels, frames)) if directory is None else None
        self.file = None if directory is None else tempfile.TemporaryFile(dir=directory)

    def write(self, start, block):
        if self.file is None:
            self.array[:, start:start + block.shape[1]] = block
        else:
            data = np.ascontiguousarray(block.T).tobytes()
            if os.pwrite(self.file.fileno(), data, 8 * self.channels * start) != len(data):
                raise OSError(errno.ENOSPC, "the scratch file of the anti-causal pass could not be written whole")

    def read(self, start, stop):
        if self.file is None:
            return self.array[:, start:stop]
        data = os.pread(self.file.fileno(), 8 * self.channels * (stop - start), 8 * self.channels * start)
        return np.frombuffer(data, dtype=float).reshape(stop - start, self.channels).T

    def close(self):
        if self.file is not None:
            self.file.close()


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


def render_blocks(alignment, source, *, wet=None, wet_ratio=0.5, **options):
    """Yield consecutive blocks, shape (channels, n), of ``alignment`` applied to ``source`` (or of its mix).

    Parameters
    ----------
    alignment : Alignment
    source : AudioReader or ArrayReader
        The dry, at the alignment's sample rate.
    wet : AudioReader or ArrayReader, optional
        With it, the blocks are ``(1 - wet_ratio) * aligned + wet_ratio *
        wet`` over the common length (:meth:`Alignment.mix`).
    block : int
        Samples per block (rounded down to a multiple of every stretch factor).
    scratch_dir : str, optional
        Folder of the temporary scratch file the anti-causal pass needs; None
        keeps the scratch in memory (for arrays).
    progress : callable, optional
        ``progress(fraction, label)``.
    """
    if source.fs != alignment.fs:
        raise ApftoolsValueError(f"{getattr(source, 'path', 'the signal')} is at {source.fs:g} Hz but the model "
                                 f"was fitted at {alignment.fs:g} Hz; resample it or align again at its rate")
    plan, n_out = _plan(alignment, source)
    if wet is not None and wet.channels not in (1, n_out):
        raise ApftoolsValueError(f"the wet has {wet.channels} channels; the aligned dry has {n_out}")
    return _blocks(plan, n_out, source, wet, wet_ratio, **options)


def _blocks(plan, n_out, source, wet=None, wet_ratio=0.5, block=BLOCK, scratch_dir=None, progress=None):
    """:func:`render_blocks` of a plan (:func:`_plan`)."""
    # the output's length; the anti-causal pass starts from rest at the end of the dry, whatever the wet's length
    n = source.frames if wet is None else min(source.frames, wet.frames)
    multiple = np.lcm.reduce([c.block_multiple for m, _, _ in plan for c, _, _ in m.parts()] or [1])
    block = max(int(multiple), block - block % int(multiple))
    progress = progress or (lambda fraction, label: None)
    forward = [m.cascade.block_filter(m.theta, len(members)) if m.cascade is not None else None
               for m, members, _ in plan]
    backward = [m.anticausal.block_filter(m.anticausal_theta, len(members)) if m.anticausal is not None else None
                for m, members, _ in plan]
    passes = 3 if any(f is not None for f in backward) else 1

    def first_pass(start, stop):
        out = np.empty((n_out, stop - start))
        for (model, members, inputs), causal in zip(plan, forward):
            y = model.polarity * delayed_range(lambda a, b: source.read(a, b)[inputs], start, stop,
                                               model.delay_samples)
            out[members] = y if causal is None else causal(y)
        return out

    def finish(start, out):
        if wet is None:
            return out
        return (1.0 - wet_ratio) * out + wet_ratio * wet.read(start, start + out.shape[1])

    starts = range(0, n, block)
    if passes == 1:
        for i, start in enumerate(starts):
            yield finish(start, first_pass(start, min(start + block, n)))
            progress((i + 1) / len(starts), "rendering")
        return
    total = source.frames
    count = -(-total // block)
    scratch = _Scratch(n_out, total, scratch_dir)
    with contextlib.closing(scratch):
        for i, start in enumerate(range(0, total, block)):
            scratch.write(start, first_pass(start, min(start + block, total)))
            progress((i + 1) / count / 3, "rendering (forward)")
        # the reversed pass cuts the signal from its end, so its blocks keep the stretched phases of the reversed signal
        for i, stop in enumerate(range(total, 0, -block)):
            start = max(stop - block, 0)
            out = np.array(scratch.read(start, stop))
            for (_, members, _), anticausal in zip(plan, backward):
                if anticausal is not None:
                    out[members] = anticausal(out[members][:, ::-1])[:, ::-1]
            scratch.write(start, out)
            progress((1 + (i + 1) / count) / 3, "rendering (backward)")
        for i, start in enumerate(starts):
            yield finish(start, scratch.read(start, min(start + block, n)))  # read-only: nothing writes to it
            progress((2 + (i + 1) / len(starts)) / 3, "rendering (writing)")


def _joined(blocks, channels, frames):
    """The blocks written into one array as they come (no list of blocks beside the result)."""
    out, start = np.empty((channels, frames)), 0
    for block in blocks:
        out[:, start:start + block.shape[1]] = block
        start += block.shape[1]
    return out


def render(alignment, source, *, wet=None, **options):
    """The whole output of :func:`render_blocks` as one array, shape (channels, n)."""
    frames = source.frames if wet is None else min(source.frames, wet.frames)
    return _joined(render_blocks(alignment, source, wet=wet, **options), _plan(alignment, source)[1], frames)


def render_model(model, x):
    """One :class:`~apftools.model.ChannelModel` applied to every channel of the array ``x``.

    The body of :meth:`ChannelModel.apply`.
    """
    source = ArrayReader(x, None)
    rows = list(range(source.channels))
    return _joined(_blocks([(model, rows, rows)], source.channels, source), source.channels, source.frames)


def render_to_file(alignment, source, path, *, wet=None, wet_ratio=0.5, overwrite=False, progress=None):
    """Write :func:`render_blocks` to the audio file ``path`` (:func:`apftools.io.audio_writer`, atomic).

    The scratch file of the anti-causal pass lives beside ``path`` and is
    gone when this returns, whatever happens.  Returns the output's
    ``(channels, frames)``.
    """
    from .io import audio_writer

    blocks = render_blocks(alignment, source, wet=wet, wet_ratio=wet_ratio, progress=progress,
                           scratch_dir=os.path.dirname(os.path.abspath(path)))
    channels, frames = _plan(alignment, source)[1], 0
    with audio_writer(path, alignment.fs, channels, overwrite=overwrite) as write:
        for block in blocks:
            write(block)
            frames += block.shape[1]
    return channels, frames
