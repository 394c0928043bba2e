"""The ``apftools`` command line: parse, call the library, echo.

One module per subcommand; shared options and error handling live in
:mod:`apftools.cli.options`.  Only this package prints.
"""

import click

from .. import __version__
from .align import align
from .apply import apply
from .batch import batch
from .measure import measure
from .response import response
from .sweep import sweep


@click.group()
@click.version_option(__version__, prog_name="apftools")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summaries; errors still print.")
@click.pass_context
def main(ctx, quiet):
    """Estimate the phase response of audio effects and align dry with wet signals."""
    ctx.obj = {"quiet": quiet}


for command in (align, apply, response, sweep, measure, batch):
    main.add_command(command)
