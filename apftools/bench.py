"""Score aligners on a folder of dry/wet cases: the real-effects benchmark, for apftools and anyone's aligner.

``apftools bench [CASES_DIR] [--methods LIST] [--cmd TEMPLATE] [--json FILE] [--plot FILE] [--only NAMES]``, or
:func:`run` from Python with your aligner as a callable.  Without ``CASES_DIR``, the twelve 4-second real-effect
cases shipped with apftools (:func:`shipped_cases`: third-party plugins over real recordings, each with its recipe
in ``meta.json``).

A case is any sub-folder holding ``dry.wav`` (or ``.flac``) and ``wet.wav``
(or ``.flac``) at one sample rate; ``meta.json`` is optional (its
``expect`` is shown).  Layouts: N dry channels into N wet channels, or a
mono dry into an N-channel wet (each wet channel scored against the one dry).

Methods (default :data:`DEFAULT_METHODS`):

==================  ==========================================================
``raw``             no alignment
``delay-polarity``  GCC-PHAT integer lag and sign per channel: what delay and
                    polarity aligners do
``oracle``          that lag, then the per-bin phase of the dry-to-wet
                    cross-spectrum applied on the STFT (non-causal, static):
                    the upper bound of any static alignment at the metrics'
                    resolution
``lbfgs``           ``apftools.align`` with its defaults (offline: causal and
                    anti-causal sections)
``lbfgs-causal``    ``apftools.align(causal=True)``: the real-time mode
``auto``            ``apftools.align(sections="auto")``
``biasnet-paper``   BiasNet with the paper's sizes, learning rate 1e-5 and
                    multi-resolution STFT-sum loss
``biasnet-small``   BiasNet with layers (64, 64), learning rate 1e-3
``biasnet+polish``  the paper's BiasNet, refined by L-BFGS
``cmd``             an external aligner: ``--cmd 'my-aligner {dry} {wet} {out}'``
                    must write ``{out}/aligned.wav`` (the dry's rate and
                    length, the wet's channel count or one channel for all)
==================  ==========================================================

and from Python, any ``aligners={"mine": f}`` with ``f(dry, wet, fs) ->
aligned``: dry ``(C_dry, N)``, wet ``(C, N)``, aligned ``(C, N)`` or ``(1, N)``
for every channel.  BiasNet trainings stop after ``biasnet_seconds`` (default
15 s) or 1000 steps, whichever comes first.  A method that fails on a case
records its error in that row; the run goes on.

Metrics, per case, method and wet channel and over all channels (``"all"``:
the overall deficit of the pooled channels, the worst band and the harm of
the worst channel), all from :mod:`apftools.metrics`: the 50/50 mix
deficit, the worst third-octave window and its centre (windows a sixth of an
octave apart: :func:`apftools.bands.window_centres`), the *harm* (the
largest loss of any window with energy against ``raw``,
:func:`apftools.metrics.band_harm_db`), the weighted phase error, the
fitted model's largest cascade group delay over the audio band (a ringing
indicator), and wall seconds.

Output: :func:`markdown` gives the worst band per case and method, with
summary rows (cases within 0.5 dB of the oracle's worst band, cases harmed by
more than 0.5 dB, median deficit and seconds); :func:`plot` draws the worst
bands.
"""

import concurrent.futures
import contextlib
import functools
import json
import math
import pathlib
import shlex
import statistics
import subprocess
import tempfile
import time

import numpy as np
import scipy.signal

from . import metrics
from .align import align
from .delay import apply_delay, estimate_delay
from .errors import ApftoolsValueError
from .io import read_audio
from .names import BENCH_METHODS

METHODS = BENCH_METHODS
#: What runs when no methods are named: the references and apftools' two modes (BiasNet's take 15 s a case each).
DEFAULT_METHODS = ("raw", "delay-polarity", "oracle", "lbfgs", "lbfgs-causal")
#: A method is "near the oracle" on a case when its worst band is within this of the oracle's (dB).
NEAR_ORACLE_DB = 0.5
#: A method "harms" a case when some band loses more than this against raw (dB).
HARM_DB = 0.5
KEYS = ("case", "method", "channel", "mix_deficit_db", "worst_band_db", "worst_band_hz", "harm_db",
        "phase_error_deg", "max_group_delay_ms", "seconds", "error")


