"""Tests of apftools.io: audio and JSON round trips, validation, atomic writes."""

import os

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as hs

from apftools.errors import ApftoolsError, ApftoolsIOError, ApftoolsTypeError, ApftoolsValueError
from apftools.io import atomic_write, read_audio, read_json, same_file, write_audio, write_json

FS = 48000


@pytest.fixture
def stereo():
    """Two channels of noise at up to +12 dBFS, plus exact ±1."""
    rng = np.random.default_rng(0)
    data = rng.uniform(-4.0, 4.0, (2, 1000))
    data[:, :2] = [[1.0, -1.0], [-1.0, 1.0]]
    return data


def test_wav_round_trip_is_float32_exact_and_unclipped(tmp_path, stereo):
    path = tmp_path / "x.wav"
    write_audio(path, stereo, FS)
    data, fs = read_audio(path)
    assert fs == FS and isinstance(fs, int)
    assert data.dtype == np.float64 and data.shape == (2, 1000)
    np.testing.assert_array_equal(data, stereo.astype(np.float32))
    assert data.max() > 3.9  # above 0 dBFS survives
    assert soundfile.info(str(path)).subtype == "FLOAT"


def test_mono_is_returned_two_dimensional(tmp_path):
    write_audio(tmp_path / "m.WAV", np.array([0.5, -0.25, 0.0]), 8000.0)
    data, fs = read_audio(tmp_path / "m.WAV")
    np.testing.assert_array_equal(data, [[0.5, -0.25, 0.0]])
    assert fs == 8000


def test_flac_is_24_bit_within_one_step(tmp_path, stereo):
    data = np.clip(stereo, -1.0, 1.0)
    write_audio(tmp_path / "x.flac", data, FS)
    read, fs = read_audio(tmp_path / "x.flac")
    assert fs == FS
    assert soundfile.info(str(tmp_path / "x.flac")).subtype == "PCM_24"
    # Rounding to a step of 2**-23 (and +1 mapping to the largest code) errs by at most one step.
    assert np.max(np.abs(read - data)) <= 2.0**-23
    assert np.max(np.abs(read - data)) > 0  # it really is quantised


def test_flac_refuses_samples_beyond_full_scale(tmp_path):
    with pytest.raises(ApftoolsValueError, match=r"reach 1\.5, beyond ±1.*write \.wav"):
        write_audio(tmp_path / "x.flac", [0.0, 1.5], FS)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("name", ["x.mp3", "x", "x.wav.txt"])
def test_unsupported_extension(tmp_path, name):
    with pytest.raises(ApftoolsValueError, match=r"unsupported extension .*\['\.flac', '\.wav'\]"):
        write_audio(tmp_path / name, [0.0], FS)


@pytest.mark.parametrize(("fs", "error", "match"), [
    (44100.5, ApftoolsValueError, r"whole number of Hz.*44100\.5"),
    (0, ApftoolsValueError, r"positive"),
    ("48000", ApftoolsTypeError, r"real number"),
])
def test_write_audio_validates_fs(tmp_path, fs, error, match):
    with pytest.raises(error, match=match):
        write_audio(tmp_path / "x.wav", [0.0], fs)


@pytest.mark.parametrize(("data", "match"), [
    (np.zeros((2, 0)), r"at least one sample"),
    (np.zeros((0, 5)), r"at most 1024 channels, got shape \(0, 5\)"),
    (np.zeros((2000, 2)), r"got shape \(2000, 2\)"),
    (np.zeros((1, 2, 3)), r"got shape \(1, 2, 3\)"),
    ([0.0, np.nan], r"NaN or Inf"),
])
def test_write_audio_validates_data(tmp_path, data, match):
    with pytest.raises(ApftoolsValueError, match=match):
        write_audio(tmp_path / "x.wav", data, FS)
    assert not os.listdir(tmp_path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ApftoolsIOError, match=r"cannot read '.*nope\.wav': no such file") as info:
        read_audio(tmp_path / "nope.wav")
    assert isinstance(info.value, ApftoolsError) and isinstance(info.value, OSError)
    with pytest.raises(ApftoolsIOError, match=r"it is a folder"):
        read_audio(tmp_path)


