"""SIGINT and SIGTERM at several moments of real ``apftools align`` / ``apply`` processes.

Moments are found by watching the file system, not by guessing times: the
staging folder appears before the audio is read, its first file when
writing starts, an ``apply`` output's temporary file while it is written.
Afterwards the process has exited with 128 + the signal, said so in one line
without a traceback, and the output folder holds the earlier run's outputs
unchanged, with no temporary file anywhere.
"""

import csv
import hashlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def _default_signals():
    # as from a terminal: a runner started in the background may pass SIGINT on ignored, and apftools keeps
    # ignored signals ignored (nohup)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def start(*args, preexec_fn=_default_signals):
    return subprocess.Popen([sys.executable, "-m", "apftools", "--quiet", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn)


def wait_for(condition, process, timeout=60.0):
    """Poll every millisecond until ``condition()`` holds; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.001)
    raise AssertionError("the moment never came")


def digest(folder):
    """Every file below ``folder`` (hidden ones too) with its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def staging(parent):
    return [p for p in parent.iterdir() if p.name.startswith(".")]


def assert_interrupted(process, signum):
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("Interrupted by SIG"), stderr


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """An output folder from a complete earlier run (with --plot and --mix) and its digest."""
    out = tmp_path_factory.mktemp("earlier") / "out"
    process = start("align", DATA / "dry.flac", DATA / "wet.flac", "-o", out, "--plot", "--mix", "0.5")
    assert process.wait(timeout=120) == 0, process.stderr.read()
    return out, digest(out)


MOMENTS = {
    # before the staging folder exists: Python is still importing numpy, scipy and numba
    "start-up": lambda out: (lambda: True, 0.4),
    # the staging folder exists: audio is read and the fit runs
    "fitting": lambda out: (lambda: bool(staging(out.parent)), 1.0),
    # the staging folder holds a first output: the files are being written
    "writing": lambda out: (lambda: any(any(s.iterdir()) for s in staging(out.parent) if s.is_dir()), 0.0),
}


@pytest.mark.parametrize("moment, signum", [("start-up", signal.SIGINT), ("fitting", signal.SIGTERM),
                                            ("writing", signal.SIGINT), ("writing", signal.SIGTERM)])
def test_interrupted_align_leaves_the_earlier_outputs_and_no_temporary_file(earlier, tmp_path, moment, signum):
    out = shutil.copytree(earlier[0], tmp_path / "out")
    process = start("align", DATA / "dry.flac", DATA / "wet.flac", "-o", out, "--force", "--plot")
    condition, pause = MOMENTS[moment](out)
    assert wait_for(condition, process), "finished before the moment"
    time.sleep(pause)
    process.send_signal(signum)
    assert_interrupted(process, signum)
    assert digest(out) == earlier[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.fixture(scope="module")
def long_take(tmp_path_factory):
    """60 s of stereo noise: long enough that writing it takes a while."""
    path = tmp_path_factory.mktemp("long") / "take.wav"
    noise = 0.1 * np.random.default_rng(0).standard_normal((60 * 48000, 2))
    soundfile.write(str(path), noise, 48000, subtype="FLOAT")
    return path


def test_an_ignored_signal_stays_ignored(earlier, tmp_path):
    def ignore_hangup():  # what nohup does
        _default_signals()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    target = tmp_path / "applied.wav"
    process = start("apply", earlier[0] / "model.json", DATA / "dry.flac", "-o", target, preexec_fn=ignore_hangup)
    time.sleep(0.5)
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=60) == 0
    assert soundfile.info(str(target)).frames == 8 * 48000


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_apply_leaves_no_output_and_no_temporary_file(earlier, long_take, tmp_path, signum):
    target = tmp_path / "applied.wav"
    process = start("apply", earlier[0] / "model.json", long_take, "-o", target)
    assert wait_for(lambda: any(p.name.startswith(".applied.tmp-") for p in tmp_path.iterdir()), process)
    process.send_signal(signum)
    assert_interrupted(process, signum)
    assert list(tmp_path.iterdir()) == []


def test_a_signal_whose_exception_python_dropped_still_stops_every_commit(tmp_path, monkeypatch):
    # Python drops an exception raised in a weakref callback ("Exception ignored in"): a SIGINT at start-up
    # once landed in importlib's module-lock callback and the run replaced the earlier outputs, status 0.
    # The handler also records the signal, and every commit checks it.
    from apftools import _interrupt
    from apftools.__main__ import main
    from apftools.io import OutputFolder, atomic_write

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.json").write_text("earlier")
    monkeypatch.setattr(_interrupt, "received", signal.SIGINT)
    with pytest.raises(_interrupt.Interrupted):
        with OutputFolder(tmp_path / "out", ["a.json"], overwrite=True) as folder:
            Path(folder.path("a.json")).write_text("this run")
    with pytest.raises(_interrupt.Interrupted):
        with atomic_write(tmp_path / "b.txt") as temporary:
            Path(temporary).write_text("this run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.json"]
    assert (tmp_path / "out" / "a.json").read_text() == "earlier"
    # and the command ends as interrupted, whatever the CLI returned
    monkeypatch.setattr("apftools.cli.main", lambda prog_name: sys.exit(0))
    monkeypatch.setattr(signal, "signal", lambda signum, handler: None)  # leave pytest's handlers alone
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # and its hook, which main() replaces
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 128 + signal.SIGINT


def test_a_dropped_interrupt_prints_no_traceback_and_other_dropped_exceptions_still_do():
    # a SIGTERM once landed in a matplotlib weakref callback: Python printed "Exception ignored in" and its
    # traceback before the run stopped cleanly at its next commit
    code = "\n".join([
        "import weakref",
        "from apftools import _interrupt",
        "_interrupt.install()",
        "class Referent: pass",
        "def drop(error):",
        "    referent = Referent()",
        "    def callback(_): raise error",
        "    ref = weakref.ref(referent, callback)",
        "    del referent  # the callback runs here; Python drops what it raises",
        "drop(_interrupt.Interrupted(15))",
        "drop(ValueError('a real bug'))"])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Interrupted" not in result.stderr and result.stderr.count("Exception ignored") == 1
    assert "ValueError: a real bug" in result.stderr


@pytest.mark.parametrize("moment", ["after the swap", "while removing the old outputs"])
def test_a_signal_while_outputs_are_swapped_leaves_them_replaced_and_nothing_behind(tmp_path, monkeypatch, moment):
    # SIGTERM as align --force swapped its outputs into place once left hidden folders of old outputs behind
    from apftools import _interrupt, io
    from apftools._interrupt import _on_signal

    monkeypatch.setattr(signal, "signal", lambda signum, handler: None)  # leave pytest's handlers alone
    monkeypatch.setattr(_interrupt, "received", None)

    def signalled(function):
        def wrapped(*args, **kwargs):
            result = function(*args, **kwargs) if moment == "after the swap" else None
            _on_signal(signal.SIGTERM, None)  # the handler, as a signal runs it at this moment
            return result if moment == "after the swap" else function(*args, **kwargs)
        return wrapped

    if moment == "after the swap":
        monkeypatch.setattr(io, "_exchange", signalled(io._exchange))
    else:
        monkeypatch.setattr(io.shutil, "rmtree", signalled(shutil.rmtree))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.json").write_text("earlier")
    with pytest.raises(_interrupt.Interrupted):
        with io.OutputFolder(tmp_path / "out", ["a.json"], overwrite=True) as folder:
            Path(folder.path("a.json")).write_text("this run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out" / "a.json").read_text() == "this run"


def test_an_interrupted_batch_commits_no_pair_after_the_signal_and_lists_what_it_did(tmp_path):
    """SIGINT to the batch alone (as `timeout -s INT` sends it) once its first pair is done: the running pairs
    stop and clean up, none is committed afterwards, and summary.csv says which pairs were done."""
    names = [f"take{i}" for i in range(6)]
    rows = ["dry,wet,name"] + [f"{DATA / 'dry.flac'},{DATA / 'wet.flac'},{name}" for name in names]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    process = start("batch", tmp_path / "manifest.csv", "-o", out, "--workers", "2")
    done = lambda: [p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")] if out.exists() else []  # noqa: E501,E731
    assert wait_for(lambda: done(), process, timeout=120)
    process.send_signal(signal.SIGINT)
    at_signal = set(done())
    assert_interrupted(process, signal.SIGINT)
    with open(out / "summary.csv", newline="") as handle:
        statuses = {row["name"]: row["status"] for row in csv.DictReader(handle)}
    assert set(statuses) == set(names) and "interrupted" in statuses.values()
    committed = {name for name, status in statuses.items() if status == "done"}
    assert set(done()) == committed and len(committed - at_signal) <= 1  # a commit under way when it came ends
    assert not staging(out)
    for name in committed:
        assert sorted(p.name for p in (out / name).iterdir()) == ["aligned.wav", "model.json", "report.json"]