# ------------------------------------------------------------------------------------------------------- cases
def shipped_cases():
    """The folder of the twelve real-effect cases shipped with apftools: in the installed package, or ``data/real``
    of a source checkout (an editable install)."""
    installed = pathlib.Path(__file__).resolve().parent / "cases"
    return installed if installed.is_dir() else pathlib.Path(__file__).resolve().parents[1] / "data" / "real"


def _audio_files(folder):
    """Stem -> path of the WAV and FLAC files in ``folder``."""
    return {p.stem: p for p in folder.glob("*") if p.suffix.lower() in (".wav", ".flac")}


def find_cases(folder, only=None):
    """Sorted case folders below ``folder`` that hold a dry and a wet file."""
    return [path for path in sorted(pathlib.Path(folder).iterdir())
            if path.is_dir() and {"dry", "wet"} <= set(_audio_files(path)) and (only is None or path.name in only)]


def load_case(path):
    """``(dry, wet, fs, meta)`` with dry of 1 or the wet's channel count."""
    files = _audio_files(path)
    dry, fs = read_audio(files["dry"])
    wet, fs_wet = read_audio(files["wet"])
    if fs_wet != fs:
        raise ValueError(f"dry is at {fs} Hz, wet at {fs_wet} Hz")
    if dry.shape[0] not in (1, wet.shape[0]):
        raise ValueError(f"{dry.shape[0]} dry channels into {wet.shape[0]} wet channels: not a layout scored here")
    n = min(dry.shape[1], wet.shape[1])
    meta_path = path / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return dry[:, :n], wet[:, :n], fs, meta


def _per_channel(dry, wet):
    """(dry channel, wet channel) pairs: a mono dry feeds every wet channel."""
    return [(dry[min(c, dry.shape[0] - 1)], wet[c]) for c in range(wet.shape[0])]


# ----------------------------------------------------------------------------------------------------- methods
def _delay_polarity(d, w, fs):
    estimate = estimate_delay(d, w, fs)
    return estimate.polarity * apply_delay(d, round(estimate.delay_samples))