def test_text_file_named_wav_is_a_value_error(tmp_path):
    (tmp_path / "x.wav").write_text("hello\n")
    with pytest.raises(ApftoolsValueError, match=r"'.*x\.wav' is not an audio file soundfile can read "
                                                 r"\(Format not recognised\)") as info:
        read_audio(tmp_path / "x.wav")
    assert isinstance(info.value, ApftoolsError) and isinstance(info.value, ValueError)


def test_empty_wav(tmp_path):
    soundfile.write(str(tmp_path / "e.wav"), np.zeros((0, 2)), FS, subtype="FLOAT")
    with pytest.raises(ApftoolsValueError, match=r"e\.wav' has no samples"):
        read_audio(tmp_path / "e.wav")


def test_non_finite_samples_are_located(tmp_path):
    data = np.zeros((1000, 2))  # soundfile layout: (n_samples, n_channels)
    data[600, 0] = np.nan
    data[250, 1] = np.inf  # earliest, in the second channel
    data[900, 1] = np.nan
    soundfile.write(str(tmp_path / "n.wav"), data, 1000, subtype="FLOAT")
    with pytest.raises(ApftoolsValueError, match=r"contains 3 NaN/Inf samples \(first in channel 2 at 0\.250 s\)"):
        read_audio(tmp_path / "n.wav")


def test_existing_output_refused_then_replaced(tmp_path):
    path = tmp_path / "x.wav"
    write_audio(path, [0.25], FS)
    with pytest.raises(ApftoolsIOError, match=r"x\.wav' exists; pass overwrite=True to replace it$"):
        write_audio(path, [0.5], FS)
    np.testing.assert_array_equal(read_audio(path)[0], [[0.25]])
    write_audio(path, [0.5, 0.75], FS, overwrite=True)
    np.testing.assert_array_equal(read_audio(path)[0], [[0.5, 0.75]])
    assert os.listdir(tmp_path) == ["x.wav"]


def test_missing_parent_directory(tmp_path):
    with pytest.raises(ApftoolsIOError, match=r"directory '.*missing' does not exist"):
        write_audio(tmp_path / "missing" / "x.wav", [0.0], FS)


def test_atomic_write_temporary_name_and_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    with atomic_write(tmp_path / "out.wav") as temporary:
        name = os.path.basename(temporary)
        assert os.path.dirname(temporary) == str(tmp_path)
        assert name.startswith(".out.tmp-") and name.endswith(".wav")
        assert not (tmp_path / "out.wav").exists()  # nothing at the destination until the end
    assert os.listdir(tmp_path) == ["out.wav"]
    if os.name == "posix":
        assert (tmp_path / "out.wav").stat().st_mode & 0o777 == 0o666 & ~umask


def test_failure_mid_write_keeps_original_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("original")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path, overwrite=True) as temporary:
            with open(temporary, "w") as file:
                file.write("half")
            raise RuntimeError("boom")
    assert path.read_text() == "original"
    assert os.listdir(tmp_path) == ["x.json"]


def test_libsndfile_failure_becomes_io_error_without_temporary(tmp_path, monkeypatch):
    def broken(self, data):
        raise soundfile.SoundFileError("disk full")

    monkeypatch.setattr(soundfile.SoundFile, "write", broken)
    with pytest.raises(ApftoolsIOError, match=r"cannot write '.*x\.wav': disk full"):
        write_audio(tmp_path / "x.wav", [0.0], FS)
    assert not os.listdir(tmp_path)


def test_json_round_trip_with_numpy_and_nan(tmp_path):
    obj = {"a": np.float64(1.5), "b": np.arange(3), "c": np.float32(np.nan), "d": (1, np.int64(2)),
           "e": [float("inf"), None, -np.inf], np.int64(5): np.bool_(True), "f": np.array([[0.5, np.nan]]),
           "g": "text"}
    write_json(tmp_path / "r.json", obj)
    text = (tmp_path / "r.json").read_text()
    assert text.startswith('{\n  "a": 1.5,') and text.endswith("}\n")
    assert "NaN" not in text and "Infinity" not in text
    assert read_json(tmp_path / "r.json") == {
        "a": 1.5, "b": [0, 1, 2], "c": None, "d": [1, 2], "e": [None, None, None], "5": True,
        "f": [[0.5, None]], "g": "text"}


