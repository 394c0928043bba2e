r"""The audio band and its third octaves: the one rule for which frequencies count.

:func:`audio_band` is 20 Hz to :math:`\min(20\ \mathrm{kHz}, 0.45 f_s)`: the
whole audible range where the sample rate allows it, and at low rates
stopping short of Nyquist, where anti-aliasing filters and Welch estimates
are least reliable.  The metrics, the fit's frequency grid and its weights
all use it.

Third octaves follow IEC 61260-1 (base 2): centres :math:`1000 \cdot 2^{k/3}`
Hz, edges :math:`f_c 2^{\pm 1/6}`; reports name them by their nominal
mid-band frequencies (:func:`nominal_hz`: 25, 31.5, 40, ... 12 500 Hz).
The metrics judge a mix on third-octave *windows* a sixth of an octave
apart (:func:`window_centres`): the IEC bands and the bands halfway between
them, so a notch that two IEC bands split between them counts fully in
one window (a cabinet's notch at 1.4 kHz read -0.30 dB in the 1.25 and 1.6
kHz bands and -0.64 dB in the window between them).
"""

import numpy as np

#: Lowest frequency of the audio band, in Hz.
F_LOW_HZ = 20.0
#: Highest frequency of the audio band, in Hz, at sample rates above 44.4 kHz.
F_HIGH_HZ = 20000.0
#: Below 44.4 kHz the band stops at this fraction of the sample rate.
NYQUIST_FRACTION = 0.45


def audio_band(fs):
    """``(low, high)`` in Hz of the audio band at sample rate ``fs`` (Hz, validated)."""
    return F_LOW_HZ, min(F_HIGH_HZ, NYQUIST_FRACTION * fs)


def third_octave_centres(fs):
    r"""Base-2 third-octave centres :math:`1000 \cdot 2^{k/3}` Hz (IEC 61260-1) from the 25 Hz band up.

    The lowest band is the nominal 25 Hz band (exact centre 24.8 Hz); the
    highest is the last centre not above the top of :func:`audio_band`.
    """
    k = np.arange(round(3 * np.log2(25.0 / 1000.0)), np.floor(3 * np.log2(audio_band(fs)[1] / 1000.0)) + 1)
    return 1000.0 * 2.0 ** (k / 3.0)


def third_octave_index(freqs_hz, fs):
    """Index into :func:`third_octave_centres` of the band holding each frequency, -1 outside every band."""
    centres = third_octave_centres(fs)
    edges = np.append(centres * 2 ** (-1 / 6), centres[-1] * 2 ** (1 / 6))
    index = np.searchsorted(edges, np.asarray(freqs_hz, dtype=float), side="right") - 1
    return np.where((index >= 0) & (index < len(centres)), index, -1)


#: Nominal third-octave mid-band frequencies of one decade (IEC 61260-1): the R10 preferred numbers (ISO 3).
_NOMINAL_DECADE = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)


def nominal_hz(centre_hz):
    r"""The nominal mid-band frequency (Hz) of the third octave centred on ``centre_hz`` (IEC 61260-1).

    The exact base-2 centre :math:`1000 \cdot 2^{k/3}` lies within 1.6% of
    the nominal value for every band from 25 Hz to 20 kHz (12 699 Hz is the
    12.5 kHz band, 24.8 Hz the 25 Hz band).
    """
    step = int(round(10.0 * np.log10(float(centre_hz))))  # tenths of a decade: 2^(1/3) ~ 10^(1/10)
    return _NOMINAL_DECADE[step % 10] * 10.0 ** (step // 10)


def band_label(centre_hz):
    """``"25 Hz"``, ``"1 kHz"``, ``"12.5 kHz"``: a third octave named by its nominal frequency (:func:`nominal_hz`)."""
    value = nominal_hz(centre_hz)
    return f"{value / 1000:g} kHz" if value >= 1000 else f"{value:g} Hz"


def window_centres(fs):
    r"""Centres (Hz) of the third-octave windows the metrics judge: :math:`1000 \cdot 2^{k/6}`, every IEC
    band of :func:`third_octave_centres` and each one halfway (a sixth of an octave) to the next.

    Window :math:`k` spans :math:`f_k 2^{\pm 1/6}`, from one neighbour's centre to the other's.
    """
    iec = third_octave_centres(fs)
    return np.sort(np.concatenate([iec, iec[:-1] * 2 ** (1 / 6)]))


def window_label(centre_hz):
    """An IEC band's label (:func:`band_label`) for a window centred on one, else ``"1.25-1.6 kHz"``: the two
    bands a window halfway between them straddles."""
    steps = 6.0 * np.log2(float(centre_hz) / 1000.0)
    if abs(steps / 2 - round(steps / 2)) < 0.25:
        return band_label(centre_hz)
    low, high = (nominal_hz(centre_hz * 2 ** (sign / 6)) for sign in (-1, 1))
    if high >= 1000:
        return f"{low / 1000:g}-{high / 1000:g} kHz"
    return f"{low:g}-{high:g} Hz"

