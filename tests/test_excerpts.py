"""Long files: analysis on loud excerpts spread over the file, delay drift, the command line end to end."""

import json

import numpy as np
import scipy.signal
import soundfile
from click.testing import CliRunner

from apftools import Alignment
from apftools.cli import main
from apftools.delay import apply_delay
from apftools.excerpts import FADE_S, Analysis, choose_spans, delay_drift, read_for_analysis
from apftools.io import AudioReader
from apftools.render import ArrayReader

FS = 8000


def test_each_part_gives_its_loudest_window():
    energy = np.ones(60)
    energy[[5, 33, 50]] = 100.0  # one loud second in each of three parts of 20 s
    spans = choose_spans(energy, FS, 60 * FS, n_excerpts=3, length=4 * FS)
    assert all(a <= loud * FS < b for (a, b), loud in zip(spans, (5, 33, 50)))
    assert all(b - a == 4 * FS and 0 <= a < b <= 60 * FS for a, b in spans)
    assert [a // (20 * FS) for a, _ in spans] == [0, 1, 2]  # one per part, in order


def test_short_pairs_are_read_whole_and_long_ones_in_excerpts():
    rng = np.random.default_rng(0)
    short = read_for_analysis(ArrayReader(rng.standard_normal((1, 10 * FS)), FS),
                              ArrayReader(rng.standard_normal((1, 9 * FS)), FS))
    assert short.spans is None and short.dry.shape == (1, 10 * FS) and short.wet.shape == (1, 9 * FS)
    dry = rng.standard_normal((2, 100 * FS))
    long = read_for_analysis(ArrayReader(dry, FS), ArrayReader(2 * dry, FS), n_excerpts=4, excerpt_s=5)
    assert len(long.spans) == 4 and long.dry.shape == (2, 20 * FS)
    np.testing.assert_array_equal(long.wet, 2 * long.dry)  # the same ranges of both files
    a, b = long.spans[2]
    fade = int(FADE_S * FS)  # each excerpt fades in and out, a raised cosine, and is the file's samples between
    np.testing.assert_array_equal(long.dry[:, 10 * FS + fade:15 * FS - fade], dry[:, a + fade:b - fade])
    ramp = np.sin(0.5 * np.pi * np.linspace(0.0, 1.0, fade)) ** 2
    np.testing.assert_allclose(long.dry[:, 10 * FS:10 * FS + fade], dry[:, a:a + fade] * ramp, rtol=1e-15)
    np.testing.assert_allclose(long.dry[:, 15 * FS - fade:15 * FS], dry[:, b - fade:b] * ramp[::-1], rtol=1e-15)


def test_a_delay_that_changes_along_the_file_is_reported():
    rng = np.random.default_rng(1)
    parts = [rng.standard_normal((1, 5 * FS)) for _ in range(3)]
    spans = [(0, 5 * FS), (20 * FS, 25 * FS), (40 * FS, 45 * FS)]
    steady = Analysis(np.concatenate(parts, 1), np.concatenate([apply_delay(p, 12.0) for p in parts], 1), spans)
    delays, warning = delay_drift(steady, FS, 0.05)
    assert warning is None and np.allclose(delays, 12.0, atol=0.05)
    drifting = Analysis(steady.dry, np.concatenate([apply_delay(p, d) for p, d in zip(parts, (12, 12, 20))], 1),
                        spans)
    delays, warning = delay_drift(drifting, FS, 0.05)
    assert np.allclose(delays, [12, 12, 20], atol=0.05)
    assert "drifts across the file: 12.0 to 20.0 samples" in warning
    mono_into_stereo = Analysis(drifting.dry, np.concatenate([drifting.wet, -drifting.wet]), spans)
    assert np.allclose(delay_drift(mono_into_stereo, FS, 0.05)[0], [12, 12, 20], atol=0.05)


def test_a_long_file_is_aligned_on_excerpts_and_rendered_whole(tmp_path):
    rng = np.random.default_rng(2)
    n = 70 * FS  # longer than WHOLE_FILE_S: six excerpts of 6 s
    dry = 0.2 * rng.standard_normal(n)
    sos = scipy.signal.butter(2, 300, "highpass", fs=FS, output="sos")
    wet = apply_delay(scipy.signal.sosfilt(sos, dry), 10.0)
    soundfile.write(tmp_path / "dry.wav", dry, FS, subtype="FLOAT")
    soundfile.write(tmp_path / "wet.wav", wet, FS, subtype="FLOAT")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["align", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"), "-o", str(out),
                                       "--mix", "0.5"])
    assert result.exit_code == 0, result.output
    assert "analysed 6 excerpt(s), 36 s of the file" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["analysis"]["whole_file"] is False and len(report["analysis"]["excerpts_s"]) == 6
    assert report["analysis"]["file_seconds"] == 70.0
    delays = report["analysis"]["excerpt_delays_samples"]  # GCC-PHAT's: 10 plus the high-pass's small lead
    assert np.ptp(delays) < 0.01 and np.allclose(delays, 10.0, atol=0.2)
    assert report["after"]["mix_deficit_db"] > -0.05
    with AudioReader(out / "aligned.wav") as aligned:
        assert aligned.frames == n
        model = Alignment.load(out / "model.json")
        dry32 = dry.astype(np.float32).astype(float)
        np.testing.assert_allclose(aligned.read(0, n)[0], model.apply(dry32), atol=1e-6)  # float32 file
    mix, _ = soundfile.read(out / "mix.wav")
    np.testing.assert_allclose(mix, 0.5 * model.apply(dry32) + 0.5 * wet.astype(np.float32), atol=1e-6)
