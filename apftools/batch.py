"""Align many dry/wet pairs: a manifest, resumable, on local processes or a Dask cluster.

Every pair is aligned exactly as ``apftools align`` would align it alone
(:func:`apftools.files.align_files`) into ``OUTDIR/<name>/``.  A pair whose
folder already holds complete outputs of the same configuration (options,
input paths, sizes and modification times, apftools version; recorded in its
report.json as ``batch_config``) is skipped unless ``force``.  A failure
(unreadable file, rate mismatch, silence) is recorded in that pair's row and
the batch goes on.  Each pair's outputs appear together or not at all, so
an interrupted batch restarted continues where it stopped.  A signal (or
``KeyboardInterrupt``) starts no further pair and stops the running ones,
which clean up as ``align`` does; summary.csv then lists the pairs done
and the rest as ``interrupted``.

Engines: a local :class:`concurrent.futures.ProcessPoolExecutor` (spawned
workers, BLAS and OpenMP pinned to one thread each; the pairs of a pool a
dead worker broke run again one at a time, and one whose worker dies again is
reported failed), or a Dask distributed ``Client``
(which retries tasks of lost workers itself).  Tasks carry paths and
options, never audio.
"""

import csv
import glob
import hashlib
import json
import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace

from . import __version__, _interrupt
from .errors import ApftoolsError, ApftoolsValueError
from .files import AlignOptions, align_files

#: Columns of summary.csv, in order (summary.json holds the same rows).
COLUMNS = ("name", "status", "delay_samples", "polarity", "deficit_before_db", "deficit_after_db",
           "worst_band_before_db", "worst_band_after_db", "warnings", "seconds", "error")
#: The ``causal`` column's words for yes and no.
CAUSAL_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _causal(value):
    try:
        return CAUSAL_WORDS[value.strip().lower()]
    except KeyError:
        raise ApftoolsValueError(f"causal={value!r}: expected one of {', '.join(CAUSAL_WORDS)}") from None


#: Manifest columns besides dry and wet that a row may set for its pair.
PAIR_OPTIONS = {"sections": str, "causal": _causal}
#: Threads each local worker's BLAS and OpenMP may use (one per process: small products ran 60x slower with more).
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class Pair:
    """One job: files, a folder name, and the options the manifest sets for it (over the batch's)."""

    name: str
    dry: str
    wet: str
    options: dict = field(default_factory=dict)


