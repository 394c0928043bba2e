"""The signal that stopped a run, kept where an exception cannot lose it.

:mod:`apftools.__main__` turns SIGINT, SIGTERM and SIGHUP into
:class:`Interrupted`, raised from the signal handler.  Python runs a handler
wherever the main thread happens to be, and an exception raised inside a
weakref callback, a ``__del__`` or a garbage-collector callback is printed
and dropped ("Exception ignored in ..."): a SIGINT during start-up once
landed in importlib's module-lock callback and the run went on to replace
the earlier outputs, exit status 0.  So the handler also records the
signal here, and every commit of outputs (:class:`apftools.io.OutputFolder`,
:func:`apftools.io.atomic_write`) calls :func:`check` first; such a dropped
:class:`Interrupted` is not printed either (one landed in a matplotlib
weakref callback and printed its traceback before the clean exit).

A commit and its clean-up run :func:`deferred`: a signal inside only records
itself and is raised when the block ends, so a swap of output folders is
never cut between putting the new outputs in place and removing the old
ones (a SIGTERM there once left a hidden folder of old outputs behind).

A batch's worker processes install the same handler but defer signals
while idle (an idle worker stopped by Ctrl-C died with a traceback) and
take them only within :func:`raising`, around one pair's work.
"""

import contextlib
import signal
import sys

#: The signals that stop a run, with the names the one-line message gives them.
SIGNALS = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGHUP"):
    SIGNALS[signal.SIGHUP] = "SIGHUP"


class Interrupted(BaseException):
    """A signal stopped the run; a BaseException so that no ``except Exception`` swallows it."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


#: The number of the signal that arrived, or None.
received = None
#: How many :func:`deferred` blocks are open; the handler raises nothing while any is.
deferring = 0


@contextlib.contextmanager
def deferred():
    """Within the block a signal is only recorded; it is raised (:func:`check`) when the block ends normally."""
    global deferring
    deferring += 1
    try:
        yield
    finally:
        deferring -= 1
    if not deferring:
        check()


def _on_signal(signum, frame):
    for other in SIGNALS:  # the first signal stops the run; clean-up must not be interrupted in turn
        signal.signal(other, signal.SIG_IGN)
    global received
    received = signum  # kept in case the exception lands where Python drops it
    if not deferring:  # else raised when the commit under way has finished (deferred)
        raise Interrupted(signum)


def _unraisable(report):
    """Python's report of an exception it drops, but silent for :class:`Interrupted`: the signal is recorded, and
    the next commit raises it (:func:`check`); its traceback on stderr would read as a crash."""
    if not isinstance(report.exc_value, Interrupted):
        sys.__unraisablehook__(report)


def install():
    """Turn the signals of :data:`SIGNALS` into :class:`Interrupted`; one ignored when this runs stays ignored."""
    sys.unraisablehook = _unraisable
    for signum in SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup, `cmd &`
            signal.signal(signum, _on_signal)


@contextlib.contextmanager
def raising():
    """Within the block a signal raises at once, even where signals are otherwise deferred (an idle worker)."""
    global deferring
    saved, deferring = deferring, 0
    try:
        check()
        yield
    finally:
        deferring = saved


@contextlib.contextmanager
def suspended():
    """Within the block the signal that stopped the run does not stop a commit: for the record of what was done."""
    global received
    saved, received = received, None
    try:
        yield
    finally:
        received = saved


def check():
    """Raise :class:`Interrupted` if a signal arrived (whether or not its own exception got through)."""
    if received is not None:
        raise Interrupted(received)
