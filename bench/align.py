"""Benchmark of ``apftools align``: wall time of the command and quality on synthetic effects.

1. Wall time of ``apftools align data/dry.flac data/wet.flac`` (8 s, 48 kHz,
   mono, the default spec ``3x2w,1w|2x2w,1w``), start-up included, against
   the 3 s target, beside the start-up alone (``apftools --version``)
   measured in the same run.
2. Quality on random effects whose true cascade fits the spec (random
   3x2w,1w cascade + fractional delay + inverted polarity + 1 dB bell +
   noise at -60 dB, 4 s of pink noise): 50/50 mix deficit, worst third-octave
   band and phase error after delay-and-polarity-only alignment (what
   GCC-PHAT aligners do) and after apftools, and how often the fit reaches
   the optimum (phase error below 1 degree).

Run: ``python bench/align.py [--runs 5] [--cases 20]``.
"""

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from apftools import align
from apftools.align import Alignment, ChannelModel
from apftools.metrics import mix_report
from apftools.synthetic import make_pair

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
TARGET_S = 3.0


def wall(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def bench_cli(runs):
    with tempfile.TemporaryDirectory() as tmp:
        command = ["apftools", "--quiet", "align", str(DATA / "dry.flac"), str(DATA / "wet.flac"),
                   "--force", "-o", tmp]  # the default spec, 3x2w,1w|2x2w,1w
        wall(command)  # warm the file cache and numba's on-disk cache
        align_s = [wall(command) for _ in range(runs)]
        startup_s = [wall(["apftools", "--version"]) for _ in range(runs)]
    align_median, startup_median = statistics.median(align_s), statistics.median(startup_s)
    print(f"apftools align, 8 s 48 kHz mono, default spec ({runs} runs, median)")
    print(f"{'':28s}{'seconds':>9s}{'vs target':>11s}")
    print(f"{'start-up (--version)':28s}{startup_median:9.2f}{startup_median / TARGET_S:10.2f}x")
    print(f"{'align, start-up included':28s}{align_median:9.2f}{align_median / TARGET_S:10.2f}x")
    print(f"target {TARGET_S:.1f} s: {'met' if align_median <= TARGET_S else 'MISSED'}\n")


def bench_quality(cases):
    rows = []
    for seed in range(cases):
        pair = make_pair("3x2w,1w", 48000, 4.0, delay_samples=37.4, polarity=-1, eq_db=1.0, rng=seed)
        start = time.perf_counter()
        result = align(pair.dry, pair.wet, pair.fs, sections="3x2w,1w", seed=seed)
        seconds = time.perf_counter() - start
        group = result.report["groups"][0]
        delay_only = Alignment(pair.fs, [ChannelModel(group["bulk_delay_samples"], 1)])
        gcc_polarity = np.sign(np.sum(delay_only.apply(pair.dry) * pair.wet)) or 1.0
        before = mix_report(gcc_polarity * delay_only.apply(pair.dry), pair.wet, pair.fs)
        rows.append((before, result.report["after"], seconds))
    print(f"quality on {cases} random 3x2w,1w effects (+37.4 samples, inverted, 1 dB bell, noise -60 dB)")
    print(f"{'':36s}{'median':>9s}{'worst':>9s}")
    for name, key, worst in (("mix deficit (dB)", "mix_deficit_db", min), ("worst band (dB)", "worst_band_db", min),
                             ("phase error (deg)", "phase_error_deg", max)):
        for label, index in (("delay+polarity", 0), ("apftools", 1)):
            values = [row[index][key] for row in rows]
            print(f"{name + ', ' + label:36s}{statistics.median(values):9.3f}{worst(values):9.3f}")
    times = [row[2] for row in rows]
    print(f"{'align seconds (in-process)':36s}{statistics.median(times):9.2f}{max(times):9.2f}")
    deficits = [row[1]["mix_deficit_db"] for row in rows]
    phases = [row[1]["phase_error_deg"] for row in rows]
    print(f"mix deficit within 0.01 dB of 0: {sum(d > -0.01 for d in deficits)}/{cases}; "
          f"worst band within 0.1 dB: {sum(r[1]['worst_band_db'] > -0.1 for r in rows)}/{cases}; "
          f"phase error below 1 degree: {sum(p < 1.0 for p in phases)}/{cases}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", type=int, default=20)
    args = parser.parse_args(argv)
    bench_cli(args.runs)
    bench_quality(args.cases)


if __name__ == "__main__":
    sys.exit(main())
