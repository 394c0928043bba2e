"""Threads: the one place apftools limits BLAS threads and runs independent work side by side.

On the 2-core machines apftools targets, OpenBLAS's default threading made
small dot products about 60x slower (measured).  Heavy entry points run
inside :func:`blas_single_thread`.  Independent analyses of long signals
(STFTs, Welch spectra, GCC-PHAT: numpy and scipy.fft release the GIL) run
side by side with :func:`together`: the metrics of 36 s of stereo took
1.02-1.08 s so against 1.68 s one after the other.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import scipy.linalg  # noqa: F401  (loads scipy's own BLAS so the controller sees it)
from threadpoolctl import ThreadpoolController

_CONTROLLER = ThreadpoolController()
_STATE = threading.local()  # .worker: this thread is one of the pool's
_POOL = []  # the pool, made on first use
#: Set (to anything) in the environment, :func:`together` runs its calls one after the other.
SERIAL_VARIABLE = "APFTOOLS_SERIAL"


def blas_single_thread():
    """Context manager limiting every loaded BLAS to one thread (about 8 us to enter)."""
    return _CONTROLLER.limit(limits=1, user_api="blas")


def _workers():
    """Threads beside the caller's: one per core but one (batch's processes already fill the cores)."""
    if os.environ.get(SERIAL_VARIABLE):
        return 0
    return len(os.sched_getaffinity(0)) - 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) - 1


def _as_worker(call):
    _STATE.worker = True
    return call()


def together(*calls):
    """The results of the zero-argument ``calls``, in order, computed side by side.

    The first runs in the calling thread, the rest on a pool of
    :func:`_workers` threads; inside a pool thread, without spare cores or
    with :data:`SERIAL_VARIABLE` set, they run one after the other.  The
    results are those of the calls run alone.  Every call has finished when
    this returns or raises (the first error raised).
    """
    if len(calls) < 2 or getattr(_STATE, "worker", False) or _workers() < 1:
        return [call() for call in calls]
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(_workers(), thread_name_prefix="apftools"))
    futures = [_POOL[0].submit(_as_worker, call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        for future in futures:
            future.exception()  # waits for it, whatever the first call did
    return [first, *(future.result() for future in futures)]
