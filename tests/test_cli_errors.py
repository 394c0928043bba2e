"""A battery of bad command lines: each fails with one line naming the problem, no traceback, nothing written.

Every case runs in one workspace of inputs, models and an earlier run's
outputs; the whole workspace (hidden files included) must be byte-for-byte
the same afterwards, so a case that created, changed or left a temporary
file fails.
"""

import json
import shlex
import shutil

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from apftools.cli import main
from apftools.synthetic import make_pair

FS = 48000


def write(path, data, fs=FS):
    soundfile.write(str(path), np.atleast_2d(data).T, fs, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Inputs, good and bad models, and an earlier run's output folder."""
    root = tmp_path_factory.mktemp("workspace")
    pair = make_pair("2w", FS, 1.0, delay_samples=9.0, rng=5)
    write(root / "dry.wav", pair.dry)
    write(root / "wet.wav", pair.wet)
    write(root / "dry3.wav", np.vstack([pair.dry] * 3))
    write(root / "wet2.wav", np.vstack([pair.wet] * 2))
    write(root / "wet44.wav", pair.wet, 44100)
    nan = pair.dry.copy()
    nan[0, 100] = np.nan
    write(root / "nan.wav", nan)
    write(root / "silent.wav", np.zeros_like(pair.dry))
    write(root / "noise.wav", np.random.default_rng(9).standard_normal(pair.dry.shape))  # unrelated to dry.wav
    write(root / "dc.wav", np.full_like(pair.dry, 0.5))
    write(root / "short.wav", pair.dry[:, : FS // 10])
    (root / "text.wav").write_text("not audio\n")
    (root / "maybe.csv").write_text("dry,wet,causal\ndry.wav,wet.wav,maybe\n")
    (root / "file").write_text("a file, not a folder\n")
    result = CliRunner().invoke(main, ["-q", "align", str(root / "dry.wav"), str(root / "wet.wav"),
                                       "-o", str(root / "earlier"), "--sections", "2w"])
    assert result.exit_code == 0, result.stderr
    good = json.loads((root / "earlier" / "model.json").read_text())
    per_channel = dict(good, channels=[0, 1], dry_channels=2, models=good["models"] * 2)

    def model(name, edit=None, text=None):
        data = json.loads(json.dumps(good))
        if edit:
            edit(data)
        (root / name).write_text(text if text is not None else json.dumps(data))

    model("per_channel.json", lambda d: d.update(per_channel))
    model("delay.json", lambda d: d["models"][0].update(delay_samples=1e15))
    model("nocascade.json", lambda d: d["models"][0].pop("cascade"))
    model("warp.json", lambda d: d["models"][0]["cascade"]["sections"][0].update(a=1.0))
    model("bigint.json", text='{"format": "apftools.alignment", "version": ' + "9" * 5000 + "}")
    model("deep.json", text="[" * 100_000 + "]" * 100_000)
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("mine\n")
    (root / "inside").mkdir()
    shutil.copy(root / "dry.wav", root / "inside" / "aligned.wav")
    write(root / "existing.wav", pair.dry)
    (root / "existing.png").write_bytes(b"old")
    return root


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


# (arguments with {w} for the workspace, words the message must contain, exit status)
CASES = {
    "align: dry missing": ("align {w}/missing.wav {w}/wet.wav -o {w}/o", ["missing.wav", "no such file"], 1),
    "align: wet missing": ("align {w}/dry.wav {w}/missing.wav -o {w}/o", ["missing.wav", "no such file"], 1),
    "align: not audio": ("align {w}/text.wav {w}/wet.wav -o {w}/o", ["text.wav", "not an audio file"], 1),
    "align: 3 into 2 channels": ("align {w}/dry3.wav {w}/wet2.wav -o {w}/o", ["dry has 3 channels and wet 2"], 1),
    "align: NaN samples": ("align {w}/nan.wav {w}/wet.wav -o {w}/o", ["nan.wav", "NaN/Inf"], 1),
    "align: silent dry": ("align {w}/silent.wav {w}/wet.wav -o {w}/o", ["dry", "silent"], 1),
    "align: too short": ("align {w}/short.wav {w}/short.wav -o {w}/o", ["too short", "0.25 s"], 1),
    "align: unrelated wet": ("align {w}/dry.wav {w}/noise.wav -o {w}/o", ["nothing to align", "coherence 0.0"], 1),
    "align: DC only": ("align {w}/dc.wav {w}/dc.wav -o {w}/o", ["nothing to align", "coherence 0.00"], 1),
    "align: other rate": ("align {w}/dry.wav {w}/wet44.wav -o {w}/o", ["44100 Hz", "--resample"], 1),
    "align: bad spec": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --sections 3x7q", ["'3x7q'", "cascade spec"], 2),
    "align: zero sections": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --sections 0x2", ["0 section"], 2),
    "align: too many sections": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --sections 300x2", ["1 to 256"], 2),
    "align: stretch too large": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --sections 2sw2000", ["[1, 1053]"], 2),
    "align: causal with '|'": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --causal --sections 2w|1w",
                               ["--sections", "causal mode"], 2),
    "align: mix above 1": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --mix 1.5", ["--mix", "1.5"], 2),
    "align: zero max delay": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --max-delay-ms 0", ["--max-delay-ms"], 2),
    "align: max delay over 10 s": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --max-delay-ms 20000",
                                   ["--max-delay-ms", "20000", "10000"], 2),
    "align: negative seed": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --seed -1", ["--seed", "-1"], 2),
    "align: --link with --per-channel": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --link --per-channel",
                                         ["--link", "--per-channel", "exclude"], 2),
    "align: unknown loss": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --loss l1", ["--loss", "l1"], 2),
    "align: bad layers": ("align {w}/dry.wav {w}/wet.wav -o {w}/o --layers a,b", ["--layers", "a,b"], 2),
    "align: empty output": ("align {w}/dry.wav {w}/wet.wav -o ''", ["output folder is empty"], 1),
    "align: output is a file": ("align {w}/dry.wav {w}/wet.wav -o {w}/file", ["file"], 2),
    "align: output under a file": ("align {w}/dry.wav {w}/wet.wav -o {w}/file/out", ["is a file, not a folder"], 1),
    "align: earlier outputs": ("align {w}/dry.wav {w}/wet.wav -o {w}/earlier",
                               ["earlier run's outputs", "pass --force to"], 1),
    "align: foreign files": ("align {w}/dry.wav {w}/wet.wav -o {w}/foreign --force",
                             ["notes.txt", "apftools did not write"], 1),
    "align: input inside output": ("align {w}/inside/aligned.wav {w}/wet.wav -o {w}/inside --force",
                                   ["aligned.wav", "inputs are never overwritten"], 1),
    "align: unwritable place": ("align {w}/dry.wav {w}/wet.wav -o /proc/apftools-test/out",
                                ["/proc/apftools-test/out"], 1),
    "apply: model missing": ("apply {w}/missing.json {w}/dry.wav -o {w}/o.wav", ["missing.json", "no such file"], 1),
    "apply: model is audio": ("apply {w}/dry.wav {w}/dry.wav -o {w}/o.wav", ["dry.wav", "not UTF-8"], 1),
    "apply: delay 1e15": ("apply {w}/delay.json {w}/dry.wav -o {w}/o.wav", ["delay_samples", "10 s"], 1),
    "apply: cascade key missing": ("apply {w}/nocascade.json {w}/dry.wav -o {w}/o.wav", ["missing ['cascade']"], 1),
    "apply: warp 1.0": ("apply {w}/warp.json {w}/dry.wav -o {w}/o.wav", ["a=1.0 is outside [-0.9, 0.9]"], 1),
    "apply: huge integer": ("apply {w}/bigint.json {w}/dry.wav -o {w}/o.wav", ["integer of 5000 digits"], 1),
    "apply: deep nesting": ("apply {w}/deep.json {w}/dry.wav -o {w}/o.wav", ["nested too deeply"], 1),
    "apply: other rate": ("apply {w}/earlier/model.json {w}/wet44.wav -o {w}/o.wav", ["44100 Hz", "48000 Hz"], 1),
    "apply: channel count": ("apply {w}/per_channel.json {w}/dry.wav -o {w}/o.wav",
                             ["dry with 2 channel(s)", "has 1"], 1),
    "apply: output exists": ("apply {w}/earlier/model.json {w}/dry.wav -o {w}/existing.wav",
                             ["existing.wav", "--force"], 1),
    "apply: output is the input": ("apply {w}/earlier/model.json {w}/dry.wav -o {w}/dry.wav --force",
                                   ["inputs are never overwritten"], 1),
    "apply: output folder missing": ("apply {w}/earlier/model.json {w}/dry.wav -o {w}/nope/o.wav",
                                     ["nope", "does not exist"], 1),
    "apply: empty output": ("apply {w}/earlier/model.json {w}/dry.wav -o ''", ["output path is empty"], 1),
    "apply: output is a folder": ("apply {w}/earlier/model.json {w}/dry.wav -o {w}/foreign", ["foreign"], 2),
    "response: bad model": ("response {w}/warp.json", ["warp.json", "a=1.0"], 1),
    "sweep: too long": ("sweep -o {w}/s.wav --fs 48000 --seconds 1e6", ["GiB", "--seconds"], 1),
    "sweep: fractional rate": ("sweep -o {w}/s.wav --fs 44100.5", ["fs=44100.5", "whole number"], 1),
    "batch: audio as manifest": ("batch {w}/dry.wav -o {w}/o", ["not a CSV manifest"], 1),
    "batch: causal=maybe": ("batch {w}/maybe.csv -o {w}/o", ["line 2", "causal='maybe'"], 1),
    "response: plot exists": ("response {w}/earlier/model.json --plot {w}/existing.png",
                              ["existing.png", "--force"], 1),
}


def test_the_battery_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_command_line_fails_cleanly_and_changes_nothing(workspace, name):
    template, words, status = CASES[name]
    args = [arg.replace("{w}", str(workspace)) for arg in shlex.split(template)]
    before = snapshot(workspace)
    result = CliRunner().invoke(main, ["--quiet", *args])
    assert result.exit_code == status, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit)  # not an uncaught exception
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ")
    if status == 1:
        assert len(lines) == 1, lines  # usage errors (status 2) add click's usage lines above
    for word in words:
        assert word in lines[-1], (word, lines[-1])
    assert "overwrite=True" not in lines[-1]  # the command line's terms, not Python's
    assert snapshot(workspace) == before
