"""The saved model: every model.json apftools writes, it reads back; everything malformed is refused in one line.

Round trip: ``apftools align`` on the shipped fixture (whose fit drives ``a``
to +-0.9, ``R`` to 0 and ``fc`` to 20 kHz, the values that were refused
before) and on synthetic pairs chosen to push parameters to their limits
(more sections than the effect needs, first-order only, stretched sections
at 192 kHz, a wet that leads, BiasNet, per-channel); each model is then read
by ``Alignment.load``, ``apftools apply`` and ``apftools response``.
"""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as hs

from apftools import Alignment, ApftoolsError, Cascade
from apftools.cli import main
from apftools.model import MAX_DELAY_S, ChannelModel
from apftools.synthetic import make_pair

DATA = Path(__file__).resolve().parents[1] / "data"


def run(*args):
    return CliRunner().invoke(main, ["--quiet", *map(str, args)])


def write(path, data, fs):
    soundfile.write(str(path), np.atleast_2d(data).T, int(fs), subtype="FLOAT")
    return path


def read(path):
    data, fs = soundfile.read(str(path), dtype="float64", always_2d=True)
    return data.T, fs


# name -> (true spec, fs, seconds, delay, polarity, channels, align options)
SYNTHETIC = {
    "too many sections": ("2x2w", 48000, 1.0, 12.0, -1, 1, ["--sections", "4x2w,1w"]),
    "first order only": ("2", 44100, 1.0, 5.0, 1, 1, ["--sections", "1,1"]),
    "stretched at 192 kHz": ("2sw", 192000, 0.5, 30.0, -1, 1, ["--sections", "2x2sw,1sw"]),
    "wet leads": ("2w", 48000, 1.0, -20.0, 1, 1, ["--sections", "2w,1w"]),
    "biasnet": ("2x2w", 48000, 1.0, 12.0, -1, 1, ["--sections", "2x2w", "--method", "biasnet",
                                                   "--layers", "8,8", "--steps", "30"]),
    "per channel": ("2w", 48000, 1.0, 7.0, -1, 2, ["--sections", "2w", "--per-channel"]),
}


@pytest.fixture(scope="module", params=["fixture"] + sorted(SYNTHETIC))
def aligned(request, tmp_path_factory):
    """(dry path, output folder) of one `apftools align` run."""
    folder = tmp_path_factory.mktemp("roundtrip")
    if request.param == "fixture":
        dry, wet, options = DATA / "dry.flac", DATA / "wet.flac", []
    else:
        spec, fs, seconds, delay, polarity, channels, options = SYNTHETIC[request.param]
        pair = make_pair(spec, fs, seconds, delay_samples=delay, polarity=polarity, n_channels=channels, rng=3)
        dry, wet = write(folder / "dry.wav", pair.dry, fs), write(folder / "wet.wav", pair.wet, fs)
    result = run("align", dry, wet, "-o", folder / "out", *options)
    assert result.exit_code == 0, (result.stderr, result.exception)
    return dry, folder / "out"


def test_every_written_model_loads(aligned):
    _, out = aligned
    data = json.loads((out / "model.json").read_text())
    again = Alignment.load(out / "model.json").to_dict()
    # it writes back what was read: the same keys and strings, numbers to the rounding of tanh/arctanh
    assert [path for path, _ in _leaves(again)] == [path for path, _ in _leaves(data)]
    for (_, got), (path, value) in zip(_leaves(again), _leaves(data)):
        if isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-9, abs=1e-12), path
        else:
            assert got == value, path


def test_apply_of_the_model_reproduces_aligned_wav(aligned, tmp_path):
    dry, out = aligned
    result = run("apply", out / "model.json", dry, "-o", tmp_path / "again.wav")
    assert result.exit_code == 0, result.stderr
    again, _ = read(tmp_path / "again.wav")
    expected, _ = read(out / "aligned.wav")
    np.testing.assert_allclose(again, expected, rtol=0, atol=1e-7)


