"""Generate the dry/wet fixture pair ``dry.flac`` / ``wet.flac`` for ``apftools align``.

Run ``python data/make_fixtures.py`` from anywhere: the files are written next to
this script. The output is deterministic (fixed seed, no per-sample loops).

dry: 8 s of a plucked riff over an E/A bass line, a kick on every beat and light
hi-hats, at 120 bpm, 48 kHz mono, peak 0.7 (about -3 dBFS).
wet: dry -> analog-style EQ (bilinear transforms of analog prototypes) ->
37-sample latency -> polarity inversion, rescaled to peak 0.7.
The script prints the EQ's second-order sections and the wet gain (see README.md).
"""

from pathlib import Path

import numpy as np
import scipy.signal as sig
import soundfile as sf

FS = 48000
DURATION_S = 8.0
BEAT_S = 0.5  # 120 bpm
PEAK = 0.7  # about -3 dBFS
LATENCY = 37  # samples
POLARITY = -1
SEED = 20230904

N = int(DURATION_S * FS)


def _midi_hz(note):
    return 440.0 * 2.0 ** ((note - 69) / 12)


def _add(track, onset_s, sound):
    """Add ``sound`` to ``track`` starting at ``onset_s`` seconds, cut at the end."""
    i = int(round(onset_s * FS))
    m = min(len(sound), len(track) - i)
    track[i:i + m] += sound[:m]


def _pluck(f0, dur_s, rng, tau1_s=0.8):
    """Plucked string: harmonics k*f0 (below 12 kHz), amplitude 1/k, decay tau1/k."""
    t = np.arange(int(dur_s * FS)) / FS
    k = np.arange(1, int(12000 // f0) + 1)[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=k.shape)
    partials = np.sin(2 * np.pi * f0 * k * t + phase) * np.exp(-t * k / tau1_s) / k
    attack = 1 - np.exp(-t / 0.002)  # 2 ms onset, no click
    return attack * partials.sum(axis=0)


def riff(rng):
    """Plucked riff in E minor pentatonic (eighth notes) over an E2/A2 bass line."""
    track = np.zeros(N)
    # One MIDI note per eighth note (None: rest); the last bar is one held E4.
    lead = [52, 55, 57, 59, 57, 55, 52, None, 52, 55, 57, 62, 64, 62, 59, None,
            52, 55, 57, 59, 57, 55, 52, None, 64, None, None, None, None, None, None, None]
    for i, note in enumerate(lead):
        if note is not None:
            _add(track, i * BEAT_S / 2, 0.5 * _pluck(_midi_hz(note), 1.5, rng))
    bass = [40, 40, 45, 40, 40, 40, 45, 40]  # E2 E2 A2 E2 ..., one note per two beats
    for i, note in enumerate(bass):
        _add(track, i * 2 * BEAT_S, _pluck(_midi_hz(note), 1.2, rng, tau1_s=0.6))
    return track


def kick():
    """Kick on every beat: sine sweeping 120 -> 45 Hz, exponential decay."""
    t = np.arange(int(0.4 * FS)) / FS
    tau_f = 0.04  # frequency glide time constant, s
    # phase = 2 pi * integral of f(t) = 45 + 75 exp(-t / tau_f)
    phase = 2 * np.pi * (45 * t + 75 * tau_f * (1 - np.exp(-t / tau_f)))
    hit = np.sin(phase) * np.exp(-t / 0.12)
    track = np.zeros(N)
    for beat in range(int(DURATION_S / BEAT_S) - 2):  # no drums on the last two beats
        _add(track, beat * BEAT_S, hit)
    return track


def hihat(rng):
    """Light closed hi-hat on the off-beats: 7 kHz highpassed noise, 15 ms decay."""
    t = np.arange(int(0.08 * FS)) / FS
    track = np.zeros(N)
    for beat in range(int(DURATION_S / BEAT_S) - 2):
        _add(track, (beat + 0.5) * BEAT_S, rng.standard_normal(t.size) * np.exp(-t / 0.015))
    return 0.25 * sig.sosfilt(sig.butter(2, 7000, "highpass", fs=FS, output="sos"), track)


def _analog_biquad(b, a, f0):
    """Digital biquad from an analog prototype b(s)/a(s) normalised to w0 = 1.

    The prototype's frequency axis is prewarped so that f0 maps exactly, then
    the bilinear transform s = 2 fs (z - 1)/(z + 1) is applied; this is how the
    RBJ Audio EQ Cookbook derives its biquads (R. Bristow-Johnson,
    https://www.w3.org/TR/audio-eq-cookbook/).
    """
    w0 = 2 * FS * np.tan(np.pi * f0 / FS)  # prewarped analog frequency, rad/s
    scale = w0 ** -np.arange(2, -1, -1.0)  # s -> s / w0 on [s^2, s, 1] coefficients
    bz, az = sig.bilinear(np.asarray(b) * scale, np.asarray(a) * scale, fs=FS)
    return np.concatenate([bz / az[0], az / az[0]])


def effect():
    """Second-order sections of the EQ/preamp (RBJ cookbook analog prototypes)."""
    q_bw = 1 / np.sqrt(2)  # Butterworth
    a_bell = 10 ** (4 / 40)  # +4 dB
    a_shelf = 10 ** (-3 / 40)  # -3 dB
    q_shelf = 1 / np.sqrt(2)  # shelf slope S = 1
    return np.array([
        _analog_biquad([1, 0, 0], [1, 1 / q_bw, 1], 35.0),  # highpass 35 Hz
        _analog_biquad([1, a_bell / 0.9, 1], [1, 1 / (a_bell * 0.9), 1], 800.0),  # bell
        _analog_biquad(a_shelf * np.array([a_shelf, np.sqrt(a_shelf) / q_shelf, 1]),
                       [1, np.sqrt(a_shelf) / q_shelf, a_shelf], 6000.0),  # high shelf
        _analog_biquad([0, 0, 1], [1, 1 / q_bw, 1], 9000.0),  # lowpass 9 kHz
    ])


def main():
    rng = np.random.default_rng(SEED)
    dry = riff(rng) + kick() + hihat(rng)
    dry *= PEAK / np.max(np.abs(dry))
    sos = effect()
    eq = sig.sosfilt(sos, dry)
    gain = PEAK / np.max(np.abs(eq))
    wet = POLARITY * gain * np.concatenate([np.zeros(LATENCY), eq[:-LATENCY]])
    out = Path(__file__).resolve().parent
    sf.write(out / "dry.flac", dry, FS, subtype="PCM_24")
    sf.write(out / "wet.flac", wet, FS, subtype="PCM_24")
    np.set_printoptions(precision=17, floatmode="unique", linewidth=120)
    print(f"sos (rows b0 b1 b2 a0 a1 a2) =\n{sos!r}")
    print(f"wet = {POLARITY} * {float(gain)!r} * sosfilt(sos, dry) delayed by {LATENCY} samples")


if __name__ == "__main__":
    main()