def read_manifest(path):
    """The pairs of a CSV manifest: columns ``dry,wet[,name][,sections][,causal]``.

    Relative paths are resolved against the manifest's folder; ``name``
    defaults to the dry file's stem and must be unique.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except UnicodeDecodeError:
        raise ApftoolsValueError(f"{path}: not a CSV manifest (not UTF-8 text; an audio file?); give a manifest "
                                 "or two glob patterns, dry then wet") from None
    if not rows or not {"dry", "wet"} <= set(rows[0]):
        raise ApftoolsValueError(f"{path}: a manifest needs a header with at least 'dry' and 'wet' columns and one "
                                 "row per pair")
    unknown = set(rows[0]) - {"dry", "wet", "name", *PAIR_OPTIONS}
    if unknown:
        raise ApftoolsValueError(f"{path}: unknown column(s) {sorted(unknown)}; expected dry, wet, name, "
                                 f"{', '.join(PAIR_OPTIONS)}")
    pairs = []
    for line, row in enumerate(rows, start=2):
        if not row["dry"] or not row["wet"]:
            raise ApftoolsValueError(f"{path}, line {line}: dry and wet are both needed")
        dry, wet = (os.path.join(folder, row[k]) for k in ("dry", "wet"))
        try:
            options = {k: PAIR_OPTIONS[k](row[k]) for k in PAIR_OPTIONS if row.get(k)}
        except ApftoolsValueError as error:
            raise ApftoolsValueError(f"{path}, line {line}: {error}") from None
        pairs.append(Pair(row.get("name") or os.path.splitext(os.path.basename(dry))[0], dry, wet, options))
    return _unique(pairs, path)


def pairs_from_globs(dry_pattern, wet_pattern):
    """Pairs of files with the same name (stem) matched by the two glob patterns; unmatched files are an error."""
    dry = {os.path.splitext(os.path.basename(p))[0]: p for p in sorted(glob.glob(dry_pattern))}
    wet = {os.path.splitext(os.path.basename(p))[0]: p for p in sorted(glob.glob(wet_pattern))}
    if not dry or set(dry) != set(wet):
        raise ApftoolsValueError(f"the patterns must match files of the same names: {dry_pattern!r} matches "
                                 f"{sorted(dry) or 'nothing'}, {wet_pattern!r} {sorted(wet) or 'nothing'}")
    return [Pair(name, dry[name], wet[name]) for name in sorted(dry)]


def _unique(pairs, where):
    names = [p.name for p in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ApftoolsValueError(f"{where}: pair names must be unique (they name the output folders), "
                                 f"repeated: {twice}")
    return pairs


def _config(pair, options):
    """What makes a pair's outputs reusable: options, inputs (path, size, modification time), version."""
    files = [(os.path.abspath(p), os.path.getsize(p), os.stat(p).st_mtime_ns) if os.path.exists(p) else (p,)
             for p in (pair.dry, pair.wet)]
    text = json.dumps({"options": asdict(options), "inputs": files, "apftools": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _done_before(folder, config, options):
    try:
        with open(os.path.join(folder, "report.json"), encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        return None
    complete = all(os.path.exists(os.path.join(folder, name)) for name in options.outputs())
    return report if complete and report.get("batch_config") == config else None


def _row(name, status, started, summary=None, error=None):
    row = dict.fromkeys(COLUMNS)
    row.update(name=name, status=status, seconds=time.perf_counter() - started, error=error)
    if summary is not None:
        before, after = summary["before"], summary["after"]
        row.update(delay_samples=summary["groups"][0]["delay_samples"], polarity=summary["groups"][0]["polarity"],
                   deficit_before_db=before["mix_deficit_db"], deficit_after_db=after["mix_deficit_db"],
                   worst_band_before_db=before["worst_band_db"], worst_band_after_db=after["worst_band_db"],
                   warnings=" | ".join(summary["warnings"]))
    return row


def align_pair(pair, outdir, options, force=False):
    """Align one pair into ``outdir/<name>`` (or skip it, its outputs complete); its summary row, never raising.

    The task every engine runs.  Errors of the pair itself (apftools' and
    the file system's) become the row's ``error``; anything else is a bug
    and propagates.
    """
    started = time.perf_counter()
    options = replace(options, **pair.options)
    folder = os.path.join(outdir, pair.name)
    try:
        with _interrupt.raising():
            config = _config(pair, options)
            earlier = None if force else _done_before(folder, config, options)
            if earlier is not None:
                return _row(pair.name, "skipped", started, earlier["summary"])
            summary = align_files(pair.dry, pair.wet, folder, options, overwrite=True,
                                  extra={"batch_config": config})
            return _row(pair.name, "done", started, summary)
    except (ApftoolsError, OSError) as error:
        return _row(pair.name, "failed", started, error=str(error))


def _cut_off(pair, outdir, options, since):
    """The row of a pair whose result a signal cut off: done (or skipped) if its outputs are complete all the same.

    A signal can arrive in a worker after it committed the pair's outputs
    and before it returned their row.
    """
    options = replace(options, **pair.options)
    folder = os.path.join(outdir, pair.name)
    report = _done_before(folder, _config(pair, options), options)
    if report is None:
        return _row(pair.name, "interrupted", time.perf_counter())
    done = os.path.getmtime(os.path.join(folder, "report.json")) >= since
    return _row(pair.name, "done" if done else "skipped", time.perf_counter(), report["summary"])


def _start_worker(workers):
    from threadpoolctl import threadpool_limits

    from ._threads import SERIAL_VARIABLE

    _interrupt.install()
    _interrupt.deferring = 1  # idle, a signal only records itself; align_pair takes it (_interrupt.raising)
    threadpool_limits(1)
    if workers > 1:  # the processes fill the cores already
        os.environ[SERIAL_VARIABLE] = "1"


def _pool(workers):
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(workers,))


def _run_local(tasks, workers, report, task=align_pair):
    """Run ``task`` (:func:`align_pair`) on every argument tuple of ``tasks`` in spawned processes.

    A dead worker breaks the whole pool: the pairs that had not finished are
    run again one at a time, each in a fresh process, so the one whose
    worker dies again is reported failed without taking the others with it.
    """
    for variable in _THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")  # inherited by the spawned workers, before their numpy loads
    unfinished = []
    with _pool(workers) as pool:
        futures = {pool.submit(task, *arguments): arguments for arguments in tasks}
        try:
            for future in as_completed(futures):
                try:
                    report(future.result())
                except BrokenProcessPool:
                    unfinished.append(futures[future])
        except BaseException:  # a signal, here or in a worker: stop every worker's pair, keep the finished ones
            _stop(pool, futures, report)
            raise
    for arguments in unfinished:
        with _pool(1) as pool:
            try:
                report(pool.submit(task, *arguments).result())
            except BrokenProcessPool:
                report(_row(arguments[0].name, "failed", time.perf_counter(),
                            error="its worker process died (twice: alone, after its pool broke)"))


def _stop(pool, futures, report):
    """Start no pair, pass the workers a SIGINT (they clean up as align does), report the pairs that finished."""
    for future in futures:
        future.cancel()
    for process in list(pool._processes.values()):  # the executor has no public way to signal its workers
        try:
            os.kill(process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    pool.shutdown(wait=True)
    for future in futures:
        if future.done() and not future.cancelled() and future.exception() is None:
            report(future.result())


def _run_dask(tasks, client, report):
    from distributed import as_completed as dask_completed

    futures = [client.submit(align_pair, *task, pure=False) for task in tasks]
    try:
        for future in dask_completed(futures):
            report(future.result())
    except BaseException:
        client.cancel(futures)
        raise


def align_many(pairs, outdir, *, workers=None, client=None, force=False, progress=None, **align_options):
    """Align every pair into ``outdir``; write ``summary.csv`` and ``summary.json``; return the rows.

    Parameters
    ----------
    pairs : sequence of Pair
        From :func:`read_manifest` or :func:`pairs_from_globs`.
    outdir : str or os.PathLike
    workers : int, optional
        Local processes (default: the CPU count); 1 runs in this process.
    client : distributed.Client, optional
        Run the pairs on that Dask cluster instead.
    force : bool
        Realign pairs whose outputs are complete.
    progress : callable, optional
        ``progress(row)`` after every pair.
    **align_options
        :class:`~apftools.files.AlignOptions` fields for every pair (a
        manifest's columns override them per pair).

    Returns
    -------
    list of dict
        One row per pair in manifest order, keys :data:`COLUMNS`.
    """
    from .io import atomic_write, write_json

    options = AlignOptions(**align_options)
    outdir = os.fspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    tasks = [(pair, outdir, options, force) for pair in _unique(list(pairs), "pairs")]
    rows = {}
    started = time.time()

    def report(row):
        if progress is not None and row["name"] not in rows:
            progress(row)
        rows[row["name"]] = row

    def summarise():
        ordered = [rows.get(pair.name) or _cut_off(pair, outdir, options, started) for pair, *_ in tasks]
        write_json(os.path.join(outdir, "summary.json"), ordered, overwrite=True)
        with atomic_write(os.path.join(outdir, "summary.csv"), overwrite=True) as temporary:
            with open(temporary, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, COLUMNS)
                writer.writeheader()
                writer.writerows(ordered)
        return ordered

    try:
        if client is not None:
            _run_dask(tasks, client, report)
        elif (workers or os.cpu_count() or 1) == 1:
            for task in tasks:
                report(align_pair(*task))
        else:
            _run_local(tasks, workers or os.cpu_count(), report)
    except (_interrupt.Interrupted, KeyboardInterrupt):
        with _interrupt.suspended():  # the record of what was done is written before the run stops
            summarise()
        raise
    return summarise()


def aggregate(rows):
    """One line: how many pairs were done, failed, skipped (interrupted), and the median lift of the worst band."""
    counts = {status: sum(r["status"] == status for r in rows) for status in ("done", "failed", "skipped")}
    lifts = sorted(r["worst_band_after_db"] - r["worst_band_before_db"] for r in rows
                   if r["status"] != "failed" and r["worst_band_after_db"] is not None
                   and r["worst_band_before_db"] is not None)
    median = f"{lifts[len(lifts) // 2]:+.2f} dB" if lifts else "n/a"
    interrupted = sum(r["status"] == "interrupted" for r in rows)
    return (f"{len(rows)} pair(s): {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped"
            f"{f', {interrupted} interrupted' if interrupted else ''}; median change of the worst band {median}")