def test_response_reads_the_model(aligned, tmp_path):
    _, out = aligned
    model = Alignment.load(out / "model.json")
    result = run("response", out / "model.json")
    assert result.exit_code == 0, result.stderr
    # the 1 kHz row states the model's own phase (the first model's, polarity and delay included)
    row = next(line.split() for line in result.stdout.splitlines() if line.split()[:1] == ["1000"])
    phase, _ = model.models[0].response([1000.0], model.fs)
    wrapped = (float(row[1]) - np.degrees(phase[0]) + 180.0) % 360.0 - 180.0
    assert abs(wrapped) < 0.06
    assert run("response", out / "model.json", "--plot", tmp_path / "r.png").exit_code == 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


# --- strict validation ------------------------------------------------------------------------------------------------

def valid_model():
    cascade = Cascade("2w,1w", 48000)
    theta = cascade.theta_from_params([{"R": 0.9, "fc": 500.0, "a": 0.2}, {"fc": 3000.0, "a": -0.1}])
    return Alignment(48000, [ChannelModel(12.5, -1, cascade, theta)]).to_dict()


def cascade_section(d):
    return d["models"][0]["cascade"]["sections"][0]


BAD_MODELS = [
    (lambda d: d["models"][0].update(delay_samples=1e15),
     r"delay_samples=1000000000000000.0 is outside \[-480000, 480000\]"),
    (lambda d: d["models"][0].update(delay_samples=-1e7), r"delay_samples=-10000000.0 is outside"),
    (lambda d: d["models"][0].update(delay_samples="12"), r"delay_samples='12' is not a finite number"),
    (lambda d: d["models"][0].update(delay_samples=True), r"delay_samples=True is not a finite number"),
    (lambda d: d["models"][0].pop("cascade"), r"missing \['cascade'\]"),
    (lambda d: d["models"][0].update(gain=1.0), r"unknown \['gain'\]"),
    (lambda d: d["models"][0].update(polarity=1.0), r"polarity=1.0 must be 1 or -1"),
    (lambda d: d["models"][0].update(polarity=True), r"polarity=True must be 1 or -1"),
    (lambda d: d.pop("fs"), r"missing \['fs'\]"),
    (lambda d: d.pop("method"), r"missing \['method'\]"),
    (lambda d: d.update(method="magic"), r"method='magic' must be one of"),
    (lambda d: d.update(channels=[0, 1], dry_channels=2), r"channels must list, for each of 1 to 1024 output"),
    (lambda d: d.update(channels=[0, 0], dry_channels=3), r"dry_channels=3 must be 1 or 2"),
    (lambda d: d.update(channels=[0, 0]), r"dry_channels=None must be 1 or 2"),
    (lambda d: d.update(dry_channels=1), r"channels=null needs exactly one model and dry_channels=null"),
    (lambda d: d.pop("channels"), r"missing \['channels'\]"),
    (lambda d: d.update(models={}), r"models must be a list of 1 to 1024"),
    (lambda d: d.update(models=[None]), r"models\[0\] must be a JSON object, got NoneType"),
    (lambda d: d.update(version=4), r"not an apftools alignment model .* version 4"),
    (lambda d: d.update(version=[2]), r"not an apftools alignment model .* version \[2\]"),
    (lambda d: d.update(mode="live"), r"mode='live' must be one of offline, causal"),
    (lambda d: d["models"][0].pop("anticausal"), r"missing \['anticausal'\]"),
    (lambda d: d.update(fs="48k"), r"fs must be a real number in Hz, got '48k'"),
    (lambda d: d["models"][0]["cascade"].update(fs=44100.0), r"built for fs=44100 Hz, got a signal at fs=48000"),
    (lambda d: d["models"][0]["cascade"].pop("units"), r"missing \['units'\]"),
    (lambda d: cascade_section(d).update(a=1.0),
     r"models\[0\]\.cascade: section 0 \(2w\): a=1.0 is outside \[-0.9, 0.9\]"),
    (lambda d: cascade_section(d).update(a=1e308), r"a=1e\+308 is outside"),  # shrunk by hypothesis: overflowed
    (lambda d: cascade_section(d).update(R=-0.1), r"R=-0.1 is outside \[0.0, 0.99"),
    (lambda d: cascade_section(d).update(fc=30000.0), r"fc=30000.0 Hz is outside \[20.0, 20000.0\] Hz for a=0.2"),
    (lambda d: cascade_section(d).pop("R"), r"needs parameters \['R', 'fc', 'a'\]"),
]


