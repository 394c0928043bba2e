"""What :func:`apftools.align` analyses of a long file: a few loud excerpts, read in bounded memory.

The fit needs the effect's transfer function, not every sample: a minute of
varied material measures it as well as an hour does.  Files up to
:data:`WHOLE_FILE_S` are analysed whole.  Of a longer pair,
:func:`read_for_analysis` reads :data:`N_EXCERPTS` excerpts of
:data:`EXCERPT_S` seconds, one from each of as many equal parts of the file
(the loudest window of its part, so the analysis spans the whole file and
skips silence), and joins them; :func:`delay_drift` then checks that the
bulk delay measured on each excerpt is the same across the file.  Memory
holds the excerpts and one block, whatever the file's length; the aligned
file is rendered from the whole dry block by block (:mod:`apftools.render`).
"""

from dataclasses import dataclass, field

import numpy as np

from ._validate import channel_layout
from .delay import estimate_delay

#: Pairs up to this long (s) are analysed whole.
WHOLE_FILE_S = 60.0
#: A longer pair is analysed on this many excerpts ...
N_EXCERPTS = 6
#: ... of this many seconds each.
EXCERPT_S = 6.0
#: Each excerpt fades in and out over this many seconds (both files alike).
FADE_S = 0.05
#: Bulk delays of the excerpts differing by more than this (samples) are reported as drift.
DRIFT_SAMPLES = 1.0
#: Blocks of the loudness scan (samples).
_SCAN_BLOCK = 1 << 18


@dataclass
class Analysis:
    """The signals :func:`apftools.align` analyses, and where they come from.

    Attributes
    ----------
    dry, wet : ndarray, shape (channels, n)
        The whole files, or the excerpts joined.
    spans : list of (int, int) or None
        Sample ranges ``[start, stop)`` of the excerpts in the files, in
        order; None when the files are analysed whole.
    frames : int or None
        The files' common length, in samples, when read in excerpts.
    notes : list of str
        What the report should say about the reading (files of different lengths).
    """

    dry: np.ndarray
    wet: np.ndarray
    spans: list = None
    frames: int = None
    notes: list = field(default_factory=list)

    def report(self, fs):
        """JSON-ready summary of what was analysed."""
        if self.spans is None:
            return {"whole_file": True, "seconds_analysed": self.dry.shape[1] / fs}
        return {"whole_file": False, "seconds_analysed": self.dry.shape[1] / fs, "file_seconds": self.frames / fs,
                "excerpts_s": [[start / fs, stop / fs] for start, stop in self.spans]}


def _loudness(reader, n, hop):
    """Energy of the ``n`` first samples of ``reader`` per ``hop`` samples, all channels summed, read in blocks."""
    energy = np.zeros(-(-n // hop))
    step = max(hop, _SCAN_BLOCK - _SCAN_BLOCK % hop)
    for start in range(0, n, step):
        block = reader.read(start, min(start + step, n))
        squares = np.sum(block**2, axis=0)
        squares = np.pad(squares, (0, -len(squares) % hop))
        energy[start // hop:start // hop + len(squares) // hop] = squares.reshape(-1, hop).sum(axis=1)
    return energy


def choose_spans(energy, hop, n, n_excerpts=N_EXCERPTS, length=None):
    """``[start, stop)`` of the loudest window of ``length`` samples in each of ``n_excerpts`` equal parts of ``n``.

    ``energy`` holds the energy per ``hop`` samples; windows start on hops.
    """
    windows = max(1, length // hop)
    cumulative = np.concatenate([[0.0], np.cumsum(energy)])
    spans = []
    for part in range(n_excerpts):
        first, last = part * n // n_excerpts, (part + 1) * n // n_excerpts - length
        starts = np.arange(first // hop, max(first // hop, last // hop) + 1)
        ends = np.minimum(starts + windows, len(energy))
        best = int(starts[np.argmax(cumulative[ends] - cumulative[starts])])
        spans.append((best * hop, min(best * hop + length, n)))
    return spans


def read_for_analysis(dry, wet, *, whole_file_s=WHOLE_FILE_S, n_excerpts=N_EXCERPTS, excerpt_s=EXCERPT_S):
    """The :class:`Analysis` of a pair of open files (:class:`apftools.io.AudioReader`, same sample rate).

    Files both up to ``whole_file_s`` seconds are read whole, as they are.
    Otherwise, an overlap (the shorter file's length) up to ``whole_file_s``
    is read whole, and a longer one gives ``n_excerpts`` excerpts of
    ``excerpt_s`` seconds (module docstring), the same sample ranges of both
    files, joined in order; :attr:`Analysis.notes` says when the lengths differ.
    Excerpts fade in and out over :data:`FADE_S` (a raised cosine), so the
    joins are not steps that no model reproduces: unfaded, the mix of a
    high-pass's model scored 0.10 dB worse on the joined excerpts than on
    the whole file (0.0005 dB).
    """
    fs = dry.fs
    n = min(dry.frames, wet.frames)
    if max(dry.frames, wet.frames) <= whole_file_s * fs:
        return Analysis(dry.read(0, dry.frames), wet.read(0, wet.frames))
    if n <= whole_file_s * fs:
        spans = [(0, n)]
    else:
        hop = int(fs)
        spans = choose_spans(_loudness(dry, n, hop), hop, n, n_excerpts, int(excerpt_s * fs))
    notes = [] if dry.frames == wet.frames else [
        f"the dry lasts {dry.frames / fs:.2f} s and the wet {wet.frames / fs:.2f} s; analysed on the first "
        f"{n / fs:.2f} s, both"]
    def excerpt(reader, start, stop):
        block = reader.read(start, stop)
        if len(spans) > 1:
            ramp = np.sin(0.5 * np.pi * np.linspace(0.0, 1.0, min(int(FADE_S * fs), block.shape[1] // 2))) ** 2
            block[:, :len(ramp)] *= ramp
            block[:, block.shape[1] - len(ramp):] *= ramp[::-1]
        return block

    joined = (np.concatenate([excerpt(reader, a, b) for a, b in spans], axis=1) for reader in (dry, wet))
    return Analysis(*joined, spans, n, notes)


def delay_drift(analysis, fs, max_delay_s):
    """Every excerpt's bulk delay (samples), and a warning if they disagree; ``([], None)`` if read whole.

    Each excerpt's delay comes from :func:`apftools.delay.estimate_delay`
    on the excerpt alone, first channel to first channel (after
    :func:`apftools._validate.channel_layout`: a drift or an edit moves every
    channel alike); ambiguous estimates are left out of the comparison.
    """
    if analysis.spans is None:
        return [], None
    dry, wet, _ = channel_layout(analysis.dry, analysis.wet)
    delays, offset = [], 0
    for start, stop in analysis.spans:
        part = slice(offset, offset + stop - start)
        offset += stop - start
        estimate = estimate_delay(dry[0, part], wet[0, part], fs, max_delay_s)
        delays.append(None if estimate.ambiguous else float(estimate.delay_samples))
    known = [d for d in delays if d is not None]
    if len(known) > 1 and np.ptp(known) > DRIFT_SAMPLES:
        return delays, (f"the bulk delay drifts across the file: {min(known):.1f} to {max(known):.1f} samples over "
                        f"the excerpts at {', '.join(f'{a / fs:.0f} s' for a, _ in analysis.spans)}; "
                        "one model cannot align all of it (a clock drift, or an edit between the files?)")
    return delays, None
