"""apftools bench, the real-effects runner, on cases made here and on the shipped real cases (no plugins needed).

Hand values: an identical wet scores 0 dB everywhere; a wet 90 degrees off
at every frequency -3.01 dB; an inverted wet the floor, which delay and
polarity alignment lifts back to 0 dB.  An external aligner that copies the
dry must score exactly like ``raw``.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile

from click.testing import CliRunner

from apftools import bench
from apftools.cli import main
from apftools.metrics import MIN_DB
from apftools.synthetic import make_pair, pink_noise

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real"
FS = 48000


def write(folder, dry, wet, fs=FS, meta=None):
    folder.mkdir(parents=True)
    soundfile.write(folder / "dry.wav", np.atleast_2d(dry).T, fs, subtype="FLOAT")
    soundfile.write(folder / "wet.wav", np.atleast_2d(wet).T, fs, subtype="FLOAT")
    if meta is not None:
        (folder / "meta.json").write_text(json.dumps(meta))


def run(cases, tmp_path, *args):
    """``apftools bench`` on ``cases``; returns the rows it wrote with --json."""
    out = tmp_path / "rows.json"
    result = CliRunner().invoke(main, ["bench", str(cases), "--json", str(out), *map(str, args)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def by(rows, case, method, channel="all"):
    (row,) = [r for r in rows if r["case"] == case and r["method"] == method and r["channel"] == channel]
    return row


@pytest.fixture(scope="module")
def hand_cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("hand")
    x = np.random.default_rng(0).standard_normal(2 * FS)  # white: the FFT Hilbert transform errs only near DC
    write(root / "identical", x, x)
    write(root / "quadrature", x, np.imag(scipy.signal.hilbert(x)))
    write(root / "inverted", x, -x)
    return root


def test_hand_values(hand_cases, tmp_path):
    rows = run(hand_cases, tmp_path, "--methods", "raw,delay-polarity")
    identical, inverted = by(rows, "identical", "raw"), by(rows, "inverted", "raw")
    assert identical["mix_deficit_db"] == pytest.approx(0.0, abs=1e-9)
    assert identical["worst_band_db"] == pytest.approx(0.0, abs=1e-9) and identical["harm_db"] == 0.0
    assert by(rows, "quadrature", "raw")["mix_deficit_db"] == pytest.approx(-3.0103, abs=0.02)
    assert inverted["mix_deficit_db"] == MIN_DB and inverted["phase_error_deg"] == pytest.approx(180.0)
    assert by(rows, "inverted", "delay-polarity")["mix_deficit_db"] == pytest.approx(0.0, abs=1e-9)
    assert set(rows[0]) >= set(bench.KEYS)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Two synthetic cases with a known answer and one committed real case."""
    root = tmp_path_factory.mktemp("cases")
    eq = make_pair("2x2w", FS, 2.0, delay_samples=25.0, polarity=-1, rng=1)
    write(root / "synthetic-eq", eq.dry, eq.wet, meta={"expect": "alignable"})
    stereo = make_pair("2w", FS, 2.0, delay_samples=-7.0, polarity=1, n_channels=2, rng=2)
    write(root / "synthetic-stereo", stereo.dry, stereo.wet)
    mono = pink_noise(2 * FS, FS, np.random.default_rng(3))[0]  # a mono source through a stereo effect
    write(root / "synthetic-mono-into-stereo", mono, np.stack([np.roll(mono, 5), -mono]))
    (root / "x42-phaserotate-90-guitar-48k").symlink_to(REAL / "x42-phaserotate-90-guitar-48k")
    (root / "not-a-case").mkdir()  # no dry/wet: ignored
    return root


@pytest.fixture(scope="module")
def rows(cases, tmp_path_factory):
    copy = tmp_path_factory.mktemp("tool") / "copy.py"
    copy.write_text("import shutil, sys\nshutil.copy(sys.argv[1], sys.argv[2] + '/aligned.wav')\n")
    return run(cases, tmp_path_factory.mktemp("out"), "--methods", "raw,delay-polarity,oracle,lbfgs,cmd",
               "--cmd", f"{sys.executable} {copy} {{dry}} {{out}}", "--plot", tmp_path_factory.mktemp("p") / "q.png")


def test_every_case_method_and_channel_has_a_row(rows):
    names = {"synthetic-eq", "synthetic-stereo", "synthetic-mono-into-stereo", "x42-phaserotate-90-guitar-48k"}
    assert {r["case"] for r in rows} == names
    assert {r["channel"] for r in rows if r["case"] == "synthetic-stereo"} == {"0", "1", "all"}
    assert all(r["error"] is None for r in rows)
    assert by(rows, "synthetic-eq", "raw")["expect"] == "alignable"


def test_an_external_aligner_that_copies_the_dry_scores_like_raw(rows):
    # a mono aligned.wav for a stereo wet (the dry copied) serves every wet channel, as raw's dry does
    for raw in [r for r in rows if r["method"] == "raw"]:
        cmd = by(rows, raw["case"], "cmd", raw["channel"])
        for key in ("mix_deficit_db", "worst_band_db", "worst_band_hz", "phase_error_deg", "harm_db"):
            assert cmd[key] == raw[key], key