@pytest.mark.parametrize("edit, message", BAD_MODELS)
def test_malformed_models_are_refused_naming_what_is_wrong(edit, message):
    data = valid_model()
    edit(data)
    with pytest.raises(ApftoolsError, match=message):
        Alignment.from_dict(data)


def test_delays_up_to_the_limit_are_kept():
    data = valid_model()
    data["models"][0]["delay_samples"] = -MAX_DELAY_S * 48000
    assert Alignment.from_dict(data).models[0].delay_samples == -480000


def test_a_fitter_cannot_build_a_model_that_load_would_refuse():
    with pytest.raises(ApftoolsError, match="delay_samples=1000000000000000.0 is outside"):
        Alignment(48000, [ChannelModel(1e15, 1)])
    with pytest.raises(ApftoolsError, match="polarity=0 must be 1 or -1"):
        Alignment(48000, [ChannelModel(0.0, 0)])


def test_load_names_the_file(tmp_path):
    data = valid_model()
    data["models"][0]["delay_samples"] = 1e9
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(ApftoolsError, match=r"'.*m\.json' is not a usable apftools model: models\[0\]: delay_samples"):
        Alignment.load(tmp_path / "m.json")


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"version": ' + "9" * 5000 + "}", "an integer of 5000 digits"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"fs": NaN}', "holds 'NaN', which is not valid JSON"),
        ('{"fs": 1e999}', "too large for a float"),
        ('{"fs": ', "is not valid JSON: line 1 column 8"),
        ("", "is not valid JSON"),
    ],
)
def test_hostile_json_is_refused_in_one_line(tmp_path, text, message):
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(ApftoolsError, match=message):
        Alignment.load(tmp_path / "m.json")


# --- fuzzing the loader -----------------------------------------------------------------------------------------------

JSON_VALUES = hs.recursive(
    hs.none() | hs.booleans() | hs.integers(-(10**30), 10**30) | hs.floats(allow_nan=False, allow_infinity=False)
    | hs.text(max_size=8),
    lambda children: hs.lists(children, max_size=4) | hs.dictionaries(hs.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _leaves(node, prefix=()):
    """(path, value) of every leaf of a JSON document, in order."""
    if isinstance(node, (dict, list)) and node:
        for key, child in (node.items() if isinstance(node, dict) else enumerate(node)):
            yield from _leaves(child, prefix + (key,))
    else:
        yield prefix, node


def _paths(node, prefix=()):
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, prefix + (key,))


@hs.composite
def mutated_models(draw):
    """A valid model with one place replaced, removed or given an extra key."""
    data = valid_model()
    path = draw(hs.sampled_from(list(_paths(data))[1:]))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    action = draw(hs.sampled_from(["replace", "remove", "extra"]))
    if action == "replace":
        parent[path[-1]] = draw(JSON_VALUES | hs.sampled_from([1e308, -1e308, 5e-324, 0, -1, 2**63, 1e15]))
    elif action == "remove":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(hs.text(max_size=8))] = draw(JSON_VALUES)
    return data


# 300 examples: each validation takes well under a millisecond; more found nothing new in local runs of 5000
@settings(max_examples=300)
@given(hs.one_of(mutated_models(), JSON_VALUES))
def test_any_json_document_loads_or_is_refused_with_an_apftools_error(document):
    before = copy.deepcopy(document)
    try:
        model = Alignment.from_dict(document)
    except ApftoolsError as error:
        assert str(error) and "\n" not in str(error)
    else:
        Alignment.from_dict(json.loads(json.dumps(model.to_dict())))  # what loads, writes back loadable
    assert document == before  # validation never edits its input


@settings(max_examples=200)  # bytes-level damage of a model file; each example is one read_json
@given(hs.data())
def test_damaged_model_files_load_or_are_refused(tmp_path_factory, data):
    text = json.dumps(valid_model(), indent=2).encode()
    cut = data.draw(hs.integers(0, len(text)))
    noise = data.draw(hs.binary(max_size=16))
    path = tmp_path_factory.mktemp("damaged") / "m.json"
    path.write_bytes(text[:cut] + noise + text[cut + len(noise):])
    try:
        Alignment.load(path)
    except ApftoolsError as error:
        assert str(error)