def test_write_json_refuses_unserialisable_and_existing(tmp_path):
    with pytest.raises(ApftoolsTypeError, match=r"r\.json' as JSON: Object of type set"):
        write_json(tmp_path / "r.json", {"s": {1, 2}})
    assert not os.listdir(tmp_path)
    write_json(tmp_path / "r.json", [1])
    with pytest.raises(ApftoolsIOError, match=r"exists; pass overwrite=True"):
        write_json(tmp_path / "r.json", [2])
    write_json(tmp_path / "r.json", [2], overwrite=True)
    assert read_json(tmp_path / "r.json") == [2]


def test_read_json_errors(tmp_path):
    with pytest.raises(ApftoolsIOError, match=r"cannot read '.*m\.json': no such file"):
        read_json(tmp_path / "m.json")
    (tmp_path / "bad.json").write_text('{\n  "a": 1,\n  "b": 2\n  "c": 3\n}\n')
    with pytest.raises(ApftoolsValueError,
                       match=r"bad\.json' is not valid JSON: line 4 column 3: Expecting ',' delimiter") as info:
        read_json(tmp_path / "bad.json")
    assert isinstance(info.value, ValueError)
    (tmp_path / "latin.json").write_bytes(b'"\xe9"')
    with pytest.raises(ApftoolsValueError, match=r"not UTF-8"):
        read_json(tmp_path / "latin.json")


def test_same_file(tmp_path, monkeypatch):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_text("a")
    b.write_text("b")
    monkeypatch.chdir(tmp_path)
    assert same_file("a.wav", a)
    assert same_file(str(tmp_path / "sub" / ".." / "a.wav"), a)  # resolved, though "sub" does not exist
    assert not same_file(a, b)
    assert not same_file(a, tmp_path / "c.wav")
    os.symlink(a, tmp_path / "link.wav")
    assert same_file("link.wav", a)


# --- fuzzing the audio reader -----------------------------------------------------------------------------------------

def _audio_bytes(tmp_path, extension, subtype):
    path = tmp_path / f"valid{extension}"
    soundfile.write(str(path), 0.5 * np.sin(np.arange(4800) / 7.0)[:, None].repeat(2, axis=1), 48000, subtype=subtype)
    return path.read_bytes()


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("valid")
    return [(ext, _audio_bytes(folder, ext, subtype)) for ext, subtype in
            ((".wav", "FLOAT"), (".wav", "PCM_16"), (".flac", "PCM_24"), (".aiff", "PCM_24"))]


# 200 examples: each is one libsndfile open of a 20 kB file; the truncation points and byte edits
# cover every header field of the four formats many times over
@settings(max_examples=200)
@given(data=hs.data())
def test_damaged_or_random_audio_is_read_or_refused_with_an_apftools_error(audio_files, tmp_path_factory, data):
    extension, valid = data.draw(hs.sampled_from(audio_files))
    kind = data.draw(hs.sampled_from(["truncate", "overwrite", "random"]))
    if kind == "truncate":
        damaged = valid[:data.draw(hs.integers(0, len(valid)))]
    elif kind == "overwrite":
        start = data.draw(hs.integers(0, len(valid) - 1))
        noise = data.draw(hs.binary(min_size=1, max_size=8))
        damaged = valid[:start] + noise + valid[start + len(noise):]
    else:
        damaged = data.draw(hs.binary(max_size=256))
    path = tmp_path_factory.mktemp("damaged") / f"x{extension}"
    path.write_bytes(damaged)
    try:
        samples, fs = read_audio(path)
    except ApftoolsError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert samples.ndim == 2 and samples.shape[1] > 0 and np.all(np.isfinite(samples)) and fs > 0


@pytest.mark.parametrize("extension, at, edit", [
    (".flac", 22, b"_"),  # shrunk by hypothesis: STREAMINFO's sample count says 1.6e9 (24 GiB to read)
    (".wav", 4, b"\xff\xff\xff\x7f"),  # a RIFF size far beyond the file
])
def test_a_header_announcing_more_than_memory_holds_is_refused_in_one_line(audio_files, tmp_path, extension, at, edit):
    valid = dict(audio_files)[extension]
    path = tmp_path / f"x{extension}"
    path.write_bytes(valid[:at] + edit + valid[at + len(edit):])
    try:
        samples, _ = read_audio(path)
    except ApftoolsError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert samples.shape == (2, 4800)


# --- OutputFolder: all of a run's outputs or no change ---------------------------------------------------------------

