"""Block rendering (apftools.render): any block size gives the whole-signal result; files in bounded memory.

The reference is the model's definition written out on the whole signal:
delay, polarity, the causal cascade (``Cascade.process``), then the
anti-causal cascade over the time-reversed signal.
"""

import numpy as np
import pytest
import soundfile

from apftools import Alignment, ApftoolsError, Cascade
from apftools.delay import apply_delay
from apftools.io import AudioReader
from apftools.model import ChannelModel
from apftools import render as render_module
from apftools.render import ArrayReader, render, render_blocks, render_to_file

FS = 96000


def reference(model, x):
    """The model's definition on the whole signal (module docstring)."""
    y = model.polarity * apply_delay(x, model.delay_samples)
    if model.cascade is not None:
        y = model.cascade.process(model.theta, y)
    if model.anticausal is not None:
        y = model.anticausal.process(model.anticausal_theta, y[..., ::-1])[..., ::-1]
    return y


def offline_model(delay=-7.3, polarity=-1):
    causal = Cascade("2x2w,1sw4", FS)  # a stretched section: blocks must keep its interleaved phases
    anticausal = Cascade("1x2w,1w", FS)
    return ChannelModel(delay, polarity, causal, causal.init(1), anticausal, anticausal.init(2))


@pytest.mark.parametrize("block", [997, 4096, 1 << 16])
def test_blocks_from_a_file_equal_the_whole_signal(tmp_path, block):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (2, 20011))
    soundfile.write(tmp_path / "x.wav", x.T, FS, subtype="DOUBLE")
    model = offline_model()
    alignment = Alignment(FS, [model])
    with AudioReader(tmp_path / "x.wav") as source:
        blocks = list(render_blocks(alignment, source, block=block))
    assert all(b.shape[1] % 4 == 0 for b in blocks[:-1])  # rounded to the stretch
    np.testing.assert_allclose(np.concatenate(blocks, axis=1), reference(model, x), atol=1e-9)


def test_mono_into_stereo_and_the_mix(tmp_path):
    rng = np.random.default_rng(1)
    dry, wet = 0.1 * rng.standard_normal((1, 90000)), 0.1 * rng.standard_normal((2, 80000))
    models = [offline_model(), ChannelModel(12.25, 1)]
    alignment = Alignment(FS, models, channels=[0, 1], dry_channels=1)
    expected = np.concatenate([reference(m, dry) for m in models])
    np.testing.assert_allclose(render(alignment, ArrayReader(dry, FS), block=1000), expected, atol=1e-9)
    mixed = 0.8 * expected[:, :80000] + 0.2 * wet
    np.testing.assert_allclose(alignment.mix(dry, wet, 0.2), mixed, atol=1e-9)
    # aligned.wav and mix.wav from one rendering: the mix over the common length
    paths = tmp_path / "aligned.wav", tmp_path / "mix.wav"
    assert render_to_file(alignment, ArrayReader(dry, FS), paths[0], mix=(paths[1], ArrayReader(wet, FS), 0.2)) \
        == (2, 90000)
    for path, want in zip(paths, (expected, mixed)):
        data, fs = soundfile.read(path, always_2d=True)
        assert fs == FS
        np.testing.assert_allclose(data.T, want, atol=1e-6)  # 32-bit float WAV


def test_a_causal_model_needs_one_pass_and_is_exact():
    cascade = Cascade("3x2w,1w", FS)
    model = ChannelModel(3.0, 1, cascade, cascade.init(3))
    x = np.random.default_rng(2).standard_normal(5000)
    np.testing.assert_allclose(render(Alignment(FS, [model], mode="causal"), ArrayReader(x, FS), block=256)[0],
                               reference(model, x), atol=1e-12)


def test_refusals_name_the_problem(tmp_path):
    alignment = Alignment(FS, [ChannelModel(0.0, 1)] * 2, channels=[0, 1], dry_channels=2)
    with pytest.raises(ApftoolsError, match="fitted at 96000 Hz"):
        render(alignment, ArrayReader(np.zeros((2, 10)), 48000))
    with pytest.raises(ApftoolsError, match=r"needs a dry with 2 channel\(s\).*the signal has 3"):
        render(alignment, ArrayReader(np.zeros((3, 10)), FS))
    with pytest.raises(ApftoolsError, match="the wet has 3 channels; the aligned dry has 2"):
        render_to_file(alignment, ArrayReader(np.zeros((2, 10)), FS), tmp_path / "a.wav",
                       mix=(tmp_path / "m.wav", ArrayReader(np.zeros((3, 10)), FS), 0.5))
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("max_frames", [render_module.MAX_FRAMES, 80000])
def test_a_slowly_decaying_anticausal_pass_over_many_blocks(monkeypatch, max_frames):
    """A pole near R_MAX: each block's reversed pass runs over the whole look-ahead, however short the blocks."""
    monkeypatch.setattr(render_module, "MAX_FRAMES", max_frames)  # 80000: blocks shorter than the look-ahead
    anticausal = Cascade("1x2w,1sw2", FS)
    theta = anticausal.theta_from_params([{"R": 0.9993, "fc": 60.0, "a": 0.0}, {"fc": 30.0, "a": 0.5}])
    assert np.max(anticausal.pole_radius(theta)) > 0.999
    model = ChannelModel(2.5, 1, anticausal=anticausal, anticausal_theta=theta)
    x = np.random.default_rng(3).standard_normal((1, 300001))
    blocks = list(render_blocks(Alignment(FS, [model]), ArrayReader(x, FS), block=4096))
    assert len(blocks) > 2
    np.testing.assert_allclose(np.concatenate(blocks, axis=1), reference(model, x), atol=1e-9)
