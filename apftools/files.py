"""Align two audio files into an output folder: what ``apftools align`` (and each pair of ``batch``) does.

Reads the pair in blocks (:mod:`apftools.excerpts` for long files), aligns
(:func:`apftools.align`), renders ``aligned.wav`` (and ``mix.wav``) block by
block, and writes ``model.json``, ``report.json`` (its ``summary`` is what
the command prints) and, with ``plot``, ``report.png``; all of them appear
together or not at all (:class:`apftools.io.OutputFolder`).
"""

import contextlib
import os
import platform
import time
from dataclasses import asdict, dataclass

from . import __version__
from .errors import ApftoolsValueError

#: Every file an alignment may write into its output folder.
OUTPUTS = ("aligned.wav", "model.json", "report.json", "report.png", "mix.wav")


@dataclass(frozen=True)
class AlignOptions:
    """The options of one file alignment (those of ``apftools align``; :func:`apftools.align` documents them)."""

    sections: str = None
    causal: bool = False
    method: str = "lbfgs"
    polish: bool = False
    layers: tuple = (1024, 512, 256, 128)
    steps: int = 1000
    loss: str = "mse"
    max_delay_ms: float = 250.0
    seed: int = 0
    link: str = "auto"
    resample: bool = False
    plot: bool = False
    mix_ratio: float = None
    bits: str = None

    def outputs(self):
        """The files this alignment writes."""
        return (["aligned.wav", "model.json", "report.json"] + ["report.png"] * self.plot
                + ["mix.wav"] * (self.mix_ratio is not None))


def _resample(signal, fs_from, fs_to):
    import scipy.signal
    from math import gcd

    g = gcd(int(fs_from), int(fs_to))
    return scipy.signal.resample_poly(signal, int(fs_to) // g, int(fs_from) // g, axis=-1)


@contextlib.contextmanager
def _no_bar(label, eta=False):
    yield lambda fraction, text: None


def align_files(dry, wet, outdir, options=AlignOptions(), *, overwrite=False, bar=_no_bar, extra=None, started=None):
    """Align the files ``dry`` and ``wet`` and write the outputs into ``outdir``; returns the summary.

    Parameters
    ----------
    dry, wet : str or os.PathLike
        Audio files (any length, any channel layout :func:`apftools.align` accepts).
    outdir : str or os.PathLike
        Output folder (:class:`~apftools.io.OutputFolder` rules: an earlier
        run's outputs are replaced only with ``overwrite``).
    options : AlignOptions
    bar : callable, optional
        ``bar(label, eta=False)``, a context manager yielding
        ``update(fraction, text)``: progress of the stages (the command
        line's progress bars).
    extra : dict, optional
        More keys for report.json (``batch`` records its configuration there).
    started : float, optional
        ``time.perf_counter()`` when the work started (the command line's
        start, imports included); report.json's ``seconds`` count from it.

    Returns
    -------
    dict
        report.json's ``summary``.
    """
    from ._threads import together
    from .align import align
    from .excerpts import delay_drift, read_for_analysis
    from .io import AudioReader, OutputFolder, write_json
    from .render import ArrayReader, render_to_file

    started = time.perf_counter() if started is None else started
    with OutputFolder(outdir, OUTPUTS, overwrite=overwrite, inputs=(dry, wet)) as folder, \
            AudioReader(dry) as dry_file, AudioReader(wet) as wet_file:
        fs, fs_wet, wet_source = dry_file.fs, wet_file.fs, wet_file
        if fs_wet != fs:
            if not options.resample:
                raise ApftoolsValueError(f"{dry} is at {fs} Hz but {wet} is at {fs_wet} Hz; pass --resample "
                                         f"(resample=True) to resample the wet to {fs} Hz")
            wet_source = ArrayReader(_resample(wet_file.read(0, wet_file.frames), fs_wet, fs), fs)  # in memory
        analysis = read_for_analysis(dry_file, wet_source)
        with bar("aligning") as update:  # the excerpts' delays beside the fit, which keeps one core busy
            result, (excerpt_delays, drift) = together(
                lambda: align(analysis.dry, analysis.wet, fs, sections=options.sections, causal=options.causal,
                              method=options.method, polish=options.polish, loss=options.loss,
                              max_delay_s=options.max_delay_ms / 1000.0, seed=options.seed, link=options.link,
                              biasnet={"layer_sizes": tuple(options.layers), "max_steps": options.steps},
                              progress=update),
                lambda: delay_drift(analysis, fs, options.max_delay_ms / 1000.0))
        result.report["warnings"] += analysis.notes + ([drift] if drift else [])
        with bar("writing", eta=True) as update:
            mix = None if options.mix_ratio is None else (folder.path("mix.wav"), wet_source, options.mix_ratio)
            render_to_file(result, dry_file, folder.path("aligned.wav"), mix=mix, progress=update, bits=options.bits)
        if options.plot:
            from .plot import report_figure, save_figure

            before, after = (result.report["summary"][side] for side in ("before", "after"))
            title = (f"{os.path.basename(dry)} aligned with {os.path.basename(wet)} at {fs:g} Hz ({result.method}, "
                     f"{result.mode}): worst 1/3-octave {before['worst_band_db']:.2f} -> "
                     f"{after['worst_band_db']:.2f} dB, 50/50 mix {before['mix_deficit_db']:.2f} -> "
                     f"{after['mix_deficit_db']:.2f} dB")
            save_figure(report_figure(result, analysis.dry, analysis.wet, title), folder.path("report.png"))
        result.report["seconds"] = time.perf_counter() - started
        summary = _summary(result, fs, [os.path.join(outdir, name) for name in options.outputs()], analysis)
        report = dict(result.report, summary=summary,
                      inputs={"dry": os.path.abspath(dry), "wet": os.path.abspath(wet),
                              "wet_resampled_from_hz": fs_wet if fs_wet != fs else None},
                      analysis=dict(analysis.report(fs), excerpt_delays_samples=excerpt_delays),
                      settings={k: v for k, v in asdict(options).items()
                                if k not in ("resample", "plot", "mix_ratio", "bits")},
                      versions={"apftools": __version__, "python": platform.python_version()}, **(extra or {}))
        result.save(folder.path("model.json"))
        write_json(folder.path("report.json"), report)
    return summary


def _summary(result, fs, outputs, analysis):
    """What the printed summary says, as JSON-ready data (report.json's ``summary``, ``--json``'s output): the
    alignment's own (:func:`apftools.align.summary`) and what reading and writing the files added."""
    return dict(result.report["summary"], warnings=result.warnings,
                excerpts=None if analysis.spans is None else len(analysis.spans),
                analysed_s=analysis.dry.shape[1] / fs, outputs=outputs, seconds=result.report["seconds"])
