"""Batch speed-up: the same manifest of 8 s pairs with ``--workers 1`` and ``--workers 2``, in one run.

Every pair is the shipped fixture (``data/dry.flac``, ``data/wet.flac``) under
its own name, so every pair does the same work.  Prints both wall times and
their ratio (target, issue 15: at least 1.8 on the 2-core machine for 32
pairs), and checks that both runs wrote identical models.

With ``--short N``: N pairs of 0.5 s (synthetic, seeded) with ``--workers 2``,
and the scheduling overhead: the share of the two workers' wall time not
spent inside the pairs' own alignment (target: under 5%, for 1 000 pairs).

Usage: ``python bench/batch.py [N_PAIRS]`` (default 32) or ``python bench/batch.py --short N``.
"""

import json
import os
import pathlib
import sys
import tempfile
import time

from apftools.batch import aggregate, align_many, read_manifest

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def short(n):
    import numpy as np
    import soundfile

    from apftools.synthetic import make_pair

    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        lines = ["dry,wet,name,sections"]
        for i in range(n):
            pair = make_pair("2w", 48000, 0.5, delay_samples=5.0, rng=i)
            soundfile.write(folder / f"dry{i}.wav", np.asarray(pair.dry).T, 48000, subtype="FLOAT")
            soundfile.write(folder / f"wet{i}.wav", np.asarray(pair.wet).T, 48000, subtype="FLOAT")
            lines.append(f"dry{i}.wav,wet{i}.wav,pair{i:04d},2w")
        (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
        started = time.perf_counter()
        rows = align_many(read_manifest(folder / "manifest.csv"), folder / "out", workers=2)
        wall = time.perf_counter() - started
    inside = sum(row["seconds"] for row in rows)
    print(f"{n} pairs of 0.5 s, --workers 2: {wall:.1f} s wall, {inside:.1f} s inside the pairs; "
          f"scheduling overhead {100 * (1 - inside / (2 * wall)):.1f}% (target < 5%); {aggregate(rows)}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--short"]:
        return short(int(argv[1]))
    n = int(argv[0]) if argv else 32
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        lines = ["dry,wet,name"]
        for i in range(n):
            for kind in ("dry", "wet"):
                os.symlink(DATA / f"{kind}.flac", folder / f"{kind}{i}.flac")
            lines.append(f"dry{i}.flac,wet{i}.flac,pair{i:03d}")
        (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
        pairs = read_manifest(folder / "manifest.csv")
        seconds = {}
        for workers in (1, 2):
            started = time.perf_counter()
            rows = align_many(pairs, folder / f"out{workers}", workers=workers)
            seconds[workers] = time.perf_counter() - started
            print(f"--workers {workers}: {seconds[workers]:.1f} s; {aggregate(rows)}", flush=True)
        same = all(json.loads((folder / "out1" / p.name / "model.json").read_text())
                   == json.loads((folder / "out2" / p.name / "model.json").read_text()) for p in pairs)
        print(f"{n} pairs of 8 s: speed-up with 2 workers {seconds[1] / seconds[2]:.2f} (target >= 1.8); "
              f"models identical between the runs: {same}")


if __name__ == "__main__":
    main()