def _oracle(d, w, fs):
    """Integer lag removed, then every STFT bin rotated by the cross-spectrum's phase at its frequency."""
    d = _delay_polarity(d, w, fs)
    nperseg = metrics.metric_nperseg(fs, len(d))
    kwargs = {"fs": fs, "window": "hann", "nperseg": nperseg, "noverlap": 3 * nperseg // 4}
    _, _, dd = scipy.signal.stft(d, **kwargs)
    _, _, ww = scipy.signal.stft(w, **kwargs)
    rotation = np.exp(1j * np.angle(np.sum(np.conj(dd) * ww, axis=-1, keepdims=True)))
    _, y = scipy.signal.istft(dd * rotation, **kwargs)
    return y[:len(d)]


def _apftools(**options):
    def method(dry, wet, fs, case_folder):
        result = align(dry, wet, fs, **options)
        return result.apply(dry), result

    return method


def _every_channel(aligned, wet, fs_out, fs, what):
    """``aligned`` with the wet's channels (one channel serves every wet channel, as a mono dry does), refused with
    what it is unless it has the wet's rate and length."""
    aligned = np.atleast_2d(np.asarray(aligned, dtype=float))
    if aligned.shape[0] == 1:
        aligned = np.repeat(aligned, wet.shape[0], axis=0)
    if fs_out != fs or aligned.shape != wet.shape:
        raise ValueError(f"{what} has {aligned.shape[0]} channel(s) of {aligned.shape[-1]} samples at {fs_out} Hz; "
                         f"expected 1 or {wet.shape[0]} channel(s) (the wet's) of {wet.shape[1]} samples (the dry's "
                         f"length) at {fs} Hz")
    return aligned


def _cmd_method(template):
    def method(dry, wet, fs, case_folder):
        with tempfile.TemporaryDirectory() as out:
            files = _audio_files(case_folder)
            command = template.format(dry=shlex.quote(str(files["dry"])), wet=shlex.quote(str(files["wet"])),
                                      out=shlex.quote(out))
            result = subprocess.run(command, shell=True, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"exit {result.returncode}: {result.stderr.strip()[-300:]}")
            aligned, fs_out = read_audio(pathlib.Path(out) / "aligned.wav")
        return _every_channel(aligned, wet, fs_out, fs, "aligned.wav"), None

    return method


def _callable_method(aligner):
    def method(dry, wet, fs, case_folder):
        return _every_channel(aligner(dry, wet, fs), wet, fs, fs, "the aligner's output"), None

    return method


def _per_channel_method(function):
    def method(dry, wet, fs, case_folder):
        return np.stack([function(d, w, fs) for d, w in _per_channel(dry, wet)]), None

    return method


def build_methods(biasnet_seconds, cmd=None, aligners=None):
    """Method name -> ``f(dry, wet, fs, case_folder) -> (aligned with the wet's channels, Alignment or None)``;
    ``aligners``: more, by name, each ``f(dry, wet, fs) -> aligned``."""
    paper = {"max_seconds": biasnet_seconds}
    methods = {
        "raw": _per_channel_method(lambda d, w, fs: d),
        "delay-polarity": _per_channel_method(_delay_polarity),
        "oracle": _per_channel_method(_oracle),
        "lbfgs": _apftools(),
        "lbfgs-causal": _apftools(causal=True),
        "auto": _apftools(sections="auto"),
        "biasnet-paper": _apftools(method="biasnet", loss="mr_stft_sum", biasnet=paper),
        "biasnet-small": _apftools(method="biasnet", loss="mr_stft_sum",
                                   biasnet={**paper, "layer_sizes": (64, 64), "learning_rate": 1e-3}),
        "biasnet+polish": _apftools(method="biasnet", loss="mr_stft_sum", polish=True, biasnet=paper),
    }
    if cmd is not None:
        methods["cmd"] = _cmd_method(cmd)
    return methods | {name: _callable_method(f) for name, f in (aligners or {}).items()}


# ----------------------------------------------------------------------------------------------------- metrics
def max_group_delay_ms(alignment):
    """The kept model's cascades' group delay of largest magnitude, signed, from its report (NaN without an
    apftools model)."""
    if alignment is None:
        return float("nan")
    return max((group["max_group_delay_ms"] for group in alignment.report["groups"]), key=abs)


def score(aligned, wet, fs, raw_bands):
    """Metrics of one aligned signal (C, N) against the wet: per channel and "all"; band deficits for harm."""
    rows, bands = [], []
    for channel, (a, w) in [(str(c), (aligned[c], wet[c])) for c in range(wet.shape[0])] + [("all", (aligned, wet))]:
        centres, band_db = metrics.band_mix_deficit_db(a, w, fs, windows=True)  # the judge's windows
        hz, worst = metrics.worst_band(centres, band_db)
        rows.append({"channel": channel, "mix_deficit_db": metrics.mix_deficit_db(a, w, fs), "worst_band_db": worst,
                     "worst_band_hz": hz, "phase_error_deg": metrics.phase_error_deg(a, w, fs)})
        bands.append(band_db)
    for row, band_db, raw in zip(rows, bands, raw_bands or bands):
        row["harm_db"] = metrics.band_harm_db(raw, band_db)
    if len(rows) > 2:  # of several channels, "all" judges the worst channel, as align's summary does: pooled
        *channels, pooled = rows  # spectra average one channel's notch away
        worst = min(channels, key=lambda row: math.inf if math.isnan(row["worst_band_db"]) else row["worst_band_db"])
        pooled.update(worst_band_db=worst["worst_band_db"], worst_band_hz=worst["worst_band_hz"],
                      harm_db=min(row["harm_db"] for row in channels))
    return rows, bands


def run_case(folder, names, biasnet_seconds, cmd=None, aligners=None):
    """The methods ``names`` on one case: JSON rows (raw first, so harm has its reference)."""
    methods = {name: f for name, f in build_methods(biasnet_seconds, cmd, aligners).items() if name in names}
    name = folder.name
    try:
        dry, wet, fs, meta = load_case(folder)
    except Exception as error:  # noqa: BLE001  (a bad case is a row, not the end of the run)
        return [dict.fromkeys(KEYS) | {"case": name, "method": m, "channel": "all", "error": str(error)}
                for m in methods]
    rows, raw_bands = [], None
    for method_name in sorted(methods, key=lambda m: m != "raw"):
        start = time.perf_counter()
        try:
            aligned, alignment = methods[method_name](dry, wet, fs, folder)
            seconds = time.perf_counter() - start
            method_rows, bands = score(aligned, wet, fs, raw_bands)
            if method_name == "raw":
                raw_bands = bands
            extra = {"max_group_delay_ms": max_group_delay_ms(alignment), "seconds": seconds, "error": None}
        except Exception as error:  # noqa: BLE001  (recorded in the row; the run goes on)
            method_rows = [{"channel": "all"}]
            extra = {"seconds": time.perf_counter() - start, "error": f"{type(error).__name__}: {error}"}
        for row in method_rows:
            rows.append(dict.fromkeys(KEYS) | row | extra | {"case": name, "method": method_name,
                                                             "expect": meta.get("expect")})
    return rows


# ------------------------------------------------------------------------------------------------------ output
def _cell(row):
    if row is None:
        return ""
    if row["error"]:
        return "error"
    return f"{row['worst_band_db']:.2f}"


def _summary(rows, methods):
    totals = {row["case"]: row for row in rows if row["method"] == "oracle" and row["channel"] == "all"}
    lines = []
    for label, test in (
        (f"within {NEAR_ORACLE_DB} dB of oracle",
         lambda r, o: r["worst_band_db"] >= o["worst_band_db"] - NEAR_ORACLE_DB),
        (f"harms a band by > {HARM_DB} dB", lambda r, o: r["harm_db"] < -HARM_DB),
    ):
        cells = []
        for method in methods:
            scored = [(r, totals.get(r["case"])) for r in rows if r["method"] == method and r["channel"] == "all"]
            ok = [test(r, o) for r, o in scored if not r["error"] and o and not o["error"]]
            errors = sum(1 for r, _ in scored if r["error"])
            cells.append(f"{sum(ok)}/{len(scored)}" + (f" ({errors} err)" if errors else ""))
        lines.append(f"| **{label}** | | " + " | ".join(cells) + " |")
    for label, key, digits in (("median overall deficit (dB)", "mix_deficit_db", 3), ("median seconds", "seconds", 2)):
        medians = []
        for method in methods:
            values = [r[key] for r in rows if r["method"] == method and r["channel"] == "all" and not r["error"]]
            medians.append(f"{statistics.median(values):.{digits}f}" if values else "")
        lines.append(f"| **{label}** | | " + " | ".join(medians) + " |")
    return lines


def markdown(rows, methods):
    """Cases x methods: the worst third-octave window (dB) of the worst channel, and summary rows."""
    cases = list(dict.fromkeys(row["case"] for row in rows))
    index = {(r["case"], r["method"]): r for r in rows if r["channel"] == "all"}
    lines = ["| case | expect | " + " | ".join(methods) + " |", "|---|---|" + "---:|" * len(methods)]
    for case in cases:
        expect = next((r.get("expect") for r in rows if r["case"] == case), None) or ""
        lines.append(f"| {case} | {expect} | " + " | ".join(_cell(index.get((case, m))) for m in methods) + " |")
    return "\n".join(lines + _summary(rows, methods))


def plot(rows, methods):
    """Per case, the worst band of each method as a horizontal bar; the oracle as a black mark: a Figure."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    cases = list(dict.fromkeys(row["case"] for row in rows))
    index = {(r["case"], r["method"]): r for r in rows if r["channel"] == "all" and not r["error"]}
    shown = [m for m in methods if m != "oracle"]
    height = 0.8 / max(len(shown), 1)
    figure = Figure(figsize=(10, 1.0 + 0.45 * len(cases) * max(1, len(shown) / 4)))
    ax = figure.subplots()
    colours = colormaps["tab10"]
    for j, method in enumerate(shown):
        y = [i + (j - (len(shown) - 1) / 2) * height for i in range(len(cases))]
        x = [index[(c, method)]["worst_band_db"] if (c, method) in index else np.nan for c in cases]
        ax.barh(y, x, height=height, color=colours(j % 10), label=method)
        for yy, xx in zip(y, x):
            if np.isnan(xx):
                ax.text(0.0, yy, " error", va="center", fontsize=6, color=colours(j % 10))
    oracle = [index[(c, "oracle")]["worst_band_db"] if (c, "oracle") in index else np.nan for c in cases]
    ax.scatter(oracle, range(len(cases)), marker="|", s=400, color="black", zorder=3, label="oracle")
    ax.set_yticks(range(len(cases)), cases, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("worst third-octave band of the 50/50 mix (dB, 0 = coherent)")
    ax.axvline(0.0, color="grey", linewidth=0.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def json_rows(rows):
    """``rows`` with non-finite numbers as None, for JSON."""
    return [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()} for row in rows]


def run(cases_dir=None, methods=None, *, aligners=None, cmd=None, only=None, jobs=1, biasnet_seconds=15.0,
        progress=None):
    """Score ``methods`` (and ``aligners``) on every case below ``cases_dir``: one row per case, method and channel.

    Parameters
    ----------
    cases_dir : str or os.PathLike, optional
        A folder of case folders; default :func:`shipped_cases`.
    methods : sequence of str, optional
        From :data:`METHODS`; default :data:`DEFAULT_METHODS` (with
        ``"cmd"`` when ``cmd`` is given), and the ``aligners``.
    aligners : dict, optional
        Your aligners by name: ``f(dry, wet, fs) -> aligned`` (module
        docstring); with ``jobs > 1`` they must be picklable.
    cmd : str, optional
        An external aligner's command template (the ``cmd`` method).
    only : sequence of str, optional
        Case names to run.
    jobs : int
        Cases scored at once, one process each.
    biasnet_seconds : float
        Cap of each BiasNet training (s).
    progress : callable, optional
        ``progress(done, total, case_name)`` after each case.

    Returns
    -------
    list of dict
        Keys :data:`KEYS` and ``expect``; a method that failed has its
        ``error`` and no metrics.
    """
    aligners = dict(aligners or {})
    names = list(methods) if methods else [*DEFAULT_METHODS, *(["cmd"] if cmd else [])]
    names += [name for name in aligners if name not in names]
    unknown = set(names) - set(METHODS) - set(aligners)
    if unknown:
        raise ApftoolsValueError(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    if "cmd" in names and not cmd:
        raise ApftoolsValueError("the cmd method needs a command template (cmd=..., --cmd on the command line)")
    folder = pathlib.Path(shipped_cases() if cases_dir is None else cases_dir)
    cases = find_cases(folder, set(only) if only else None)
    if not cases:
        raise ApftoolsValueError(f"no case folders with dry and wet files in {folder}")
    rows = []
    work = functools.partial(run_case, names=names, biasnet_seconds=biasnet_seconds, cmd=cmd, aligners=aligners)
    with concurrent.futures.ProcessPoolExecutor(jobs) if jobs > 1 else contextlib.nullcontext() as pool:
        for i, case_rows in enumerate(pool.map(work, cases) if pool else map(work, cases)):
            rows += case_rows
            if progress is not None:
                progress(i + 1, len(cases), cases[i].name)
    return rows
