"""Audio and JSON files for apftools: read, validate, and write atomically.

Audio goes through :mod:`soundfile` (libsndfile). Arrays follow the rest of
apftools: shape ``(n_channels, n_samples)``, time along the last axis,
float64, with the sample rate ``fs`` in Hz returned next to the data so it is
never lost (the ``(data, samplerate)`` convention of :func:`soundfile.read`).

Every write goes through :func:`atomic_write`: the file is written under a
temporary name in the destination directory and renamed onto the destination
only once complete, so a failed or interrupted write never leaves a truncated
file or damages the file it was meant to replace.
"""

import contextlib
import json
import math
import os
import secrets

import numpy as np
import soundfile

from ._validate import validate_fs, validate_signal
from .errors import ApftoolsIOError, ApftoolsTypeError, ApftoolsValueError

#: Extension -> (libsndfile major format, subtype) used by :func:`write_audio`.
AUDIO_FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}

# libsndfile refuses more channels than this (SF_MAX_CHANNELS in sndfile.h).
_MAX_CHANNELS = 1024


def _io_error(action, path, exc):
    """An :class:`ApftoolsIOError` saying why ``path`` could not be read or written."""
    reason = {FileNotFoundError: "no such file", IsADirectoryError: "it is a directory",
              PermissionError: "permission denied"}.get(type(exc), exc.strerror or str(exc))
    return ApftoolsIOError(f"cannot {action} {path!r}: {reason}")


