"""apftools: phase-response estimation and dry/wet alignment with allpass cascades.

The main job: :func:`align` returns an :class:`Alignment` (delay, polarity and
a fitted allpass cascade) that renders a dry signal in phase with the wet.
The engine: :func:`sosfilt` (scipy's ``sosfilt`` with exact autograd
gradients) and :class:`Cascade` (allpass structures, stable by construction,
with closed-form responses and a JSON round trip).
"""

from .align import Alignment, align
from .cascade import Cascade
from .errors import ApftoolsError, ApftoolsIOError, ApftoolsTypeError, ApftoolsValueError
from .filtering import sosfilt
from .structures import A_MAX, R_MAX, RANGES, ParamRange

__version__ = "0.1.0"

__all__ = [
    "A_MAX",
    "Alignment",
    "ApftoolsError",
    "ApftoolsIOError",
    "ApftoolsTypeError",
    "ApftoolsValueError",
    "Cascade",
    "ParamRange",
    "RANGES",
    "R_MAX",
    "align",
    "sosfilt",
]
