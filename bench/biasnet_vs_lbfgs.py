"""BiasNet against L-BFGS on synthetic effects whose true cascade fits the spec.

Each case is a random cascade (:func:`apftools.synthetic.make_pair`: 4 s of
pink noise at 48 kHz through the cascade, 37.4 samples of delay, inverted,
noise 60 dB down, no EQ, so a perfect fit exists), plain and warped, 2 to 16
sections.  Every method runs through :func:`apftools.align` with the same
front end (GCC-PHAT bulk delay, then stage 1's residual delay and polarity;
no allpass can undo a wrong polarity or a bulk delay estimated too long):

* ``L-BFGS (align)``: as shipped (stage-1 phase fit from 32 starts, then
  L-BFGS on the audio);
* ``L-BFGS 1 start``: the same with a single stage-1 start;
* ``BiasNet paper``: ``method="biasnet"``, layer sizes (1024, 512, 256, 128),
  lr 1e-5, trained afresh on the audio (stage 1's cascade is discarded);
* ``BiasNet+polish``: the same, then the stage-2 L-BFGS;
* ``BiasNet small``: layer sizes (64, 64), lr 1e-3.

Metrics on the whole signal (:func:`apftools.metrics.mix_report`): 50/50 mix
deficit, phase error, ESR (the time-domain loss every method minimises,
normalised by the wet's energy).  A run reaches the global optimum when the
mix deficit is above -0.01 dB or the phase error below 1 degree.

Then the time target: :func:`train_biasnet` with its defaults (paper sizes)
for ``"3x2w,1w"`` on 8 s at 48 kHz must finish within 60 s on 2 cores.

Run: ``python bench/biasnet_vs_lbfgs.py [--seeds 3] [--specs 2x2 3x2w,1w 8x2w 16x2w]
[--budget-s 15] [--max-steps 1000]`` (about 8 minutes with the defaults on 2 cores).
"""

import argparse
import statistics
import sys
import time

import numpy as np

from apftools import Cascade, align
from apftools.biasnet import PAPER_LAYER_SIZES, train_biasnet
from apftools.delay import apply_delay
from apftools.metrics import mix_report
from apftools.synthetic import make_pair

FS = 48000
TARGET_S = 60.0
PAPER = {"layer_sizes": PAPER_LAYER_SIZES, "learning_rate": 1e-5}
SMALL = {"layer_sizes": (64, 64), "learning_rate": 1e-3}
METHODS = {
    "L-BFGS (align)": {},
    "L-BFGS 1 start": {"n_starts": 1},
    "BiasNet paper": {"method": "biasnet", "biasnet": PAPER},
    "BiasNet+polish": {"method": "biasnet", "polish": True, "biasnet": PAPER},
    "BiasNet small": {"method": "biasnet", "biasnet": SMALL},
}


def reached_optimum(report):
    return report["mix_deficit_db"] > -0.01 or report["phase_error_deg"] < 1.0


def run_case(spec, seed, args):
    """{method: (mix report, seconds)} for one random effect."""
    pair = make_pair(spec, FS, args.seconds, delay_samples=37.4, polarity=-1, rng=seed)
    budget = {"max_steps": args.max_steps, "max_seconds": args.budget_s}
    rows = {}
    for name, options in METHODS.items():
        options = dict(options)
        if "biasnet" in options:
            options["biasnet"] = {**options["biasnet"], **budget}
        result = align(pair.dry, pair.wet, FS, sections=spec, seed=seed, **options)
        rows[name] = (result.report["after"], result.report["seconds"])
    return rows


def esr_db(report):
    return 10 * np.log10(max(report["esr"], 1e-12))


def print_table(results, specs, n_seeds):
    print(f"\nBiasNet vs L-BFGS: {n_seeds} random effect(s) per spec, 48 kHz, success = deficit > -0.01 dB "
          "or phase error < 1 deg; medians (worst deficit).")
    header = (f"{'spec':9s}{'method':17s}{'success':>9s}{'deficit dB':>12s}{'(worst)':>10s}{'phase deg':>11s}"
              f"{'ESR dB':>9s}{'seconds':>9s}")
    print(header)
    print("-" * len(header))
    for spec in specs + ["all"]:
        for method in METHODS:
            runs = [rows[method] for (s, _), rows in results.items() if spec in (s, "all")]
            reports = [r for r, _ in runs]
            deficits = [r["mix_deficit_db"] for r in reports]
            print(f"{spec:9s}{method:17s}{sum(map(reached_optimum, reports)):>4d}/{len(runs):<4d}"
                  f"{statistics.median(deficits):12.3f}{min(deficits):10.3f}"
                  f"{statistics.median(r['phase_error_deg'] for r in reports):11.2f}"
                  f"{statistics.median(map(esr_db, reports)):9.1f}"
                  f"{statistics.median(s for _, s in runs):9.1f}")
        print()


def time_target():
    pair = make_pair("3x2w,1w", FS, 8.0, delay_samples=37.4, polarity=-1, rng=1234)
    dry = pair.polarity * apply_delay(pair.dry, pair.delay_samples)
    cascade = Cascade("3x2w,1w", FS)
    fit = train_biasnet(cascade, dry, pair.wet, FS, rng=0)
    report = mix_report(cascade.process(fit.theta, dry), pair.wet, FS)
    print(f"time target: train_biasnet defaults (paper sizes, {fit.network_weights_count:,} weights, lr 1e-5), "
          f"3x2w,1w, 8 s at 48 kHz: {fit.seconds:.1f} s for {fit.steps} steps "
          f"({1e3 * fit.seconds / fit.steps:.0f} ms/step), target {TARGET_S:.0f} s: "
          f"{'met' if fit.seconds <= TARGET_S else 'MISSED'}; mix deficit {report['mix_deficit_db']:.3f} dB")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="random effects per spec")
    parser.add_argument("--specs", nargs="+", default=["2x2", "3x2w,1w", "8x2w", "16x2w"])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each synthetic pair (s)")
    parser.add_argument("--budget-s", type=float, default=15.0, help="wall-time budget of each BiasNet training (s)")
    parser.add_argument("--max-steps", type=int, default=1000, help="BiasNet steps at most")
    parser.add_argument("--skip-target", action="store_true", help="skip the 60 s time-target measurement")
    args = parser.parse_args(argv)
    bench_start = time.perf_counter()
    if not args.skip_target:
        time_target()
    results = {}
    for spec in args.specs:
        for seed in range(args.seeds):
            results[spec, seed] = run_case(spec, seed, args)
            rows = results[spec, seed].items()
            line = "  ".join(f"{m}: {r['mix_deficit_db']:.3f} dB {s:.1f} s" for m, (r, s) in rows)
            print(f"{spec} seed {seed}: {line}", flush=True)
    print_table(results, args.specs, args.seeds)
    print(f"bench wall time {time.perf_counter() - bench_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
