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
import ctypes
import errno
import json
import math
import os
import secrets
import shutil

import numpy as np
import soundfile

from . import _interrupt
from ._validate import validate_fs, validate_signal
from .errors import ApftoolsExistsError, ApftoolsIOError, ApftoolsTypeError, ApftoolsValueError
from .names import SAMPLE_FORMATS

#: Extension -> (libsndfile major format, subtype) used by :func:`write_audio`.
AUDIO_FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}

# libsndfile refuses more channels than this (SF_MAX_CHANNELS in sndfile.h).
_MAX_CHANNELS = 1024


#: errno -> what it means for the user, and what to do.
_OS_REASONS = {
    errno.ENOENT: "no such file or folder",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EACCES: "permission denied; choose a location you can write to, or change its permissions",
    errno.EPERM: "operation not permitted; choose a location you can write to, or change its permissions",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOSPC: "no space left on the device; free some space or choose another location",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another location",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EEXIST: "it already exists",
    errno.ENOTEMPTY: "the folder is not empty",
    errno.ELOOP: "too many levels of symbolic links",
}


def _io_error(action, path, exc):
    """An :class:`ApftoolsIOError` saying in words why ``path`` could not be read or written."""
    reason = _OS_REASONS.get(getattr(exc, "errno", None)) or getattr(exc, "strerror", None) or str(exc)
    return ApftoolsIOError(f"cannot {action} {os.fspath(path)!r}: {reason}")


