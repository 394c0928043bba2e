"""Render the real-effects benchmark: third-party plugins over real recordings.

``python bench/make_cases.py OUTDIR [--only NAME ...] [--seconds 8] [--check]``
writes one folder per case, ``OUTDIR/<name>/{dry.wav, wet.wav, meta.json}``
(32-bit float WAV), for ``apftools bench`` (:mod:`apftools.bench`) to score.  ``--check`` renders
every case a second time into a temporary folder and reports, per case,
whether the samples came out identical.

Needs Debian's sox, ecasound, lv2file and plugin packages and PyPI's
pedalboard (the commands are in ``bench/README.md``); CI and the tests use
the small set committed in ``data/real/`` instead.

Every case follows one recipe (the ``CASES`` table below, copied into its
meta.json): a CC0 recording from Debian's ``sonic-pi-samples``, an excerpt,
channels and a sample rate; the dry is resampled to that rate before the
effect (never the wet after), peak-normalised to -12 dBFS, given 1 s of
leading silence (plugins that ramp their parameters from defaults settle
there) that is cut from the wet afterwards, so the wet has the dry's length
and the effect's own latency.  meta.json records the host and plugin with
every parameter, the package versions, the source's SHA-256, the SHA-256 of
the rendered samples, the latency measured by GCC-PHAT, the coherence, and
``expect``: ``alignable``, ``nonlinear`` or ``time-varying``.
"""

import argparse
import hashlib
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.signal
import soundfile

SAMPLES = pathlib.Path("/usr/share/sonic-pi/samples")
LADSPA = pathlib.Path("/usr/lib/ladspa")
VST3 = pathlib.Path("/usr/lib/vst3")
PEAK = 10 ** (-12 / 20)
PREROLL_S = 1.0
PACKAGES = ("sox", "ecasound", "lv2file", "caps", "swh-plugins", "lsp-plugins-ladspa", "x42-plugins", "zam-plugins",
            "guitarix-lv2", "sonic-pi-samples")

LSP_EQ = "http://lsp-plug.in/plugins/ladspa/para_equalizer_x16_mono"
# LSP para equaliser: mode 0 IIR, 1 FIR, 2 FFT; filter type 1 bell, 3 hi-shelf, 5 lo-shelf; gains are linear
LSP_BANDS = {"Filter type 0": 5, "Frequency 0 (Hz)": 120.0, "Gain 0 (G)": 1.6, "Quality factor 0": 0.7,
             "Filter type 1": 1, "Frequency 1 (Hz)": 900.0, "Gain 1 (G)": 0.6, "Quality factor 1": 1.2,
             "Filter type 2": 3, "Frequency 2 (Hz)": 7000.0, "Gain 2 (G)": 1.5, "Quality factor 2": 0.7}
SOX_CHAIN = ["highpass", "40", "equalizer", "250", "1q", "-3", "equalizer", "2500", "1.5q", "+4",
             "treble", "+3", "8000"]

