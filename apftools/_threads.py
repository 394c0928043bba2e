"""Threads: the one place apftools limits BLAS threads and runs independent work side by side.

On the 2-core machines apftools targets, OpenBLAS's default threading made
small dot products about 60x slower (measured).  Heavy entry points run
inside :func:`blas_single_thread`.  Independent analyses of long signals
(STFTs, Welch spectra, GCC-PHAT: numpy and scipy.fft release the GIL) run
side by side with :func:`together`: the metrics of 36 s of stereo took
1.02-1.08 s so against 1.68 s one after the other.
"""

import os
import queue
import threading

import scipy.linalg  # noqa: F401  (loads scipy's own BLAS so the controller sees it)
from threadpoolctl import ThreadpoolController

_CONTROLLER = ThreadpoolController()
_STATE = threading.local()  # .worker: this thread is one of the pool's
_TASKS = queue.SimpleQueue()
_STARTED = []  # the pool's threads, started on first use
_START_LOCK = threading.Lock()
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


class _Task:
    def __init__(self, call):
        self.call, self.done, self.result, self.error = call, threading.Event(), None, None

    def run(self):
        try:
            self.result = self.call()
        except BaseException as error:  # handed to the caller, who raises it
            self.error = error
        finally:
            self.done.set()


def _serve():
    _STATE.worker = True
    while True:
        _TASKS.get().run()


def _wait(tasks):
    """Wait for every task, whatever the first call did: also through a signal's exception, raised afterwards.

    The main thread never leaves a task running: a daemon thread still in
    compiled code when the interpreter exits can abort the process.
    """
    interrupted = None
    for task in tasks:
        while not task.done.is_set():
            try:
                task.done.wait()
            except BaseException as error:  # a signal's exception (apftools._interrupt) while waiting
                interrupted = interrupted or error
    if interrupted is not None:
        raise interrupted


def together(*calls):
    """The results of the zero-argument ``calls``, in order, computed side by side.

    The first runs in the calling thread, the rest on :func:`_workers`
    threads; inside one of those, without spare cores or with
    :data:`SERIAL_VARIABLE` set, they run one after the other.  The results
    are those of the calls run alone.  Every call has finished when this
    returns or raises (the first error raised), a signal's exception
    included.  The threads are daemons: a signal that stops the run
    (:mod:`apftools._interrupt`) never leaves the interpreter waiting for one
    at exit.
    """
    if len(calls) < 2 or getattr(_STATE, "worker", False) or _workers() < 1:
        return [call() for call in calls]
    with _START_LOCK:
        while len(_STARTED) < _workers():
            _STARTED.append(threading.Thread(target=_serve, name="apftools", daemon=True))
            _STARTED[-1].start()
    tasks = [_Task(call) for call in calls[1:]]
    for task in tasks:
        _TASKS.put(task)
    try:
        first = calls[0]()
    finally:
        _wait(tasks)
    for task in tasks:
        if task.error is not None:
            raise task.error
    return [first, *(task.result for task in tasks)]
