"""apftools: phase-response estimation and dry/wet alignment with allpass cascades.

The engine: :func:`sosfilt` (scipy's ``sosfilt`` with exact autograd
gradients) and :class:`Cascade` (allpass structures, stable by construction,
with closed-form responses and a JSON round trip).
"""

from .cascade import Cascade
from .errors import ApftoolsError, ApftoolsIOError, ApftoolsTypeError, ApftoolsValueError
from .filtering import sosfilt
from .structures import A_MAX, R_MAX, RANGES, ParamRange

__version__ = "0.1.0"

__all__ = [
    "A_MAX",
    "ApftoolsError",
    "ApftoolsIOError",
    "ApftoolsTypeError",
    "ApftoolsValueError",
    "Cascade",
    "ParamRange",
    "RANGES",
    "R_MAX",
    "sosfilt",
]
