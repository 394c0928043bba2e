"""The names of the library's choices, importable without numpy or scipy.

The command line lists them in its ``--help`` before any numeric module is
loaded; :mod:`apftools.align` and :mod:`apftools.losses` check their
arguments against these same tuples.
"""

#: Fitters of :func:`apftools.align`: L-BFGS (phase fit from many starts) or BiasNet (Bargum et al.).
METHODS = ("lbfgs", "biasnet")
#: The bench's methods (:mod:`apftools.bench`).
BENCH_METHODS = ("raw", "delay-polarity", "oracle", "lbfgs", "lbfgs-causal", "auto", "biasnet-paper", "biasnet-small",
                 "biasnet+polish", "cmd")
#: The keys of :data:`apftools.losses.LOSSES`, in order.
LOSS_NAMES = ("mse", "esr", "ncc", "stft_sum", "mr_stft_sum")
#: Largest bulk delay of a model, either sign, in seconds (:mod:`apftools.model`; ``--max-delay-ms``'s bound).
MAX_DELAY_S = 10.0
#: Sample formats of the audio apftools writes (``--bits``) -> libsndfile subtype (:func:`apftools.io.audio_writer`).
SAMPLE_FORMATS = {"float": "FLOAT", "32": "PCM_32", "24": "PCM_24", "16": "PCM_16"}
