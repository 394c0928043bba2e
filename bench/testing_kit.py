"""How long the testing kit takes: a correct float64 biquad cascade (scipy's sosfilt) under 1000 hypothesis examples.

Target (issue 33): under 10 s on the 2-core machine for the stability, impulse-decay and BIBO assertions on
``stable_sos()`` filters and ``signals()``.  Prints the wall time; exit status 0 whether or not it is met.

Usage: ``python bench/testing_kit.py [N_EXAMPLES]``.
"""

import sys
import time

import scipy.signal
from hypothesis import HealthCheck, given, settings

from apftools.testing import assert_bibo, assert_impulse_decays, assert_stable
from apftools.testing.strategies import signals, stable_sos


def main(n_examples=1000):
    @settings(max_examples=n_examples, database=None, derandomize=True, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(stable_sos(n_sections=(1, 8)), signals())
    def test_my_cascade(sos, x):
        def process(signal):
            return scipy.signal.sosfilt(sos, signal)

        assert_stable(sos, margin=1e-3)
        assert_impulse_decays(sos, process)
        assert_bibo(sos, process)
        assert process(x).shape == x.shape

    start = time.perf_counter()
    test_my_cascade()
    seconds = time.perf_counter() - start
    print(f"{n_examples} examples of a float64 cascade of 1 to 8 biquads: {seconds:.1f} s (target: under 10 s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
