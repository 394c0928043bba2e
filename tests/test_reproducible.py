"""The same model on every machine and seed: align under other CPU kernels, each in its own process.

Another machine differs from this one in its BLAS kernel (``OPENBLAS_CORETYPE``, which OpenBLAS picks for
the CPU) and in the SIMD code numpy dispatches to (``NPY_DISABLE_CPU_FEATURES`` turns this machine's AVX-512
code off, as on an AVX2 machine). Both change the last bits of numpy's arithmetic; the fit must not follow
them (:mod:`apftools._fitkernel`, :func:`apftools.fit.settle`). The fit's own kernels run in SIMD lanes as wide
as the CPU has: ``NUMBA_CPU_NAME=generic`` compiles them for any x86-64 (SSE2, two lanes where this machine has
eight), in a cache of its own. Tolerances: the issue's targets for the
same answer (delays within 0.1 sample, overall deficits within 0.01 dB, worst bands within 0.05 dB).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
#: The shipped pair (its EQ inverts, which the cascade can imitate) and the two hardest real cases: a
#: high-order cabinet (the larger spec is fitted too) and a mono dry into a stereo effect (one model a channel).
CASES = [(DATA / "dry.flac", DATA / "wet.flac"),
         *((DATA / "real" / name / "dry.flac", DATA / "real" / name / "wet.flac")
           for name in ("caps-cabinet-guitar-48k", "mono-into-stereo-wider-guitar-48k"))]
#: This machine's numpy AVX-512 code off (numpy 2 names its feature groups X86_V4 and the AVX512_* above them).
NO_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR AVX512_SKX AVX512_CLX AVX512_CNL"
MACHINES = {"Haswell": {"OPENBLAS_CORETYPE": "Haswell"}, "Prescott": {"OPENBLAS_CORETYPE": "Prescott"},
            "Sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge"}, "no AVX-512": {"NPY_DISABLE_CPU_FEATURES": NO_AVX512},
            "generic x86-64 kernels": {"NUMBA_CPU_NAME": "generic"}}

SCRIPT = """
import json, sys
from apftools import align
from apftools.io import read_audio
out = []
for dry_path, wet_path, seed in json.loads(sys.argv[1]):
    dry, fs = read_audio(dry_path)
    wet, _ = read_audio(wet_path)
    result = align(dry, wet, fs, seed=seed)
    out.append({"delays": [m.delay_samples for m in result.models], "polarities": [m.polarity for m in result.models],
                "deficit": result.report["after"]["mix_deficit_db"], "worst": result.report["after"]["worst_band_db"]})
print(json.dumps(out))
"""


def run(environment, jobs):
    env = {key: value for key, value in os.environ.items()
           if key not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES", "NUMBA_CPU_NAME")}
    env.update(environment)
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(jobs)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def reference():
    return run({}, [(str(d), str(w), 0) for d, w in CASES])


def assert_same(result, expected):
    assert result["polarities"] == expected["polarities"]
    assert result["delays"] == pytest.approx(expected["delays"], abs=0.1)
    assert result["deficit"] == pytest.approx(expected["deficit"], abs=0.01)
    assert result["worst"] == pytest.approx(expected["worst"], abs=0.05)


@pytest.mark.parametrize("machine", MACHINES)
def test_align_gives_the_same_model_under_every_cpu_kernel(machine, reference):
    for result, expected in zip(run(MACHINES[machine], [(str(d), str(w), 0) for d, w in CASES]), reference):
        assert_same(result, expected)


def test_align_gives_the_same_model_with_every_seed(reference):
    jobs = [(str(d), str(w), seed) for d, w in CASES for seed in (1, 4)]
    for i, result in enumerate(run({}, jobs)):
        assert_same(result, reference[i // 2])