# name -> recipe.  source: (file, start s, channels 'mono' | 'stereo'); fx: one effect, or {"left":, "right":}
CASES = {
    "sox-eq-chain-guitar-48k": dict(source=("guit_em9", 0.5, "mono"), fs=48000, expect="alignable",
                                    fx=dict(host="sox", effects=SOX_CHAIN)),
    "sox-eq-chain-drums-48k": dict(source=("loop_safari", 0.0, "mono"), fs=48000, expect="alignable",
                                   fx=dict(host="sox", effects=SOX_CHAIN)),
    "sox-lr4-low-drums-48k": dict(source=("loop_tabla", 1.0, "mono"), fs=48000, expect="alignable",
                                  fx=dict(host="sox", effects=["lowpass", "1200", "lowpass", "1200"])),
    "sox-lr4-high-guitar-44k": dict(source=("guit_e_fifths", 0.0, "mono"), fs=44100, expect="alignable",
                                    fx=dict(host="sox", effects=["highpass", "1200", "highpass", "1200"])),
    "sox-riaa-drums-48k": dict(source=("loop_compus", 0.0, "mono"), fs=48000, expect="alignable",
                               fx=dict(host="sox", effects=["riaa"])),
    "sox-riaa-guitar-96k": dict(source=("guit_em9", 2.0, "mono"), fs=96000, expect="alignable",
                                fx=dict(host="sox", effects=["riaa"])),
    "caps-tonestack-guitar-44k": dict(source=("guit_em9", 0.5, "mono"), fs=44100, expect="alignable",
                                      fx=dict(host="sox-ladspa", plugin="caps.so", label="ToneStack",
                                              params={"model": 0, "bass": 0.3, "mid": 0.7, "treble": 0.6})),
    "caps-tonestack-drums-48k": dict(source=("loop_garzul", 0.0, "mono"), fs=48000, expect="alignable",
                                     fx=dict(host="sox-ladspa", plugin="caps.so", label="ToneStack",
                                             params={"model": 3, "bass": 0.8, "mid": 0.2, "treble": 0.5})),
    "caps-cabinet-guitar-48k": dict(source=("guit_e_fifths", 0.0, "mono"), fs=48000, expect="alignable",
                                    fx=dict(host="sox-ladspa", plugin="caps.so", label="CabinetIV",
                                            params={"model": 12, "gain (dB)": 0})),
    "caps-cabinet-drums-96k": dict(source=("loop_mika", 0.0, "mono"), fs=96000, expect="alignable",
                                   fx=dict(host="sox-ladspa", plugin="caps.so", label="CabinetIV",
                                           params={"model": 5, "gain (dB)": 0})),
    "caps-eq10-piano-44k": dict(source=("ambi_piano", 0.0, "mono"), fs=44100, expect="alignable",
                                fx=dict(host="sox-ladspa", plugin="caps.so", label="Eq10",
                                        params={"63 Hz": 4, "250 Hz": -3, "1 kHz": 3, "4 kHz": -4, "16 kHz": 5})),
    "swh-mbeq-drums-44k": dict(source=("loop_safari", 0.0, "mono"), fs=44100, expect="alignable",
                               fx=dict(host="sox-ladspa", plugin="mbeq_1197.so", label="mbeq",
                                       params={"100Hz gain": 4, "440Hz gain": -5, "2500Hz gain": 3,
                                               "10000Hz gain": -4})),
    "lsp-fir-eq-guitar-48k": dict(source=("guit_em9", 0.5, "mono"), fs=48000, expect="alignable",
                                  fx=dict(host="sox-ladspa", plugin="lsp-plugins-ladspa-1.2.5.so", label=LSP_EQ,
                                          params={"Equalizer mode": 1, **LSP_BANDS})),
    "lsp-iir-eq-drums-192k": dict(source=("loop_garzul", 0.0, "mono"), fs=192000, expect="alignable",
                                  fx=dict(host="sox-ladspa", plugin="lsp-plugins-ladspa-1.2.5.so", label=LSP_EQ,
                                          params={"Equalizer mode": 0, **LSP_BANDS})),
    "x42-phaserotate-90-guitar-48k": dict(source=("guit_em9", 0.5, "mono"), fs=48000, expect="alignable",
                                          fx=dict(host="lv2file", uri="http://gareus.org/oss/lv2/phaserotate",
                                                  params={"angle": 90})),
    "x42-phaserotate-45-drums-96k": dict(source=("loop_tabla", 0.0, "mono"), fs=96000, expect="alignable",
                                         fx=dict(host="lv2file", uri="http://gareus.org/oss/lv2/phaserotate",
                                                 params={"angle": 45})),
    "pedalboard-eq-piano-44k": dict(source=("ambi_piano", 0.0, "mono"), fs=44100, expect="alignable",
                                    fx=dict(host="pedalboard", chain=[
                                        ["LowShelfFilter", {"cutoff_frequency_hz": 150, "gain_db": 4, "q": 0.7}],
                                        ["PeakFilter", {"cutoff_frequency_hz": 1000, "gain_db": -3, "q": 1.0}],
                                        ["HighShelfFilter", {"cutoff_frequency_hz": 6000, "gain_db": -4, "q": 0.7}]])),
    "pedalboard-eq-drums-96k": dict(source=("loop_mika", 0.0, "mono"), fs=96000, expect="alignable",
                                    fx=dict(host="pedalboard", chain=[
                                        ["HighpassFilter", {"cutoff_frequency_hz": 60}],
                                        ["PeakFilter", {"cutoff_frequency_hz": 400, "gain_db": 5, "q": 0.8}],
                                        ["PeakFilter", {"cutoff_frequency_hz": 5000, "gain_db": -6, "q": 2.0}]])),
    "pedalboard-hp-lp-bass-44k": dict(source=("bass_woodsy_c", 0.0, "mono"), fs=44100, expect="alignable",
                                      fx=dict(host="pedalboard", chain=[
                                          ["HighpassFilter", {"cutoff_frequency_hz": 80}],
                                          ["LowpassFilter", {"cutoff_frequency_hz": 3000}]])),
    "zam-eq2-piano-48k": dict(source=("ambi_piano", 0.0, "mono"), fs=48000, expect="alignable",
                              fx=dict(host="vst3", plugin="ZamEQ2.vst3", params={
                                  "boost_cut_1_db": 6, "frequency_1_hz": 300, "bandwidth_1": 1.0,
                                  "boost_cut_2_db": -5, "frequency_2_hz": 3000, "bandwidth_2": 1.0})),
    "zam-eq2-drums-192k": dict(source=("loop_compus", 0.0, "mono"), fs=192000, expect="alignable",
                               fx=dict(host="vst3", plugin="ZamEQ2.vst3", params={
                                   "boost_cut_1_db": -6, "frequency_1_hz": 200, "bandwidth_1": 1.0,
                                   "boost_cut_2_db": 6, "frequency_2_hz": 8000, "bandwidth_2": 1.5})),
    "stereo-same-eq-drums-48k": dict(source=("loop_safari", 0.0, "stereo"), fs=48000, expect="alignable",
                                     fx=dict(host="sox", effects=SOX_CHAIN)),
    "stereo-different-fx-guitar-48k": dict(source=("guit_em9", 0.5, "stereo"), fs=48000, expect="alignable", fx={
        "left": dict(host="sox-ladspa", plugin="caps.so", label="ToneStack",
                     params={"model": 0, "bass": 0.3, "mid": 0.7, "treble": 0.6}),
        "right": dict(host="sox", effects=["delay", "0.0005", "vol", "-1", "highpass", "100"])}),
    "mono-into-stereo-wider-guitar-48k": dict(source=("guit_em9", 0.5, "mono"), fs=48000, expect="alignable",
                                              fx=dict(host="ecasound", label="Wider", params=[0, 1], outputs=2)),
    # issue 31's case: the wet leads by 25 samples, +6 dB, through 2x2 + 1 allpasses (the model class), noise at
    # -60 dB re the wet; sox's trim takes the lead off the front, its float output does not clip
    "wet-leads-allpass-guitar-48k": dict(source=("guit_em9", 0.5, "mono"), fs=48000, expect="alignable",
                                         gain_db=6.0, noise_db=-60.0,
                                         fx=dict(host="sox", effects=["allpass", "300", "0.7q", "allpass", "2500",
                                                                      "1.2q", "biquad", "0.6", "1", "0", "1", "0.6",
                                                                      "0", "trim", "25s"])),
    # ZamTube at its lowest drive: coherence 1.000, polarity inverted
    "zam-tube-guitar-48k": dict(source=("guit_e_fifths", 0.0, "mono"), fs=48000, expect="alignable",
                                fx=dict(host="vst3", plugin="ZamTube.vst3", params={"tube_drive": 0.1})),
    "gx-studiopre-guitar-48k": dict(source=("guit_em9", 0.5, "mono"), fs=48000, expect="nonlinear",
                                    fx=dict(host="lv2file",
                                            uri="http://guitarix.sourceforge.net/plugins/gx_studiopre#studiopre",
                                            params={})),
    "sox-overdrive-guitar-48k": dict(source=("guit_em9", 0.5, "mono"), fs=48000, expect="nonlinear",
                                     fx=dict(host="sox", effects=["overdrive", "10", "20"])),
    "caps-saturate-drums-48k": dict(source=("loop_garzul", 0.0, "mono"), fs=48000, expect="nonlinear",
                                    fx=dict(host="sox-ladspa", plugin="caps.so", label="Saturate",
                                            params={"mode": 1, "gain (dB)": 12, "bias": 0})),
    "pedalboard-phaser-guitar-48k": dict(source=("guit_em9", 0.5, "mono"), fs=48000, expect="time-varying",
                                         fx=dict(host="pedalboard", chain=[["Phaser", {"rate_hz": 0.5}]])),
    "pedalboard-chorus-drums-44k": dict(source=("loop_tabla", 0.0, "mono"), fs=44100, expect="time-varying",
                                        fx=dict(host="pedalboard", chain=[["Chorus", {"rate_hz": 1.0, "mix": 0.5}]])),
}