class AudioReader:
    """An open audio file read by sample ranges, for work in blocks whose memory does not grow with the file.

    ``read(start, stop)`` returns samples ``start`` to ``stop`` as float64,
    shape ``(channels, stop - start)``, with zeros for the part of the range
    outside the file (a delay reads before the start or past the end).
    Every block read is checked for NaN/Inf.  Use as a context manager, or
    call :meth:`close`.

    Attributes
    ----------
    path : str
    frames, channels : int
    fs : int
        Sample rate in Hz.

    Raises
    ------
    ApftoolsIOError
        If the file is missing, is a directory, or cannot be opened.
    ApftoolsValueError
        If it is not audio libsndfile can decode, or has no samples.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as exc:
            raise _io_error("read", self.path, exc) from exc
        try:
            # by descriptor, so libsndfile reads in C: a Python file object would be read through cffi
            # callbacks, where an exception (a signal's) is swallowed and the read silently cut short
            self._sound = soundfile.SoundFile(self._file.fileno(), closefd=False)
        except soundfile.SoundFileError as exc:
            self._file.close()
            message = getattr(exc, "error_string", str(exc)).rstrip(".")
            raise ApftoolsValueError(f"{self.path!r} is not an audio file soundfile can read ({message})") from exc
        except BaseException:
            self._file.close()
            raise
        self.frames, self.channels, self.fs = self._sound.frames, self._sound.channels, int(self._sound.samplerate)
        if self.frames == 0:
            self.close()
            raise ApftoolsValueError(f"{self.path!r} has no samples")

    def read(self, start, stop):
        """Samples ``start`` to ``stop`` (either may lie outside the file), float64, shape (channels, stop - start)."""
        first, last = max(start, 0), min(stop, self.frames)
        try:
            out = np.zeros((self.channels, stop - start))
            if first < last:
                self._sound.seek(first)
                block = self._sound.read(last - first, dtype="float64", always_2d=True)
        except soundfile.SoundFileError as exc:
            raise ApftoolsValueError(f"cannot decode {self.path!r} at {first / self.fs:.3f} s "
                                     f"({getattr(exc, 'error_string', exc)})") from exc
        except (MemoryError, ValueError):  # numpy's "array is too big": a damaged header can announce anything
            raise ApftoolsValueError(f"{self.path!r}: {self.channels} x {stop - start} samples from {start} do not "
                                     f"fit in memory (its header announces {self.frames} samples)") from None
        if first < last:
            if len(block) != last - first:
                raise ApftoolsValueError(f"{self.path!r} ended at {(first + len(block)) / self.fs:.3f} s, before "
                                         f"the {self.frames / self.fs:.3f} s its header announces")
            bad = ~np.isfinite(block)
            if bad.any():
                sample = int(np.argmax(bad.any(axis=1)))
                channel = int(np.argmax(bad[sample]))
                where = "" if last - first == self.frames else \
                    f" between {first / self.fs:.3f} s and {last / self.fs:.3f} s"
                raise ApftoolsValueError(
                    f"{self.path!r} contains {int(bad.sum())} NaN/Inf samples{where} "
                    f"(first in channel {channel + 1} at {(first + sample) / self.fs:.3f} s)")
            out[:, first - start:last - start] = block.T
        return out

    def close(self):
        self._sound.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


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
    with AudioReader(path) as reader:
        return reader.read(0, reader.frames), reader.fs


def _temporary_name(directory, name):
    """A hidden, unused name beside ``name`` in ``directory``: ``.{stem}.tmp-{random}{suffix}``."""
    stem, suffix = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.tmp-{secrets.token_hex(4)}{suffix}")


def _probe(folder):
    """Create and remove a file in ``folder``: the commit renames it, which an immutable folder or a read-only
    mount refuses although its permission bits (which root ignores anyway) allow it."""
    probe = _temporary_name(folder, "probe")
    descriptor = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.close(descriptor)
    finally:
        os.remove(probe)


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
        raise ApftoolsExistsError(f"{path!r} exists")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ApftoolsIOError(f"cannot write {path!r}: directory {directory!r} does not exist")
    temporary = _temporary_name(directory, os.path.basename(path))
    try:
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as exc:
            raise _io_error("write", path, exc) from exc
        yield temporary
        _interrupt.check()
        try:
            os.replace(temporary, path)
        except OSError as exc:
            raise _io_error("write", path, exc) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


@contextlib.contextmanager
def audio_writer(path, fs, channels, *, overwrite=False, bits=None):
    """Context manager yielding ``write(block)`` that appends blocks of shape (channels, n) to a WAV or FLAC file.

    The file appears at ``path`` (atomically, :func:`atomic_write`) only when
    the block ends without an error; every block is checked as
    :func:`write_audio` checks its data, so a bad block leaves nothing behind.
    ``bits`` (a key of :data:`apftools.names.SAMPLE_FORMATS`; FLAC takes 24
    and 16) overrides the extension's sample format (:data:`AUDIO_FORMATS`).  Integer formats refuse samples
    beyond ±1 and round to the nearest step (+1 itself to the step below);
    16-bit samples get TPDF dither of ±1 LSB (:math:`2^{-15}`),
    the difference of two uniform variates from a generator seeded with 0,
    so the same input writes the same file (Lipshitz, Wannamaker and
    Vanderkooy, "Quantization and dither: a theoretical survey", JAES 1992).
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in AUDIO_FORMATS:
        raise ApftoolsValueError(
            f"cannot write {path!r}: unsupported extension {extension!r}; use one of {sorted(AUDIO_FORMATS)}")
    major, subtype = AUDIO_FORMATS[extension]
    if bits is not None:
        if bits not in SAMPLE_FORMATS or (major == "FLAC" and bits not in ("24", "16")):
            allowed = ("24", "16") if major == "FLAC" else tuple(SAMPLE_FORMATS)
            raise ApftoolsValueError(f"cannot write {path!r} with bits={bits!r}: {major} takes {', '.join(allowed)}")
        subtype = SAMPLE_FORMATS[bits]
    dither = np.random.default_rng(0) if subtype == "PCM_16" else None
    if not 1 <= channels <= _MAX_CHANNELS:
        raise ApftoolsValueError(f"cannot write {path!r}: {channels} channels; 1 to {_MAX_CHANNELS} are possible "
                                 "(more is usually a transposed array)")
    rate = validate_fs(fs)
    if not rate.is_integer():
        raise ApftoolsValueError(f"fs must be a whole number of Hz to be stored in an audio file, got {fs!r}")
    limit = float(np.finfo(np.float32).max) if subtype == "FLOAT" else 1.0

    def write(block):
        block = validate_signal(block, "data")
        if np.shape(block)[0] != channels:
            raise ApftoolsValueError(f"a block of shape {block.shape} does not have the file's {channels} channels")
        peak = max(float(np.max(block, initial=0.0)), -float(np.min(block, initial=0.0)))  # no |block| copy
        if peak > limit:
            hint = "" if subtype == "FLOAT" else \
                f"; {major} of {subtype[4:]}-bit integers cannot hold them, write .wav as float to keep them"
            raise ApftoolsValueError(f"cannot write {path!r}: samples reach {peak!r}, beyond ±{limit:g}{hint}")
        if subtype != "FLOAT":  # rounded here: libsndfile's own conversion floors (a bias of half a step)
            step = 2.0 ** (1 - int(subtype[4:]))
            scaled = block / step
            if dither is not None:
                scaled += dither.random(block.shape) - dither.random(block.shape)
            levels = np.clip(np.round(scaled), -1.0 / step, 1.0 / step - 1.0)  # +1.0 is one step beyond the top
            block = (levels * (step * 2.0**31)).astype(np.int32)  # left-justified, as libsndfile reads int32
        sound.write(block.T)

    with atomic_write(path, overwrite=overwrite) as temporary:
        try:
            with soundfile.SoundFile(temporary, "w", int(rate), channels, subtype, format=major) as sound:
                yield write
        except soundfile.SoundFileError as exc:
            raise ApftoolsIOError(f"cannot write {path!r}: {getattr(exc, 'error_string', exc)}") from exc


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

    Long signals can be written block by block with :func:`audio_writer`.

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
    data = validate_signal(data, "data")
    if data.ndim == 1:
        data = data[np.newaxis]
    if data.ndim != 2 or not 1 <= data.shape[0] <= _MAX_CHANNELS:
        raise ApftoolsValueError(
            f"data must have shape (n_samples,) or (n_channels, n_samples) with at most {_MAX_CHANNELS} "
            f"channels, got shape {data.shape}")
    with audio_writer(path, fs, data.shape[0], overwrite=overwrite) as write:
        write(data)


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


