"""The spoken-digits check: pocketsphinx's en-US model with a grammar of digit words only.

The challenge digits are spoken one at a time ("four ... seven ... one"); "oh" counts as zero.
The decoder (acoustic model and dictionary from the pocketsphinx wheel, ~0.3 s to load) is
created once per process and shared under a lock: a pocketsphinx decoder is not thread-safe.

Before decoding, the audio is normalised and a low dither is added. Real microphones always
have a noise floor; audio with stretches of digital silence (synthetic speech, some noise
suppressors) is decoded badly without one (cameos/RESEARCH.md section 3; the tests' four
clean challenges are all misheard without it), presumably because the model never saw exact
silence.

Accuracy (exact 3-digit match, eSpeak NG voices, 25 random challenges per condition, 130-200
wpm): en-us 24-25/25 at 40 dB SNR, 18-23 at 20 dB, 8-15 at 10 dB; en 18-24, 17-20, 12-13;
en+f3 13-20, 11-13, 12-13; en+m3 15-18, 20-23, 13-15 (615/900 overall). Real voices were
not measured; the product should allow a retry.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
WORD_DIGITS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_DIGIT_RULE = "<digit> = " + " | ".join(WORD_DIGITS) + ";"
# The dither sits this far below the speech's level: inaudible, but never digital silence.
DITHER_BELOW_SPEECH_DB = 40.0
# Normalised so the loudest speech peaks here, whatever the microphone's gain.
TARGET_PEAK = 0.5
MAX_GAIN = 200.0
_DITHER_SEED = 20_240_611

# Energy segmentation: 25 ms windows every 10 ms.
_WINDOW = 400
_HOP = 160
_MIN_WORD_SECONDS = 0.12
_MAX_GAP_SECONDS = 0.2
# Context kept either side of a word; 0.1 s decoded best (0: 53/96, 0.05: 65, 0.1: 72, 0.2: 65,
# 0.3: 60 over the same challenges).
_WORD_PAD_SECONDS = 0.1

Strategy = Literal["auto", "whole", "segments"]
# "auto" cuts the clip into words only when the words stand this far (dB) above the pauses:
# with more noise, energy cuts clip the quiet consonants ("six", "five") and the whole-clip
# decoder does better (see `recognise_digits`).
SEGMENTING_MIN_RANGE_DB = 30.0
# A lower word insertion penalty and a higher silence probability than pocketsphinx's defaults
# (0.65, 0.005): the words are isolated, with long pauses. Measured with eSpeak voices over
# 96 challenges: 72 right with these, 64 with the defaults.
DECODER_OPTIONS: dict[str, object] = {"wip": 0.2, "silprob": 0.1}


@dataclass(frozen=True)
class DigitsResult:
    heard: str  # the digits recognised, in order; may be shorter or longer than the challenge
    is_match: bool


class _Recogniser:
    """One pocketsphinx decoder with a search per grammar; use only under `_lock`."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=SAMPLE_RATE, lm=None, loglevel="FATAL", **DECODER_OPTIONS)
        self.searches: set[str] = set()

    def decode(self, pcm: bytes, grammar: str, rule: str) -> list[str]:
        if grammar not in self.searches:
            self.decoder.add_jsgf_string(
                grammar, f"#JSGF V1.0; grammar {grammar}; public <s> = {rule}; {_DIGIT_RULE}"
            )
            self.searches.add(grammar)
        self.decoder.activate_search(grammar)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hypothesis = self.decoder.hyp()
        if hypothesis is None:
            return []
        return [word for word in hypothesis.hypstr.split() if word in WORD_DIGITS]


_lock = threading.Lock()
_recogniser: _Recogniser | None = None


def load() -> None:
    """Load the decoder now (a worker calls this at start-up rather than on its first check)."""
    global _recogniser
    with _lock:
        if _recogniser is None:
            _recogniser = _Recogniser()


def check_digits(audio: np.ndarray, sample_rate: int, challenge: str) -> DigitsResult:
    """Whether `audio` (float mono in [-1, 1]) says the `challenge` digits in order."""
    if not challenge.isdigit() or not challenge.isascii():
        raise ValueError(f"a challenge is a string of digits, got {challenge!r}")
    heard = recognise_digits(audio, sample_rate, expected_count=len(challenge))
    return DigitsResult(heard=heard, is_match=heard == challenge)