# ---------------------------------------------------------------------------------------------------------- hosts
def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed: {result.stderr.strip()[-500:]}")
    return result


def _ladspa_values(plugin, label, params):
    """Values for every control port in order (sox wants one for each output port too), defaults elsewhere."""
    text = _run(["analyseplugin", str(LADSPA / plugin), label]).stdout
    values, names = [], []
    for line in text.split("Ports:", 1)[1].splitlines():
        match = re.match(r'\s*"(.*)" (input|output), control(.*)', line)
        if not match:
            continue
        name, direction, rest = match.groups()
        default = re.search(r"default (-?[\d.e+-]+)", rest)
        value = params.get(name, float(default.group(1)) if default else 0.0) if direction == "input" else 0
        values.append(str(value))
        names.append(name)
    unknown = set(params) - set(names)
    if unknown:
        raise KeyError(f"{label} has no ports {sorted(unknown)}")
    return values


def _process(fx, x, fs, folder):
    """Run one effect on the mono or multichannel float array ``x`` (C, N); returns (C', N')."""
    src, dst = folder / "in.wav", folder / "out.wav"
    soundfile.write(src, x.T, fs, subtype="FLOAT")
    host = fx["host"]
    env = dict(os.environ, LADSPA_PATH=str(LADSPA))
    if host == "sox":
        _run(["sox", src, "-e", "floating-point", "-b", "32", dst, *fx["effects"]])
    elif host == "sox-ladspa":
        values = _ladspa_values(fx["plugin"], fx["label"], fx["params"])
        _run(["sox", src, "-e", "floating-point", "-b", "32", dst, "ladspa", str(LADSPA / fx["plugin"]), fx["label"],
              *values], env=env)
    elif host == "ecasound":
        _run(["ecasound", "-q", f"-f:f32_le,{x.shape[0]},{fs}", "-i", src, f"-f:f32_le,{fx['outputs']},{fs}",
              "-o", dst, f"-el:{fx['label']}," + ",".join(map(str, fx["params"]))], env=env)
    elif host == "lv2file":
        args = [arg for name, value in fx["params"].items() for arg in ("-p", f"{name}:{value}")]
        _run(["lv2file", "-i", src, "-o", dst, *args, fx["uri"]])
    elif host in ("pedalboard", "vst3"):
        import pedalboard

        if host == "vst3":
            plugin = pedalboard.load_plugin(str(VST3 / fx["plugin"]))
            for name, value in fx["params"].items():
                setattr(plugin, name, value)
            board = pedalboard.Pedalboard([plugin])
        else:
            board = pedalboard.Pedalboard([getattr(pedalboard, name)(**kw) for name, kw in fx["chain"]])
        y = board(x.astype(np.float32), fs, reset=True)
        soundfile.write(dst, np.asarray(y, dtype=np.float32).T, fs, subtype="FLOAT")
    else:
        raise ValueError(f"unknown host {host!r}")
    y, fs_out = soundfile.read(dst, dtype="float64", always_2d=True)
    if fs_out != fs:
        raise RuntimeError(f"{host} wrote {fs_out} Hz, expected {fs}")
    y = y.T[:, :x.shape[1]]  # the length of a DAW bounce: the input's (sox's delay appends samples)
    return np.pad(y, ((0, 0), (0, x.shape[1] - y.shape[1])))


