"""The ``apftools`` command line: parse, call the library, echo.

One module per subcommand; shared options and error handling live in
:mod:`apftools.cli.options`.  Only this package prints.
"""

import importlib
import time

import click

from .. import __version__

#: The subcommands, each the function of its name in ``apftools.cli.<name>``.  A module is imported when its
#: command runs or ``--help`` lists it, so ``--version`` imports none: their option declarations took 20 ms,
#: two fifths of the start-up above ``import click``.
COMMANDS = ("align", "apply", "batch", "bench", "export", "measure", "response", "score", "sweep")


class _Commands(click.Group):
    """A group whose subcommands are imported on first use (click's documented lazy-loading pattern)."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        return getattr(importlib.import_module(f"{__name__}.{name}"), name)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="apftools")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summaries; errors still print.")
@click.pass_context
def main(ctx, quiet):
    """Estimate the phase response of audio effects and align dry with wet signals."""
    ctx.obj = {"quiet": quiet, "started": time.perf_counter()}  # before numpy and scipy are imported
