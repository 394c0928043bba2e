"""Measure real plugins with a sweep and judge the model on the plugin's music: against ``align`` on the music.

For each case of the real-effects set (``bench/make_cases.py``; its dry and
wet must already be rendered into CASES_DIR), the 10 s default sweep at the
case's rate is played through the case's own effect (the same host and
settings as ``make_cases.py`` renders the music with), measured
(:func:`apftools.sweep.measure`) and fitted (:func:`apftools.sweep.fit_models`);
the model is applied to the case's dry and scored against its wet, band by
band, beside ``apftools.align`` run on the music itself.  Prints a Markdown
table: the worst third-octave band of the 50/50 mix (dB) unaligned, after
``align``, after the sweep's model, and the seconds each took.

Target (issue 14): the sweep's model within 0.2 dB of ``align``'s worst band
(or better) on an EQ, a cabinet, a linear-phase FIR EQ and a
polarity-inverting amp; ``measure`` on the 10 s sweep faster than ``align``
on 8 s of music.

Usage: ``python bench/sweep.py CASES_DIR [CASE ...]`` (needs the plugins of
``bench/README.md``).
"""

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_cases  # noqa: E402  (the effects and their hosts)

from apftools import align  # noqa: E402
from apftools._threads import blas_single_thread  # noqa: E402
from apftools.io import read_audio  # noqa: E402
from apftools.metrics import band_mix_deficit_db  # noqa: E402
from apftools.sweep import SweepSpec, fit_models, measure  # noqa: E402

#: An EQ, a cabinet, the 6144-tap linear-phase FIR EQ, the polarity-inverting tube amp, and two more EQs.
DEFAULT_CASES = ("sox-eq-chain-guitar-48k", "caps-cabinet-guitar-48k", "lsp-fir-eq-guitar-48k",
                 "zam-tube-guitar-48k", "caps-tonestack-guitar-44k", "zam-eq2-piano-48k")


def worst_band(aligned, wet, fs):
    return float(np.nanmin(band_mix_deficit_db(aligned, wet, fs, windows=True)[1]))


def run(cases_dir, name):
    recipe = make_cases.CASES[name]
    dry, fs = read_audio(cases_dir / name / "dry.wav")
    wet, _ = read_audio(cases_dir / name / "wet.wav")
    spec = SweepSpec(fs)
    padded = np.concatenate([np.zeros((1, int(make_cases.PREROLL_S * fs))), spec.signal()], axis=1)
    with tempfile.TemporaryDirectory() as folder:
        recorded = make_cases._process(recipe["fx"], padded, fs, pathlib.Path(folder))
    recorded = recorded[:, int(make_cases.PREROLL_S * fs):]
    started = time.perf_counter()
    measurements = measure(spec, recorded, fs)
    model, fits = fit_models(spec, measurements)
    measure_s = time.perf_counter() - started
    started = time.perf_counter()
    music = align(dry, wet, fs)
    align_s = time.perf_counter() - started
    return {"case": name, "raw": worst_band(np.broadcast_to(dry, wet.shape), wet, fs),
            "align": worst_band(music.apply(dry), wet, fs), "sweep": worst_band(model.apply(dry), wet, fs),
            "align_s": align_s, "measure_s": measure_s, "latency": measurements[0].latency_samples,
            "polarity": measurements[0].polarity, "thd": measurements[0].thd_percent,
            "fit_deg": fits[0]["phase_error_deg"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases_dir", type=pathlib.Path, help="the rendered real-effects cases (bench/make_cases.py)")
    parser.add_argument("cases", nargs="*", metavar="CASE", help=f"case names (default: {', '.join(DEFAULT_CASES)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.cases if name not in make_cases.CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; the cases are {', '.join(sorted(make_cases.CASES))}")
    cases_dir, names = args.cases_dir, args.cases or DEFAULT_CASES
    print("| case | raw | align | sweep model | sweep - align | latency (samples) | polarity | THD % "
          "| fit error (deg) | align s | measure s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    with blas_single_thread():
        for name in names:
            row = run(cases_dir, name)
            rows.append(row)
            print(f"| {name} | {row['raw']:.2f} | {row['align']:.2f} | {row['sweep']:.2f} | "
                  f"{row['sweep'] - row['align']:+.2f} | {row['latency']:.2f} | {row['polarity']:+d} | "
                  f"{row['thd']:.3g} | {row['fit_deg']:.1f} | {row['align_s']:.1f} | {row['measure_s']:.1f} |",
                  flush=True)
    within = sum(r["sweep"] >= r["align"] - 0.2 for r in rows)
    print(f"\nsweep model within 0.2 dB of align's worst band (or better): {within}/{len(rows)}; "
          f"measure faster than align: {sum(r['measure_s'] < r['align_s'] for r in rows)}/{len(rows)}")


if __name__ == "__main__":
    main()
