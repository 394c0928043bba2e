"""Options, checks and error handling shared by the subcommands."""

import contextlib
import functools
import os
import sys

import click

from ..errors import ApftoolsError
from ..names import MAX_DELAY_S

force_option = click.option("--force", is_flag=True, help="Replace existing outputs (inputs are never replaced).")
max_delay_option = click.option(
    "--max-delay-ms", default=250.0, show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=1000.0 * MAX_DELAY_S),
    help="Largest bulk delay searched, either sign (a model holds at most 10 s).")
seed_option = click.option(
    "--seed", default=0, show_default=True, type=click.IntRange(min=0),
    help="Seed of BiasNet's initialisation and segments (--method biasnet); L-BFGS starts are fixed.")


def _set_quiet(ctx, param, value):
    if value:
        root = ctx.find_root()
        root.obj = dict(root.obj or {}, quiet=True)


#: ``-q`` after the subcommand too (``apftools align -q ...``), as before it.
quiet_option = click.option("--quiet", "-q", is_flag=True, expose_value=False, callback=_set_quiet,
                            help="No progress bars or summaries; errors still print.")


def channel_label(channels):
    """``"channel 1"`` or ``"channels 1, 2"`` for 0-based channel indices."""
    return f"channel{'s' if len(channels) > 1 else ''} {', '.join(str(c + 1) for c in channels)}"


def reports_errors(command):
    """Turn apftools and file-system errors into a one-line message and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            raise  # click's own handling: the reader went away (``| head``), nothing to report
        except (ApftoolsError, OSError) as error:
            raise click.ClickException(str(error)) from error

    return wrapper


def is_quiet():
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("quiet"))


def echo(message=""):
    """Print a summary line unless --quiet."""
    if not is_quiet():
        click.echo(message)


@contextlib.contextmanager
def progress_bar(label, eta=False):
    """A click progress bar on stderr driven by ``update(fraction, text)`` naming the stage; silent with --quiet.

    ``eta`` shows the time left, for work whose fraction grows with time (rendering a long file).
    """
    if is_quiet():
        yield lambda fraction, text: None
        return
    with click.progressbar(length=1000, label=label, file=sys.stderr,
                           show_eta=eta, item_show_func=lambda text: text) as bar:
        def update(fraction, text):
            bar.update(max(0, int(1000 * fraction) - bar.pos), text)

        yield update


def check_output(output, inputs, force):
    """Before any work: refuse an output that is an input (always), exists (unless ``force``) or cannot be written."""
    from ..io import check_writable, same_file

    for source in inputs:
        if same_file(output, source):
            raise click.ClickException(f"output {output} is the input {source}; inputs are never overwritten")
    if os.path.lexists(output) and not force:
        raise click.ClickException(f"{output} already exists; pass --force to replace it")
    check_writable(output)
