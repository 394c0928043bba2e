"""Generate ``sweep.json`` and ``sweep-through-eq.flac``: a 2 s sweep recorded through the fixture's EQ.

Run ``python data/make_sweep_fixture.py`` from anywhere (it needs apftools for
the sweep): the files are written next to this script.  The "effect" is the
one that made ``wet.flac`` (``make_fixtures.effect``: four biquads, then 37
samples of latency and a polarity inversion, without the level change), so the
model ``apftools measure`` fits from this recording aligns ``dry.flac`` with
``wet.flac``.
"""

import json
import sys
from pathlib import Path

import numpy as np
import scipy.signal as sig
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_fixtures import FS, LATENCY, POLARITY, effect  # noqa: E402

from apftools.sweep import SweepSpec  # noqa: E402

SECONDS = 2.0


def main():
    spec = SweepSpec(FS, seconds=SECONDS)
    played = spec.signal()[0]
    recorded = POLARITY * np.concatenate([np.zeros(LATENCY), sig.sosfilt(effect(), played)[:-LATENCY]])
    (HERE / "sweep.json").write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    sf.write(HERE / "sweep-through-eq.flac", recorded, FS, subtype="PCM_24")
    print(f"{len(recorded)} samples ({len(recorded) / FS:.1f} s) at {FS} Hz, peak {np.max(np.abs(recorded)):.3f}")


if __name__ == "__main__":
    main()
