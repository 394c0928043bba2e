"""BLAS thread pinning: the one place apftools limits BLAS threads.

On the 2-core machines apftools targets, OpenBLAS's default threading made
small dot products about 60x slower (measured).  Heavy entry points run
inside :func:`blas_single_thread`.
"""

import scipy.linalg  # noqa: F401  (loads scipy's own BLAS so the controller sees it)
from threadpoolctl import ThreadpoolController

_CONTROLLER = ThreadpoolController()


def blas_single_thread():
    """Context manager limiting every loaded BLAS to one thread (about 8 us to enter)."""
    return _CONTROLLER.limit(limits=1, user_api="blas")