def recognise_digits(
    audio: np.ndarray,
    sample_rate: int,
    *,
    expected_count: int,
    strategy: Strategy = "auto",
) -> str:
    """The digits spoken in `audio`, as a string such as "471".

    "whole" decodes the clip with a grammar of exactly `expected_count` digits; "segments" cuts
    the clip at its pauses and decodes each word alone when there are exactly
    `expected_count` words, else falls back to "whole"; "auto" segments only clean audio.
    Measured over eSpeak voices (25 challenges each): at 40 dB SNR "segments" is right for
    24-25 of 25 with en-us, 24 with en, where "whole" gets 21-22 and 14-17; at 20 dB "whole"
    gets 17-23 and "segments" 12-15.
    """
    if expected_count < 1:
        raise ValueError(f"expected_count must be at least 1, got {expected_count}")
    prepared = prepare_audio(audio, sample_rate)
    load()
    with _lock:
        assert _recogniser is not None  # noqa: S101 (load() just made it)
        if strategy == "auto":
            is_clean = speech_range_db(prepared) >= SEGMENTING_MIN_RANGE_DB
            strategy = "segments" if is_clean else "whole"
        if strategy == "segments":
            words = _decode_segments(_recogniser, prepared, expected_count)
        else:
            words = _decode_whole(_recogniser, prepared, expected_count)
    return "".join(WORD_DIGITS[word] for word in words)


def _decode_whole(recogniser: _Recogniser, audio: np.ndarray, count: int) -> list[str]:
    rule = " ".join(["<digit>"] * count)
    return recogniser.decode(_pcm(audio), f"digits_{count}", rule)


def _decode_segments(recogniser: _Recogniser, audio: np.ndarray, count: int) -> list[str]:
    segments = word_segments(audio)
    if len(segments) != count:
        return _decode_whole(recogniser, audio, count)
    words = []
    for start, end in segments:
        heard = recogniser.decode(_pcm(audio[start:end]), "digits_1", "<digit>")
        if len(heard) != 1:
            return _decode_whole(recogniser, audio, count)
        words.extend(heard)
    return words


def prepare_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """16 kHz float64, DC removed, peak-normalised, with a deterministic dither."""
    samples = np.asarray(audio, dtype=np.float64).reshape(-1)
    if sample_rate != SAMPLE_RATE:
        divisor = math.gcd(SAMPLE_RATE, sample_rate)
        samples = resample_poly(samples, SAMPLE_RATE // divisor, sample_rate // divisor)
    if samples.size == 0:
        return samples
    samples = samples - samples.mean()
    peak = float(np.percentile(np.abs(samples), 99.9))
    gain = min(MAX_GAIN, TARGET_PEAK / peak) if peak > 0 else 1.0
    samples = samples * gain
    level = _speech_level(samples)
    dither = level / 10 ** (DITHER_BELOW_SPEECH_DB / 20)
    rng = np.random.default_rng(_DITHER_SEED)
    return samples + rng.normal(0.0, dither, samples.size)


def _speech_level(samples: np.ndarray) -> float:
    """RMS of the loudest tenth of 25 ms windows: the speech, not the pauses."""
    energies = _window_rms(samples)
    if energies.size == 0:
        return float(np.sqrt(np.mean(np.square(samples)))) or 1e-4
    loud = np.sort(energies)[-max(1, energies.size // 10) :]
    return max(float(np.sqrt(np.mean(np.square(loud)))), 1e-4)


def _window_rms(samples: np.ndarray) -> np.ndarray:
    if samples.size < _WINDOW:
        return np.zeros(0)
    count = 1 + (samples.size - _WINDOW) // _HOP
    squares = np.concatenate([[0.0], np.cumsum(np.square(samples))])
    starts = np.arange(count) * _HOP
    return np.sqrt((squares[starts + _WINDOW] - squares[starts]) / _WINDOW)


def _window_decibels(samples: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(_window_rms(samples), 1e-9))


def speech_range_db(samples: np.ndarray) -> float:
    """How far the loudest windows stand above the quiet ones: roughly the speech's SNR."""
    decibels = _window_decibels(samples)
    if decibels.size == 0:
        return 0.0
    return float(np.percentile(decibels, 99) - np.percentile(decibels, 10))


def word_segments(samples: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges of the words in `samples` (16 kHz), split at pauses, each padded."""
    decibels = _window_decibels(samples)
    if decibels.size == 0:
        return []
    floor = float(np.percentile(decibels, 10))
    peak = float(np.percentile(decibels, 99))
    if peak - floor < 10:
        return []
    voiced = decibels > floor + 0.4 * (peak - floor)
    windows_per_second = SAMPLE_RATE / _HOP
    runs: list[list[int]] = []
    for index in np.flatnonzero(voiced):
        if runs and index - runs[-1][1] <= _MAX_GAP_SECONDS * windows_per_second:
            runs[-1][1] = int(index)
        else:
            runs.append([int(index), int(index)])
    pad = round(_WORD_PAD_SECONDS * SAMPLE_RATE)
    segments = []
    for first, last in runs:
        if (last - first + 1) / windows_per_second < _MIN_WORD_SECONDS:
            continue
        start = max(0, first * _HOP - pad)
        end = min(samples.size, last * _HOP + _WINDOW + pad)
        segments.append((start, end))
    return segments


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
