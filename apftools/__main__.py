"""The ``apftools`` command (and ``python -m apftools``): the click CLI behind clean signal handling.

SIGINT (Ctrl-C), SIGTERM and SIGHUP end a run at any moment, start-up
included, with one line on stderr and exit status 128 + the signal number
(130, 143, 129).  A signal ignored when the command starts (``nohup``
ignores SIGHUP; a non-interactive shell starts background jobs with SIGINT
ignored) stays ignored.  The signal becomes an exception, so every ``with`` block on
the way out runs: temporary files and staging folders are removed and
earlier outputs stay as they were (:class:`apftools.io.OutputFolder`,
:func:`apftools.io.atomic_write`); where Python drops the exception (a
signal during a weakref callback), the next commit raises it
(:mod:`apftools._interrupt`).  Further signals are ignored while that
clean-up runs.  Nothing heavy is imported before the handlers are in place.
"""

import sys

from . import _interrupt
from ._interrupt import Interrupted


def main():
    """Entry point of the ``apftools`` console script."""
    _interrupt.install()
    try:
        try:
            from .cli import main as cli

            cli(prog_name="apftools")
        finally:
            _interrupt.check()  # a signal whose exception Python dropped still ends the run as one
    except Interrupted as stop:
        name = _interrupt.SIGNALS[stop.signum]
        sys.stderr.write(f"\nInterrupted by {name}: stopped; nothing half-written was left\n")
        sys.exit(128 + stop.signum)


if __name__ == "__main__":
    main()
