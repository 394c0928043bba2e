"""The signal that stopped a run, kept where an exception cannot lose it.

:mod:`apftools.__main__` turns SIGINT, SIGTERM and SIGHUP into
:class:`Interrupted`, raised from the signal handler.  Python runs a handler
wherever the main thread happens to be, and an exception raised inside a
weakref callback, a ``__del__`` or a garbage-collector callback is printed
and dropped ("Exception ignored in ..."): a SIGINT during start-up once
landed in importlib's module-lock callback and the run went on to replace
the earlier outputs, exit status 0.  So the handler also records the
signal here, and every commit of outputs (:class:`apftools.io.OutputFolder`,
:func:`apftools.io.atomic_write`) calls :func:`check` first.

A commit and its clean-up run :func:`deferred`: a signal inside only records
itself and is raised when the block ends, so a swap of output folders is
never cut between putting the new outputs in place and removing the old
ones (a SIGTERM there once left a hidden folder of old outputs behind).
"""

import contextlib


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


def check():
    """Raise :class:`Interrupted` if a signal arrived (whether or not its own exception got through)."""
    if received is not None:
        raise Interrupted(received)
