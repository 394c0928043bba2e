"""The ``apftools`` command (and ``python -m apftools``): the click CLI behind clean signal handling.

SIGINT (Ctrl-C), SIGTERM and SIGHUP end a run at any moment, start-up
included, with one line on stderr and exit status 128 + the signal number
(130, 143, 129).  A signal ignored when the command starts (``nohup``
ignores SIGHUP; a non-interactive shell starts background jobs with SIGINT
ignored) stays ignored.  The signal becomes an exception, so every ``with`` block on
the way out runs: temporary files and staging folders are removed and
earlier outputs stay as they were (:class:`apftools.io.OutputFolder`,
:func:`apftools.io.atomic_write`).  Further signals are ignored while that
clean-up runs.  Nothing heavy is imported before the handlers are in place.
"""

import signal
import sys

_SIGNALS = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGHUP"):
    _SIGNALS[signal.SIGHUP] = "SIGHUP"


class Interrupted(BaseException):
    """Raised by the signal handler; a BaseException so that no ``except Exception`` swallows it."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame):
    for other in _SIGNALS:  # the first signal stops the run; clean-up must not be interrupted in turn
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


def main():
    """Entry point of the ``apftools`` console script."""
    for signum in _SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # an ignored signal stays ignored (nohup, `cmd &`)
            signal.signal(signum, _on_signal)
    try:
        from .cli import main as cli

        cli(prog_name="apftools")
    except Interrupted as stop:
        sys.stderr.write(f"\nInterrupted by {_SIGNALS[stop.signum]}: stopped; no partial output was left\n")
        sys.exit(128 + stop.signum)


if __name__ == "__main__":
    main()