def read_audio(path):
    """Read an audio file as float64 samples.

    Parameters
    ----------
    path : str or os.PathLike
        Any file libsndfile can read (WAV, FLAC, AIFF, OGG, ...).

    Returns
    -------
    data : ndarray, shape (n_channels, n_samples)
        Samples as float64, always 2-D (a mono file gives shape ``(1, N)``).
        Integer formats are scaled to [-1, 1); float formats are returned as
        stored, including values above 0 dBFS.
    fs : int
        Sample rate in Hz.

    Raises
    ------
    ApftoolsIOError
        If the file is missing, is a directory, or cannot be opened.
    ApftoolsValueError
        If the file is not audio libsndfile can decode, has no samples, or
        contains NaN/Inf samples (the message gives their count and the
        earliest one's channel, numbered from 1, and time in seconds).

    Examples
    --------
    >>> data, fs = read_audio("dry.wav")  # doctest: +SKIP
    >>> data.shape  # doctest: +SKIP
    (2, 480000)
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            frames, fs = soundfile.read(file, dtype="float64", always_2d=True)
    except OSError as exc:
        raise _io_error("read", path, exc) from exc
    except soundfile.SoundFileError as exc:
        message = getattr(exc, "error_string", str(exc)).rstrip(".")
        raise ApftoolsValueError(f"{path!r} is not an audio file soundfile can read ({message})") from exc
    data = frames.T
    if data.shape[1] == 0:
        raise ApftoolsValueError(f"{path!r} has no samples")
    bad = ~np.isfinite(data)
    if bad.any():
        sample = int(np.argmax(bad.any(axis=0)))
        channel = int(np.argmax(bad[:, sample]))
        raise ApftoolsValueError(
            f"{path!r} contains {int(bad.sum())} NaN/Inf samples "
            f"(first in channel {channel + 1} at {sample / fs:.3f} s)")
    return data, int(fs)


@contextlib.contextmanager
def atomic_write(path, *, overwrite=False):
    """Context manager yielding a temporary path to write instead of ``path``.

    The temporary file is ``.{stem}.tmp-{random}{suffix}`` in the directory of
    ``path``: same file system (so the final :func:`os.replace` is atomic) and
    same suffix (so writers that choose a format by extension still work). On
    normal exit it replaces ``path``; if the block raises, it is removed and
    the exception propagates, leaving any existing ``path`` untouched.

    The temporary name is reserved with ``O_CREAT | O_EXCL`` and mode 0o666,
    so the final file gets the usual permissions from the umask (unlike
    :func:`tempfile.mkstemp`, which creates files readable by the owner only).

    Parameters
    ----------
    path : str or os.PathLike
        Destination. Its directory must exist.
    overwrite : bool, optional
        Replace ``path`` if it exists. Default False.

    Raises
    ------
    ApftoolsIOError
        If ``path`` exists and ``overwrite`` is False, if its directory does
        not exist, or if the temporary file cannot be created or renamed.

    Examples
    --------
    >>> with atomic_write("out.txt") as temporary:  # doctest: +SKIP
    ...     with open(temporary, "w") as f:
    ...         f.write("done\\n")
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise ApftoolsIOError(f"{path!r} exists; pass overwrite=True (--force on the command line)")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ApftoolsIOError(f"cannot write {path!r}: directory {directory!r} does not exist")
    stem, suffix = os.path.splitext(os.path.basename(path))
    temporary = os.path.join(directory, f".{stem}.tmp-{secrets.token_hex(4)}{suffix}")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise _io_error("write", path, exc) from exc
    try:
        yield temporary
        try:
            os.replace(temporary, path)
        except OSError as exc:
            raise _io_error("write", path, exc) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def write_audio(path, data, fs, *, overwrite=False):
    """Write samples to a WAV or FLAC file, atomically.

    The format follows the extension (see :data:`AUDIO_FORMATS`):

    * ``.wav``: 32-bit float. Values above 0 dBFS (``|x| > 1``) are kept
      unclipped, so a processed signal with gain survives the round trip;
      samples are rounded to float32 (relative error at most :math:`2^{-24}`).
    * ``.flac``: 24-bit integer. Integers cannot represent ``|x| > 1``, so
      such data is refused rather than clipped; write ``.wav`` instead.
      Quantisation error is at most :math:`2^{-24}` (half a step of
      :math:`2^{-23}`).

    Parameters
    ----------
    path : str or os.PathLike
        Destination ending in ``.wav`` or ``.flac`` (any case).
    data : array_like, shape (n_samples,) or (n_channels, n_samples)
        Real, finite samples; time along the last axis (the transpose of the
        :mod:`soundfile` layout).
    fs : int
        Sample rate in Hz. Audio files store integer rates, so a non-integer
        ``fs`` is refused rather than rounded.
    overwrite : bool, optional
        Replace ``path`` if it exists. Default False.

    Raises
    ------
    ApftoolsValueError
        Unsupported extension, empty or non-finite data, more than 1024
        channels (libsndfile's limit; usually a transposed array), a
        non-integer ``fs``, or ``|x| > 1`` for FLAC.
    ApftoolsTypeError
        If ``data`` is not real or ``fs`` is not a number.
    ApftoolsIOError
        See :func:`atomic_write`; also if libsndfile fails to write.

    Examples
    --------
    >>> t = np.arange(48000) / 48000
    >>> write_audio("tone.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), 48000)  # doctest: +SKIP
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in AUDIO_FORMATS:
        raise ApftoolsValueError(
            f"cannot write {path!r}: unsupported extension {extension!r}; use one of {sorted(AUDIO_FORMATS)}")
    major, subtype = AUDIO_FORMATS[extension]
    data = validate_signal(data, "data")
    if data.ndim == 1:
        data = data[np.newaxis]
    if data.ndim != 2 or not 1 <= data.shape[0] <= _MAX_CHANNELS:
        raise ApftoolsValueError(
            f"data must have shape (n_samples,) or (n_channels, n_samples) with at most {_MAX_CHANNELS} "
            f"channels, got shape {data.shape}")
    rate = validate_fs(fs)
    if not rate.is_integer():
        raise ApftoolsValueError(f"fs must be a whole number of Hz to be stored in an audio file, got {fs!r}")
    peak = float(np.max(np.abs(data)))
    limit = 1.0 if subtype == "PCM_24" else float(np.finfo(np.float32).max)
    if peak > limit:
        hint = "; FLAC stores 24-bit integers, write .wav (32-bit float) to keep them" if subtype == "PCM_24" else ""
        raise ApftoolsValueError(f"cannot write {path!r}: samples reach {peak!r}, beyond ±{limit:g}{hint}")
    with atomic_write(path, overwrite=overwrite) as temporary:
        try:
            soundfile.write(temporary, data.T, int(rate), format=major, subtype=subtype)
        except soundfile.SoundFileError as exc:
            raise ApftoolsIOError(f"cannot write {path!r}: {getattr(exc, 'error_string', exc)}") from exc


def _to_plain(obj):
    """``obj`` with numpy values as Python ones, tuples as lists, and NaN/Inf floats as None."""
    if isinstance(obj, np.ndarray | np.generic):
        obj = obj.tolist()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {_to_plain(key): _to_plain(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_plain(item) for item in obj]
    return obj


def write_json(path, obj, *, overwrite=False):
    """Write ``obj`` as indented JSON (with a trailing newline), atomically.

    numpy arrays and scalars become lists and Python numbers, tuples become
    lists, and non-finite floats (NaN, ±Inf) become ``null``: a report with an
    undefined value stays valid JSON that any parser reads.

    Raises
    ------
    ApftoolsTypeError
        If ``obj`` holds something JSON cannot represent (the file is not
        created).
    ApftoolsIOError
        See :func:`atomic_write`.
    """
    path = os.fspath(path)
    try:
        text = json.dumps(_to_plain(obj), indent=2, allow_nan=False) + "\n"
    except TypeError as exc:
        raise ApftoolsTypeError(f"cannot write {path!r} as JSON: {exc}") from exc
    with atomic_write(path, overwrite=overwrite) as temporary:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)


def read_json(path):
    """Read a UTF-8 JSON file.

    Raises
    ------
    ApftoolsIOError
        If the file is missing, is a directory, or cannot be opened.
    ApftoolsValueError
        If it is not valid UTF-8 JSON; the message gives line and column.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except OSError as exc:
        raise _io_error("read", path, exc) from exc
    except json.JSONDecodeError as exc:
        raise ApftoolsValueError(
            f"{path!r} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise ApftoolsValueError(f"{path!r} is not valid JSON: not UTF-8 text ({exc.reason})") from exc


def same_file(a, b):
    """True if paths ``a`` and ``b`` name the same file.

    Uses :func:`os.path.samefile` (same device and inode, so hard links,
    symbolic links and relative paths all match) when both exist; otherwise
    compares the resolved paths, so a not-yet-written output can still be
    recognised as an input.
    """
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))
