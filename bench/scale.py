"""Start-up, speed and memory of the command line, as ratios to baselines measured in the same run.

Every figure is a whole process (``subprocess`` + ``os.wait4``: wall time and
peak resident memory), the median of ``--repeats`` runs, BLAS and OpenMP
pinned to one thread; the 8 s aligns also run alternately with the imports
(at least 9 pairs), and the 10-minute align with the 8 s one (at least 5),
and the median of those ratios is printed beside the ratio of the medians:
on a noisy machine it is the steadier figure.  The
targets:

* ``apftools --version`` at most 1.3x ``python -c "import click"``;
* ``apftools align`` on an 8 s mono 48 kHz pair at most 2.0x (the shipped
  fixture) and 2.3x (a real-effect pair of ``data/real`` tiled to 8 s)
  ``python -c "import numpy, scipy.signal, scipy.optimize, soundfile"``;
* on a 10-minute stereo 48 kHz pair (the fixture tiled, the second channel
  offset by 3 s; 32-bit float WAV): ``align`` at most 4x the 8 s align and at
  most 600 MB peak; ``apply`` at most 2x reading and writing the same files
  with soundfile, and at most 300 MB;
* ``--hour``: the same on a 1-hour stereo pair (2.8 GB of WAV), memory
  within the same bounds.

Also, with no target: the 8 s fixture's align with its phase fit replaced
by a stub that returns at once (:data:`FIT_STUB`), the floor that the fit
adds to.

Usage::

    python bench/scale.py             # about two minutes on 2 cores
    python bench/scale.py --hour      # adds the 1-hour pair (writes 2.8 GB to a temporary folder)

A benchmark, not a test: exit status 0 whether or not the targets are met.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "data")
REAL = os.path.join(ROOT, "data", "real", "caps-cabinet-guitar-48k")
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
APFTOOLS = [sys.executable, "-m", "apftools"]
#: The import floor the 8 s aligns are measured against.
IMPORTS = [sys.executable, "-c", "import numpy, scipy.signal, scipy.optimize, soundfile"]
#: ``apftools`` with :func:`apftools.fit.fit_frequency` returning random parameters at once, at a phase loss of 0
#: (so that, as on the fixture, no larger spec is fitted): everything align does but the fit.
FIT_STUB = [sys.executable, "-c", "\n".join([
    "import sys, apftools.fit as fit",
    "def stub(cascade, tf, *, anticausal=None, **options):",
    "    return fit.FrequencyFit(cascade.init(0), 0.0, 1, 0.0, [], anticausal and anticausal.init(0))",
    "fit.fit_frequency = stub",
    "from apftools.__main__ import main",
    "main()"])]


def measure(command, repeats):
    """Median wall time (s) and largest peak resident memory (MB) of ``command`` over ``repeats`` runs."""
    times, peaks = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        times.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)
        if status != 0:
            raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
    return statistics.median(times), max(peaks)


def measure_paired(command, baseline, repeats):
    """``command`` and ``baseline`` run alternately ``repeats`` times: the command's median wall time (s), largest
    peak (MB), and the median of the pairs' ratios, which the machine's drift moves far less than two medians."""
    times, peaks, ratios = [], [], []
    for _ in range(repeats):
        base, _ = measure(baseline, 1)
        wall, peak = measure(command, 1)
        times.append(wall), peaks.append(peak), ratios.append(wall / base)
    return statistics.median(times), max(peaks), statistics.median(ratios)


def tiled_pair(folder, source, seconds, channels, name):
    """``source``'s dry and wet repeated to ``seconds``, ``channels`` channels (each offset by 3 s), float WAV."""
    paths = []
    for part in ("dry", "wet"):
        data, fs = soundfile.read(os.path.join(source, f"{part}.flac"), always_2d=True)
        n = int(seconds * fs)
        path = os.path.join(folder, f"{name}-{part}.wav")
        with soundfile.SoundFile(path, "w", fs, channels, "FLOAT") as out:
            for start in range(0, n, 1 << 20):
                index = np.arange(start, min(start + (1 << 20), n))
                out.write(np.stack([data[(index + 3 * fs * c) % len(data), 0] for c in range(channels)], axis=1))
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hour", action="store_true", help="also the 1-hour stereo pair")
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="apftools-scale-")
    rows, ratios = {}, {}
    try:
        def run(label, command, repeats=args.repeats):
            rows[label] = measure(command, repeats)
            print(f"{label:34s} {rows[label][0]:7.2f} s  {rows[label][1]:7.0f} MB", flush=True)

        def align_command(dry, wet, command=APFTOOLS):
            return command + ["align", dry, wet, "-o", os.path.join(folder, "out"), "--force", "-q"]

        def paired(label, command, baseline, name, repeats):
            *rows[label], ratios[label] = measure_paired(command, baseline, repeats)
            print(f"{label:34s} {rows[label][0]:7.2f} s  {rows[label][1]:7.0f} MB  (paired with {name}: "
                  f"{ratios[label]:.2f})", flush=True)

        fixture_pair = (os.path.join(FIXTURE, "dry.flac"), os.path.join(FIXTURE, "wet.flac"))
        fixture = align_command(*fixture_pair)
        at_least = max(args.repeats, 9)
        quick = max(args.repeats, 15)  # a tenth of a second: more runs to see past the noise
        run("python -c 'import click'", [sys.executable, "-c", "import click"], quick)
        run("import numpy, scipy, soundfile", IMPORTS)
        run("apftools --version", APFTOOLS + ["--version"], quick)
        paired("align 8 s fixture", fixture, IMPORTS, "the imports", at_least)
        paired("align 8 s fixture, fit stubbed", align_command(*fixture_pair, FIT_STUB), IMPORTS, "the imports",
               at_least)
        paired("align 8 s real (cabinet)", align_command(*tiled_pair(folder, REAL, 8, 1, "real8")), IMPORTS,
               "the imports", at_least)
        lengths = [("10 min", 600)] + [("1 hour", 3600)] * args.hour
        for name, seconds in lengths:
            dry, wet = tiled_pair(folder, FIXTURE, seconds, 2, name.replace(" ", ""))
            paired(f"align {name} stereo", align_command(dry, wet), fixture, "the 8 s align",
                   max(args.repeats, 5) if seconds <= 600 else 1)
            model = os.path.join(folder, "out", "model.json")
            out = os.path.join(folder, "applied.wav")
            run(f"apply {name} stereo", APFTOOLS + ["apply", model, dry, "-o", out, "--force", "-q"], 1)
            run(f"soundfile read+write {name}", [sys.executable, "-c", "import soundfile, sys; d, fs = soundfile."
                                                 "read(sys.argv[1]); soundfile.write(sys.argv[2], d, fs, 'FLOAT')",
                                                 dry, out], 1)
            os.remove(dry), os.remove(wet), os.remove(out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def ratio(a, b):
        return rows[a][0] / rows[b][0]

    print("\ntargets (ratios of wall times measured above)")
    start_up = ratio("apftools --version", "python -c 'import click'")
    print(f"  --version / import click                 {start_up:5.2f}  (<= 1.3)")
    for case, target in (("align 8 s fixture", "<= 2.0"), ("align 8 s real (cabinet)", "<= 2.3"),
                         ("align 8 s fixture, fit stubbed", "no target: the floor")):
        print(f"  {case + ' / imports':40s} {ratio(case, 'import numpy, scipy, soundfile'):5.2f}, paired "
              f"{ratios[case]:5.2f}  ({target})")
    for name, _ in lengths:
        print(f"  align {name} / align 8 s fixture{' ' * (10 - len(name))}     "
              f"{ratio(f'align {name} stereo', 'align 8 s fixture'):5.2f}, paired {ratios[f'align {name} stereo']:5.2f}"
              "  (<= 4);  "
              f"peak {rows[f'align {name} stereo'][1]:.0f} MB (<= 600)")
        print(f"  apply {name} / soundfile read+write{' ' * (7 - len(name))}     "
              f"{ratio(f'apply {name} stereo', f'soundfile read+write {name}'):5.2f}  (<= 2);  "
              f"peak {rows[f'apply {name} stereo'][1]:.0f} MB (<= 300)")


if __name__ == "__main__":
    main()