def test_output_folder_creates_replaces_whole_and_removes_what_it_made_on_failure(tmp_path):
    from apftools.io import OutputFolder

    target = tmp_path / "a" / "b" / "out"
    with OutputFolder(target, ["x.json", "y.json"]) as folder:
        write_json(folder.path("x.json"), {"run": 1})
        write_json(folder.path("y.json"), {"run": 1})
    assert sorted(p.name for p in target.iterdir()) == ["x.json", "y.json"]
    with pytest.raises(ApftoolsIOError, match=r"earlier run's outputs .*; pass overwrite=True to replace it$"):
        OutputFolder(target, ["x.json", "y.json"])
    with OutputFolder(target, ["x.json", "y.json"], overwrite=True) as folder:
        write_json(folder.path("x.json"), {"run": 2})
    assert [p.name for p in target.iterdir()] == ["x.json"]  # y.json belonged to the earlier run: gone with it
    assert read_json(target / "x.json") == {"run": 2}
    with pytest.raises(RuntimeError):
        with OutputFolder(target, ["x.json"], overwrite=True) as folder:
            write_json(folder.path("x.json"), {"run": 3})
            raise RuntimeError("the fit failed")
    assert read_json(target / "x.json") == {"run": 2}  # unchanged
    with pytest.raises(KeyboardInterrupt):
        with OutputFolder(tmp_path / "new" / "deeper" / "out", ["x.json"]):
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # the parents it made are gone again
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["out"]  # no staging folder left


def test_output_folder_refuses_folders_it_would_damage(tmp_path):
    from apftools.io import OutputFolder

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep\n")
    with pytest.raises(ApftoolsIOError, match=r"holds files apftools did not write \(notes.txt\)"):
        OutputFolder(tmp_path / "mine", ["x.json"], overwrite=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(ApftoolsIOError, match="is a file, not a folder"):
        OutputFolder(tmp_path / "file" / "out", ["x.json"])
    with pytest.raises(ApftoolsIOError, match="inputs are never overwritten"):
        OutputFolder(tmp_path / "mine", ["x.json"], overwrite=True, inputs=[tmp_path / "mine" / "notes.txt"])
    with pytest.raises(ApftoolsValueError, match="output folder is empty"):
        OutputFolder("", ["x.json"])


# --- sample formats: rounded to the nearest step, 16 bits dithered ---------------------------------------------------

@pytest.mark.parametrize("bits", ["32", "24"])
def test_integer_formats_round_to_the_nearest_step(tmp_path, bits):
    from apftools.io import audio_writer

    x = np.random.default_rng(1).uniform(-1, 1, (2, 48000))
    with audio_writer(tmp_path / "x.wav", 48000, 2, bits=bits) as write:
        write(x)
    info = soundfile.info(str(tmp_path / "x.wav"))
    y, _ = read_audio(tmp_path / "x.wav")
    step = 2.0 ** (1 - int(bits))
    assert info.subtype == f"PCM_{bits}" and np.max(np.abs(y - x)) <= step / 2 * (1 + 1e-9)


def test_16_bits_are_tpdf_dithered_unbiased_and_the_same_every_time(tmp_path):
    from apftools.io import audio_writer

    x = 0.3 * np.sin(np.arange(96000) / 9.0)[np.newaxis]
    for name in ("a.flac", "b.flac"):
        with audio_writer(tmp_path / name, 48000, 1, bits="16") as write:
            write(x[:, :50000])
            write(x[:, 50000:])
    y, _ = read_audio(tmp_path / "a.flac")
    error = (y - x) * 32768  # in steps: rounding (variance 1/12) plus TPDF of +-1 step (variance 1/6)
    assert abs(np.mean(error)) < 0.01 and np.std(error) == pytest.approx(0.5, rel=0.02)
    assert np.max(np.abs(error)) <= 1.5 + 1e-9
    assert (tmp_path / "a.flac").read_bytes() == (tmp_path / "b.flac").read_bytes()


def test_sample_formats_a_file_cannot_hold_are_refused(tmp_path):
    from apftools.io import audio_writer

    with pytest.raises(ApftoolsValueError, match="FLAC takes 24, 16"):
        with audio_writer(tmp_path / "x.flac", 48000, 1, bits="32"):
            pass
    with pytest.raises(ApftoolsValueError, match=r"beyond ±1.*16-bit integers cannot hold them"):
        with audio_writer(tmp_path / "x.wav", 48000, 1, bits="16") as write:
            write(np.array([[0.5, 1.25]]))
    assert list(tmp_path.iterdir()) == []
