"""Exceptions raised by apftools.

Every error apftools raises on bad input derives from :class:`ApftoolsError`
and from the matching builtin (``ValueError`` for bad values, ``TypeError``
for bad types), so ``except ValueError`` keeps working for callers who do not
know this package.
"""


class ApftoolsError(Exception):
    """Base class of every apftools error."""


class ApftoolsValueError(ApftoolsError, ValueError):
    """An argument has the right type but a value apftools cannot use."""


class ApftoolsTypeError(ApftoolsError, TypeError):
    """An argument has a type apftools cannot use."""


class ApftoolsIOError(ApftoolsError, OSError):
    """A file could not be read or written (missing, unreadable, or would be overwritten)."""


class ApftoolsExistsError(ApftoolsIOError):
    """An output exists and replacing it was not asked for; ``what`` names it, the message says how to ask.

    The command line says ``--force`` where Python says ``overwrite=True``.
    """

    def __init__(self, what, option="overwrite=True"):
        super().__init__(f"{what}; pass {option} to replace it")
        self.what = what