def _versions():
    versions = {}
    for package in PACKAGES:
        result = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True)
        versions[package] = result.stdout or None
    try:
        from importlib.metadata import version

        versions["pedalboard"] = version("pedalboard")
    except Exception:  # noqa: BLE001  (not installed: recorded as missing)
        versions["pedalboard"] = None
    return versions


def _sha256(data):
    return hashlib.sha256(np.ascontiguousarray(data, dtype="<f4").tobytes()).hexdigest()


def render(name, recipe, seconds):
    """The (dry, wet, fs) of one case: arrays of shape (C, N)."""
    file, start_s, layout = recipe["source"]
    source, fs_source = soundfile.read(SAMPLES / f"{file}.flac", dtype="float64", always_2d=True)
    source = source.T[:1] if layout == "mono" else source.T[:2]
    fs = recipe["fs"]
    g = math.gcd(fs, fs_source)
    excerpt = source[:, int(start_s * fs_source):int((start_s + seconds) * fs_source) + fs_source // 10]
    dry = scipy.signal.resample_poly(excerpt, fs // g, fs_source // g, axis=-1)[:, :int(seconds * fs)]
    dry = PEAK * dry / np.max(np.abs(dry))
    padded = np.concatenate([np.zeros((dry.shape[0], int(PREROLL_S * fs))), dry], axis=1)
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        effects = recipe["fx"]
        if "left" in effects:
            wet = np.concatenate([_process(effects[side], padded[c:c + 1], fs, folder)
                                  for c, side in enumerate(("left", "right"))])
        else:
            wet = _process(effects, padded, fs, folder)
    wet = wet[:, int(PREROLL_S * fs):] * 10 ** (recipe.get("gain_db", 0.0) / 20)
    if "noise_db" in recipe:  # seeded by the case's name, so a render is reproducible
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"))
        wet = wet + 10 ** (recipe["noise_db"] / 20) * np.sqrt(np.mean(wet**2)) * rng.standard_normal(wet.shape)
    return dry.astype(np.float32), wet.astype(np.float32), fs


def measure(dry, wet, fs):
    """Per wet channel, against its dry (the one dry of a mono dry): latency and polarity by GCC-PHAT, and
    the coherence once that latency is removed (a latency longer than a Welch frame would read as noise)."""
    from apftools.delay import apply_delay, estimate_delay
    from apftools.metrics import coherence_summary

    rows = []
    for c in range(wet.shape[0]):
        d, w = dry[min(c, dry.shape[0] - 1)].astype(float), wet[c].astype(float)
        estimate = estimate_delay(d, w, fs, max_delay_s=0.2)
        shifted = apply_delay(d, round(estimate.delay_samples))
        rows.append({"latency_samples": round(estimate.delay_samples, 2), "polarity": estimate.polarity,
                     "coherence": round(coherence_summary(shifted, w, fs), 4)})
    return rows


def write_case(outdir, name, recipe, seconds, versions, flac=False):
    dry, wet, fs = render(name, recipe, seconds)
    folder = outdir / name
    folder.mkdir(parents=True, exist_ok=True)
    extension, subtype = (".flac", "PCM_24") if flac else (".wav", "FLOAT")
    for part, data in (("dry", dry), ("wet", wet)):
        if flac and np.max(np.abs(data)) >= 1.0:
            raise ValueError(f"{name}: the {part} reaches {np.max(np.abs(data)):.2f}, beyond what 24-bit FLAC holds")
        soundfile.write(folder / f"{part}{extension}", data.T, fs, subtype=subtype)
    file = SAMPLES / f"{recipe['source'][0]}.flac"
    meta = {
        "name": name,
        "expect": recipe["expect"],
        "fs": fs,
        "dry_channels": dry.shape[0],
        "wet_channels": wet.shape[0],
        "seconds": dry.shape[1] / fs,
        "recipe": {k: v for k, v in recipe.items() if k not in ("expect", "fs")},
        "processing": f"dry resampled from the source rate to {fs} Hz, peak -12 dBFS, {PREROLL_S:g} s of leading "
                      "silence through the effect, cut from the wet; wet cut to the dry's length",
        "source": {"file": str(file), "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
                   "licence": "CC0 1.0 (Debian sonic-pi-samples copyright file)"},
        "samples_sha256": {"dry": _sha256(dry), "wet": _sha256(wet)},
        "stored_as": "24-bit FLAC (quantised from these float32 samples)" if flac else "32-bit float WAV",
        "measured": measure(dry, wet, fs),
        "versions": versions,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=pathlib.Path)
    parser.add_argument("--only", nargs="+", default=None, help="case names to render")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each excerpt")
    parser.add_argument("--check", action="store_true", help="render twice and compare the samples")
    parser.add_argument("--flac", action="store_true", help="store 24-bit FLAC instead of 32-bit float WAV")
    args = parser.parse_args(argv)
    names = args.only or list(CASES)
    unknown = set(names) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; known: {', '.join(CASES)}")
    versions = _versions()
    for name in names:
        start = time.perf_counter()
        meta = write_case(args.outdir, name, CASES[name], args.seconds, versions, args.flac)
        measured = "  ".join(f"lat {m['latency_samples']:8.2f} pol {m['polarity']:+d} coh {m['coherence']:.3f}"
                             for m in meta["measured"])
        line = f"{name:38s} {meta['fs']:6d} Hz {meta['dry_channels']}->{meta['wet_channels']} ch  {measured}"
        if args.check:
            dry, wet, _ = render(name, CASES[name], args.seconds)
            same = _sha256(dry) == meta["samples_sha256"]["dry"] and _sha256(wet) == meta["samples_sha256"]["wet"]
            line += "  reproducible" if same else "  NOT bit-exact"
        print(f"{line}  ({time.perf_counter() - start:.1f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
