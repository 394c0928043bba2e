"""Options, checks and error handling shared by the subcommands."""

import contextlib
import functools
import os
import sys

import click

from ..errors import ApftoolsError, ApftoolsExistsError
from ..names import LOSS_NAMES, MAX_DELAY_S, METHODS, SAMPLE_FORMATS

force_option = click.option("--force", is_flag=True, help="Replace existing outputs (inputs are never replaced).")
bits_option = click.option(
    "--bits", type=click.Choice(list(SAMPLE_FORMATS)), default=None,
    help="Sample format of the audio written: 32-bit float (keeps levels above 0 dBFS), or 32-, 24- or 16-bit "
         "integers (16 with TPDF dither)  [default: float for .wav, 24 for .flac]")
#: The options of one alignment, in ``--help`` order: ``align`` and ``batch`` take them all (:func:`alignment_options`).
_ALIGNMENT_OPTIONS = (
    click.option("--sections", default=None,
                 help="Cascade spec CAUSAL|ANTICAUSAL, e.g. '3x2w,1w|2x2w,1w' (the default; '3x2w,1w' with --causal); "
                      "CAUSAL may be 'auto' to choose the order."),
    click.option("--causal", is_flag=True,
                 help="Real-time mode: causal sections and no advance only (default: offline, filtering the "
                      "anti-causal sections backwards over the file)."),
    click.option("--method", default="lbfgs", show_default=True, type=click.Choice(METHODS),
                 help="Fitter: L-BFGS from many starts, or the BiasNet network of Bargum et al. (slower)."),
    click.option("--polish", is_flag=True, help="With --method biasnet, refine the network's result with L-BFGS."),
    click.option("--layers", default="1024,512,256,128", show_default=True,
                 help="With --method biasnet: the input and hidden layer sizes of each section's network (the "
                      "paper's by default; the output layer is added)."),
    click.option("--steps", default=1000, show_default=True, type=click.IntRange(min=1),
                 help="With --method biasnet: most Adam steps (early stopping may end sooner)."),
    click.option("--loss", default="mse", show_default=True, type=click.Choice(LOSS_NAMES),
                 help="With --method biasnet: the training loss."),
    click.option("--max-delay-ms", default=250.0, show_default=True,
                 type=click.FloatRange(min=0, min_open=True, max=1000.0 * MAX_DELAY_S),
                 help="Largest bulk delay searched, either sign (a model holds at most 10 s)."),
    click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
                 help="Seed of BiasNet's initialisation and segments (--method biasnet); L-BFGS starts are fixed."),
    click.option("--link", "linked", is_flag=True,
                 help="One model for all channels (default: channels whose measured responses agree share one)."),
    click.option("--per-channel", is_flag=True, help="One model per channel."),
    click.option("--resample", is_flag=True, help="Resample the wet to the dry's rate when they differ."),
    click.option("--plot", is_flag=True, help="Also write report.png (phase, group delay, mix before/after)."),
    click.option("--mix", "mix_ratio", type=click.FloatRange(0, 1), default=None,
                 help="Also write mix.wav: aligned dry and wet mixed at this wet ratio."),
    bits_option,
)


def alignment_options(command):
    """Give ``command`` every option of one alignment; it receives them as ``settings``, a dict of
    :class:`apftools.files.AlignOptions` fields, checked as usage errors (exit status 2) before anything is read."""

    @functools.wraps(command)
    def wrapper(*args, sections, causal, method, polish, layers, steps, loss, max_delay_ms, seed, linked,
                per_channel, resample, plot, mix_ratio, bits, **kwargs):
        from ..align import check_spec
        from ..errors import ApftoolsValueError

        if linked and per_channel:
            raise click.UsageError("--link (one model for all channels) and --per-channel (one each) exclude each "
                                   "other")
        try:
            layer_sizes = tuple(int(size) for size in layers.split(","))
        except ValueError:
            raise click.BadParameter(f"expected comma-separated integers such as 64,64, got {layers!r}",
                                     param_hint="--layers") from None
        try:  # rate-dependent limits are checked later
            check_spec(sections, causal)
        except ApftoolsValueError as error:
            raise click.BadParameter(str(error), param_hint="--sections") from None
        settings = dict(sections=sections, causal=causal, method=method, polish=polish, layers=layer_sizes,
                        steps=steps, loss=loss, max_delay_ms=max_delay_ms, seed=seed,
                        link="linked" if linked else "separate" if per_channel else "auto", resample=resample,
                        plot=plot, mix_ratio=mix_ratio, bits=bits)
        return command(*args, settings=settings, **kwargs)

    for option in reversed(_ALIGNMENT_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


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
        except ApftoolsExistsError as error:
            raise click.ClickException(str(ApftoolsExistsError(error.what, "--force"))) from error
        except (ApftoolsError, OSError) as error:
            raise click.ClickException(str(error)) from error

    return wrapper


def is_quiet():
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("quiet"))


def started():
    """``time.perf_counter()`` when the command started, before its imports (now, outside the ``apftools`` group)."""
    import time

    ctx = click.get_current_context(silent=True)
    return (ctx and ctx.find_root().obj or {}).get("started") or time.perf_counter()


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
