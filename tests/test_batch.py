"""apftools batch: every pair as align alone would do it, resumable, failures recorded, process pool or Dask."""

import json
import os

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from apftools import ApftoolsValueError
from apftools.batch import COLUMNS, Pair, _run_local, align_many, align_pair, pairs_from_globs, read_manifest
from apftools.cli import main
from apftools.files import AlignOptions, align_files
from apftools.synthetic import make_pair

FS = 48000
SPEC = "2x2w"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three short pairs (delays 10, 11, 12 samples, inverted) and a manifest with a fourth, missing, dry."""
    root = tmp_path_factory.mktemp("batch")
    (root / "dry").mkdir()
    (root / "wet").mkdir()
    for i in range(3):
        pair = make_pair(SPEC, FS, 1.0, delay_samples=10.0 + i, polarity=-1, rng=i)
        soundfile.write(str(root / "dry" / f"take{i}.wav"), pair.dry.T, FS, subtype="FLOAT")
        soundfile.write(str(root / "wet" / f"take{i}.wav"), pair.wet.T, FS, subtype="FLOAT")
    rows = ["dry,wet,name,sections"] + [f"dry/take{i}.wav,wet/take{i}.wav,take{i},{SPEC}" for i in range(3)]
    (root / "manifest.csv").write_text("\n".join(rows + ["dry/gone.wav,wet/take0.wav,gone,"]) + "\n")
    return root


def without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_a_batch_aligns_every_pair_as_align_alone_and_records_failures(folder, tmp_path):
    out = tmp_path / "out"
    rows = align_many(read_manifest(folder / "manifest.csv"), out, workers=2)
    assert [(r["name"], r["status"]) for r in rows] == [("take0", "done"), ("take1", "done"), ("take2", "done"),
                                                        ("gone", "failed")]
    assert "gone.wav" in rows[3]["error"] and rows[3]["delay_samples"] is None
    for i, row in enumerate(rows[:3]):
        assert row["delay_samples"] == pytest.approx(10.0 + i, abs=0.25) and row["polarity"] == -1
        assert row["worst_band_after_db"] > row["worst_band_before_db"] + 10
    alone = align_files(folder / "dry" / "take1.wav", folder / "wet" / "take1.wav", tmp_path / "alone",
                        AlignOptions(sections=SPEC))
    assert json.loads((out / "take1" / "model.json").read_text()) == json.loads(
        (tmp_path / "alone" / "model.json").read_text())
    np.testing.assert_array_equal(soundfile.read(str(out / "take1" / "aligned.wav"))[0],
                                  soundfile.read(str(tmp_path / "alone" / "aligned.wav"))[0])
    assert alone["after"] == json.loads((out / "take1" / "report.json").read_text())["summary"]["after"]
    for row in rows[:3]:  # the warnings themselves, as the pair's summary gives them, not their count
        assert row["warnings"] == " | ".join(
            json.loads((out / row["name"] / "report.json").read_text())["summary"]["warnings"])
    assert json.loads((out / "summary.json").read_text()) == rows
    header, *lines = (out / "summary.csv").read_text().splitlines()
    assert header.split(",") == list(COLUMNS) and len(lines) == 4


def test_a_rerun_skips_complete_pairs_of_the_same_configuration(folder, tmp_path):
    pairs = read_manifest(folder / "manifest.csv")[:2]
    out = tmp_path / "out"
    first = align_many(pairs, out, workers=1)
    again = align_many(pairs, out, workers=1)
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    assert without_seconds(again) == [dict(r, status="skipped") for r in without_seconds(first)]
    reseeded = align_many(pairs, out, workers=1, seed=1)  # another configuration: realigned
    assert [r["status"] for r in reseeded] == ["done", "done"]
    assert [r["status"] for r in align_many(pairs, out, workers=1, seed=1, force=True)] == ["done", "done"]
    (out / "take0" / "aligned.wav").unlink()  # incomplete outputs: realigned
    assert [r["status"] for r in align_many(pairs, out, workers=1, seed=1)] == ["done", "skipped"]


def _dies_once(pair, outdir, options, force):
    """align_pair, except that the worker running 'dies' exits the first time, and 'dies-always' every time."""
    marker = os.path.join(outdir, f".{pair.name}-died")
    if pair.name.startswith("dies") and (pair.name == "dies-always" or not os.path.exists(marker)):
        open(marker, "w").close()
        os._exit(1)
    return align_pair(pair, outdir, options, force)


def test_a_pair_whose_worker_dies_is_retried_once_then_failed(folder, tmp_path):
    dry, wet = folder / "dry" / "take0.wav", folder / "wet" / "take0.wav"
    options = AlignOptions(sections=SPEC)
    rows = {}
    for names in (("dies", "fine"), ("dies-always", "also-fine")):
        tasks = [(Pair(name, str(dry), str(wet)), str(tmp_path), options, False) for name in names]
        _run_local(tasks, 2, lambda row: rows.update({row["name"]: row}), task=_dies_once)
    assert [rows[name]["status"] for name in ("dies", "fine", "also-fine")] == ["done"] * 3
    assert rows["dies-always"]["status"] == "failed" and "died" in rows["dies-always"]["error"]
    assert sorted(os.listdir(tmp_path / "dies")) == ["aligned.wav", "model.json", "report.json"]
    assert not (tmp_path / "dies-always").exists()  # nothing half-written


def test_globs_pair_files_by_name(folder):
    pairs = pairs_from_globs(str(folder / "dry" / "*.wav"), str(folder / "wet" / "*.wav"))
    assert [(p.name, os.path.basename(p.wet)) for p in pairs] == [(f"take{i}", f"take{i}.wav") for i in range(3)]
    with pytest.raises(ApftoolsValueError, match="same names"):
        pairs_from_globs(str(folder / "dry" / "take[01].wav"), str(folder / "wet" / "*.wav"))


def test_manifests_are_checked(tmp_path):
    (tmp_path / "m.csv").write_text("dry,wet,colour\na.wav,b.wav,red\n")
    with pytest.raises(ApftoolsValueError, match=r"unknown column\(s\) \['colour'\]"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "m.csv").write_text("dry,wet\na.wav,b.wav\na.wav,c.wav\n")
    with pytest.raises(ApftoolsValueError, match=r"unique.*\['a'\]"):
        read_manifest(tmp_path / "m.csv")


def test_a_dask_cluster_gives_the_process_pools_summary(folder, tmp_path):
    distributed = pytest.importorskip("distributed")
    pairs = read_manifest(folder / "manifest.csv")
    local = align_many(pairs, tmp_path / "local", workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = align_many(pairs, tmp_path / "dask", client=client)
    assert without_seconds(remote) == without_seconds(local)


def test_the_command_line_reports_and_fails_on_a_failed_pair(folder, tmp_path):
    result = CliRunner().invoke(main, ["batch", str(folder / "manifest.csv"), "-o", str(tmp_path / "out"),
                                       "--workers", "1"])
    assert result.exit_code == 1
    assert "failed: gone:" in result.stdout and "4 pair(s): 3 done, 1 failed, 0 skipped" in result.stdout
    globbed = CliRunner().invoke(main, ["batch", str(folder / "dry" / "*.wav"), str(folder / "wet" / "*.wav"),
                                        "-o", str(tmp_path / "globbed"), "--sections", SPEC, "--workers", "1"])
    assert globbed.exit_code == 0 and "3 pair(s): 3 done" in globbed.stdout
    # batch takes align's options and passes them on
    mixed = CliRunner().invoke(main, ["batch", str(folder / "dry" / "*.wav"), str(folder / "wet" / "*.wav"),
                                      "-o", str(tmp_path / "mixed"), "--sections", SPEC, "--workers", "1",
                                      "--mix", "0.5", "--per-channel", "--max-delay-ms", "5"])
    assert mixed.exit_code == 0, mixed.output
    settings = json.loads((tmp_path / "mixed" / "take0" / "report.json").read_text())["settings"]
    assert (tmp_path / "mixed" / "take0" / "mix.wav").exists() and settings["link"] == "separate"
    assert settings["max_delay_ms"] == 5.0