#: Largest JSON file :func:`read_json` reads (models are a few kB).
MAX_JSON_BYTES = 16 * 2**20
#: Longest integer literal :func:`read_json` accepts, in digits (beyond it a float would lose precision anyway).
MAX_JSON_INT_DIGITS = 20


def _json_int(text):
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ApftoolsValueError(f"holds an integer of {len(text.lstrip('-'))} digits; "
                                 f"at most {MAX_JSON_INT_DIGITS} are accepted")
    return int(text)


def _json_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ApftoolsValueError(f"holds the number {text[:40]!r}, too large for a float")
    return value


def _json_constant(text):
    raise ApftoolsValueError(f"holds {text!r}, which is not valid JSON (write null for a missing value)")


def read_json(path):
    """Read a UTF-8 JSON file of at most :data:`MAX_JSON_BYTES`, strictly.

    Refused with one sentence rather than an exception from deep inside the
    parser: files over the size limit, invalid UTF-8 or JSON, ``NaN`` and
    ``Infinity`` (not JSON), numbers too large for a float, integers of more
    than :data:`MAX_JSON_INT_DIGITS` digits, and nesting deeper than Python's
    recursion limit.

    Raises
    ------
    ApftoolsIOError
        If the file is missing, is a directory, or cannot be opened.
    ApftoolsValueError
        If it is too large or not acceptable JSON; the message names the
        file and says why (with line and column for syntax errors).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise _io_error("read", path, exc) from exc
    if len(data) > MAX_JSON_BYTES:
        raise ApftoolsValueError(f"{path!r} is larger than {MAX_JSON_BYTES} bytes; it is not an apftools JSON file")
    try:
        return json.loads(data.decode("utf-8"), parse_int=_json_int, parse_float=_json_float,
                          parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise ApftoolsValueError(
            f"{path!r} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise ApftoolsValueError(f"{path!r} is not valid JSON: not UTF-8 text ({exc.reason})") from exc
    except RecursionError:
        raise ApftoolsValueError(f"{path!r} is nested too deeply to be an apftools JSON file") from None
    except ApftoolsValueError as exc:
        raise ApftoolsValueError(f"{path!r} {exc}") from None


def check_writable(path):
    """Raise unless a file can be created at ``path`` now (its folder exists and takes a new file).

    Probes by creating and removing a hidden file beside ``path``: the one
    check that sees read-only mounts, immutable folders and permissions
    alike.  Call it before long work, so a bad output location fails at
    once, not after the fit.

    Raises
    ------
    ApftoolsValueError
        If ``path`` is empty.
    ApftoolsIOError
        If ``path`` is a folder, its folder does not exist, or nothing can be
        written there (the message says why).
    """
    path = os.fspath(path)
    if not path:
        raise ApftoolsValueError("the output path is empty; give a file name")
    if os.path.isdir(path):
        raise ApftoolsIOError(f"cannot write {path!r}: it is a folder; give a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ApftoolsIOError(f"cannot write {path!r}: folder {directory!r} does not exist")
    probe = _temporary_name(directory, ".apftools-probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise _io_error("write", path, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)


def _exchange(a, b):
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), b)


class OutputFolder:
    """A run's output files, put in place together: all of this run's outputs, or no change at all.

    The files are written into a hidden staging folder beside ``path``
    (``.{name}.tmp-{random}``, same file system) and the staging folder
    replaces ``path`` in one rename when the block ends without an error:
    on Linux an atomic exchange, elsewhere two renames whose interruption is
    repaired on the way out.  An error or interruption (``KeyboardInterrupt``
    or any other exception) removes the staging folder and leaves ``path`` as
    it was.  Outputs of an earlier run that this run does not write are gone
    afterwards, since the folder is replaced whole.

    Checked at construction, before any work, so a bad location fails at once:
    ``path`` is not empty and not a file; an existing folder holds only names
    in ``owned`` (anything else would be lost with the old folder, so it is
    refused) and, unless ``overwrite``, none of them; no input lies inside it.

    Parameters
    ----------
    path : str or os.PathLike
        The output folder; missing parent folders are created on entry (and
        removed again if the run fails).
    owned : iterable of str
        Every file name a run may write there.
    overwrite : bool
        Replace an earlier run's outputs.
    inputs : iterable of paths
        Files the run reads; they must not lie inside ``path``.

    Examples
    --------
    >>> with OutputFolder("out", ["a.json"]) as folder:  # doctest: +SKIP
    ...     write_json(folder.path("a.json"), {"x": 1})
    """

    def __init__(self, path, owned, *, overwrite=False, inputs=()):
        path = os.fspath(path)
        if not path:
            raise ApftoolsValueError("the output folder is empty; give a folder name")
        self.target = os.path.abspath(path)
        self.name = path
        self.staging = None
        self._created = []
        owned = set(owned)
        if os.path.lexists(self.target) and not os.path.isdir(self.target):
            raise ApftoolsIOError(f"cannot write into {path!r}: it is a file, not a folder")
        for source in inputs:
            inside = os.path.realpath(source).startswith(os.path.realpath(self.target) + os.sep)
            if inside or any(same_file(source, os.path.join(self.target, name)) for name in owned):
                raise ApftoolsIOError(f"the input {os.fspath(source)!r} lies inside the output folder {path!r}; "
                                      "inputs are never overwritten: choose another output folder")
        if os.path.isdir(self.target):
            try:
                entries = sorted(os.listdir(self.target))
            except OSError as exc:
                raise _io_error("read", path, exc) from exc
            foreign = [entry for entry in entries if entry not in owned]
            if foreign:
                raise ApftoolsIOError(
                    f"the output folder {path!r} holds files apftools did not write ({_short_list(foreign)}); "
                    "they would be lost when the folder is replaced: choose a new or empty folder")
            if entries and not overwrite:
                raise ApftoolsExistsError(f"the output folder {path!r} holds an earlier run's outputs "
                                          f"({_short_list(entries)})")
        self._missing = []  # parent folders to create, nearest first
        ancestor = os.path.dirname(self.target)
        while not os.path.isdir(ancestor):
            if os.path.lexists(ancestor):
                raise ApftoolsIOError(f"cannot create {path!r}: {ancestor!r} is a file, not a folder")
            self._missing.append(ancestor)
            ancestor = os.path.dirname(ancestor)

    def path(self, name):
        """Where to write the output file ``name`` during the run."""
        return os.path.join(self.staging, name)

    def __enter__(self):
        try:
            for folder in reversed(self._missing):
                self._created.append(folder)
                os.mkdir(folder)
            # named before it exists, so that a signal just after the mkdir still finds it to remove
            self.staging = _temporary_name(os.path.dirname(self.target), os.path.basename(self.target))
            os.mkdir(self.staging)
            if os.path.isdir(self.target):
                _probe(self.target)
        except BaseException as exc:
            if self.staging is not None:
                shutil.rmtree(self.staging, ignore_errors=True)
                self.staging = None
            self._remove_created()
            if isinstance(exc, OSError):
                raise _io_error("write into", self.name, exc) from exc
            raise
        return self

    def __exit__(self, exc_type, exc, traceback):
        committed = False
        with _interrupt.deferred():  # a signal waits until the outputs are swapped and the leftovers removed
            try:
                if exc_type is None:
                    self._commit()
                    committed = True
            finally:
                if self.staging is not None:
                    shutil.rmtree(self.staging, ignore_errors=True)
                if not committed:
                    self._remove_created()
        return False

    def _commit(self):
        """Put the staging folder at the target; afterwards ``staging`` names what is left to remove."""
        _interrupt.check()
        try:
            if not os.path.isdir(self.target):
                os.rename(self.staging, self.target)
                self.staging = None
            elif not _exchange(self.staging, self.target):  # after an exchange, staging holds the old outputs
                old = _temporary_name(os.path.dirname(self.target), os.path.basename(self.target))
                try:
                    os.rename(self.target, old)
                    os.rename(self.staging, self.target)
                except BaseException:
                    if os.path.lexists(old) and not os.path.lexists(self.target):
                        os.rename(old, self.target)  # the earlier outputs go back
                    raise
                self.staging = old
        except OSError as error:
            raise _io_error("write into", self.name, error) from error

    def _remove_created(self):
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def _short_list(names, limit=5):
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


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