def test_oracle_bounds_the_static_aligners_and_apftools_fixes_the_synthetic_cases(rows):
    for case in ("synthetic-eq", "synthetic-stereo", "x42-phaserotate-90-guitar-48k"):
        oracle = by(rows, case, "oracle")
        assert oracle["mix_deficit_db"] > -0.05 and oracle["worst_band_db"] > -0.3
        for method in ("raw", "delay-polarity", "lbfgs"):
            assert by(rows, case, method)["mix_deficit_db"] <= oracle["mix_deficit_db"] + 0.01
    for case in ("synthetic-eq", "synthetic-stereo"):  # a perfect fit exists, but the default spec has 7 sections
        lbfgs = by(rows, case, "lbfgs")  # for effects of 1 or 2, and its search ends within 0.1 dB of it
        assert lbfgs["mix_deficit_db"] > -0.1 and lbfgs["worst_band_db"] > by(rows, case, "raw")["worst_band_db"]
        assert lbfgs["max_group_delay_ms"] != 0.0 and lbfgs["seconds"] > 0.0


def test_the_real_rotator_is_misaligned_by_delay_and_polarity_alone(rows):
    # phaserotate: 1792 samples of latency and 90 degrees everywhere: GCC-PHAT's lag and sign leave a deep notch
    case = "x42-phaserotate-90-guitar-48k"
    assert by(rows, case, "raw")["worst_band_db"] < -10.0
    assert by(rows, case, "delay-polarity")["worst_band_db"] < -3.0


def test_failures_are_rows_and_the_run_goes_on(tmp_path):
    root = tmp_path / "cases"
    x = pink_noise(FS, FS, np.random.default_rng(3))
    write(root / "mono-into-stereo", x, np.vstack([x, -x]))
    write(root / "rates", x, x, fs=FS)
    soundfile.write(root / "rates" / "wet.wav", x.T, 44100, subtype="FLOAT")
    rows = run(root, tmp_path, "--methods", "raw,lbfgs,cmd", "--cmd", "false {dry} {wet} {out}")
    assert "44100 Hz" in by(rows, "rates", "raw")["error"]
    assert by(rows, "mono-into-stereo", "raw")["error"] is None  # the runner scores 1 -> 2 channels itself
    assert by(rows, "mono-into-stereo", "raw", "1")["mix_deficit_db"] == MIN_DB
    assert "exit 1" in by(rows, "mono-into-stereo", "cmd")["error"]


def test_the_table_has_a_row_per_case_and_the_summary(rows):
    table = bench.markdown(rows, ["raw", "oracle", "lbfgs"])
    lines = table.splitlines()
    assert lines[0] == "| case | expect | raw | oracle | lbfgs |"
    assert sum(line.startswith("| synthetic-") for line in lines) == 3
    assert any(line.startswith("| **within 0.5 dB of oracle** | | 0/4 | 4/4 |") for line in lines)


def test_your_aligner_from_python_and_the_shipped_cases_by_default():
    def copy_of_the_dry(dry, wet, fs):  # one channel serves every wet channel
        return dry[:1]

    done = []
    rows = bench.run(methods=["raw"], aligners={"mine": copy_of_the_dry}, only=["mono-into-stereo-wider-guitar-48k"],
                     progress=lambda *args: done.append(args))
    assert done == [(1, 1, "mono-into-stereo-wider-guitar-48k")]
    assert {(r["method"], r["channel"]) for r in rows} == {(m, c) for m in ("raw", "mine") for c in ("0", "1", "all")}
    for raw in [r for r in rows if r["method"] == "raw"]:
        mine = by(rows, raw["case"], "mine", raw["channel"])
        assert (mine["mix_deficit_db"], mine["worst_band_db"], mine["error"]) == (raw["mix_deficit_db"],
                                                                                raw["worst_band_db"], None)
    assert len(bench.find_cases(bench.shipped_cases())) == 12


def test_bad_methods_are_refused_in_the_callers_terms(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--methods", "raw,nope"])
    assert result.exit_code == 2 and "--methods" in result.output and "nope" in result.output
    with pytest.raises(ValueError, match="needs a command template"):
        bench.run(methods=["cmd"])
    with pytest.raises(ValueError, match="no case folders"):
        bench.run(tmp_path)


def test_apftools_bench_on_the_shipped_cases_reproduces_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("| case | expect | raw | delay-polarity | oracle | lbfgs | lbfgs-causal |\n|---|")
    stated = readme[start:readme.index("```", start)].strip().splitlines()
    printed = bench.markdown(bench.run(), list(bench.DEFAULT_METHODS)).splitlines()
    assert len(printed) == len(stated)
    for mine, theirs in zip(printed, stated):
        if "median seconds" in theirs:  # the one row that depends on the machine
            continue
        cells, expected = mine.split("|"), theirs.split("|")
        assert [c for c in cells if not _number(c)] == [c for c in expected if not _number(c)], theirs
        for a, b in zip(cells, expected):
            if _number(b):  # worst bands and deficits in dB: the same fits on any machine, printed to 0.01
                assert abs(float(a) - float(b)) <= 0.02, theirs


def _number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True
