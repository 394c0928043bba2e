"""apftools: phase-response estimation and dry/wet alignment with allpass cascades.

The main job: :func:`align` returns an :class:`Alignment` (delay, polarity and
a fitted allpass cascade) that renders a dry signal in phase with the wet.
The engine: :func:`sosfilt` (scipy's ``sosfilt`` with exact autograd
gradients) and :class:`Cascade` (allpass structures, stable by construction,
with closed-form responses and a JSON round trip).

The names below are imported on first use, so ``import apftools`` (and the
command line's start-up, ``--help`` and ``--version``) costs no numpy,
scipy or numba import until one is needed.
"""

import importlib
import sys
import types

__version__ = "0.1.0"

#: public name -> the submodule defining it
_EXPORTS = {
    "A_MAX": "structures", "R_MAX": "structures", "RANGES": "structures", "ParamRange": "structures",
    "Alignment": "model", "align": "align", "Cascade": "cascade", "sosfilt": "filtering",
    "ApftoolsError": "errors", "ApftoolsExistsError": "errors", "ApftoolsIOError": "errors",
    "ApftoolsTypeError": "errors", "ApftoolsValueError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'apftools' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """Keeps ``apftools.align`` the function when the submodule of that name is imported.

    Importing a submodule binds it as an attribute of its package; the
    function :func:`apftools.align.align` is the public meaning of the name.
    """

    def __setattr__(self, name, value):
        if name == "align" and isinstance(value, types.ModuleType):
            value = value.align
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
