"""Text to speech with eSpeak NG, called through ctypes.

The library and its voice data come from the `espeakng_loader` wheel, so no system package and
no espeak binary is needed. eSpeak keeps global state and is not thread-safe: one lock guards
both the one-time initialisation and every synthesis.

eSpeak also carries synthesis state from one call to the next (pitch flutter phase, automatic
gain), so the same text can come out a few samples different on a later call. Results are
memoised per process, which makes a repeated render in one worker identical.
"""

from __future__ import annotations

import ctypes
import functools
import threading

import espeakng_loader
import numpy as np

DEFAULT_VOICE = "en"
DEFAULT_RATE_WPM = 170
MIN_RATE_WPM = 80
MAX_RATE_WPM = 450

# Values from eSpeak NG's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() on bad data
_POSITION_CHARACTER = 1
_CHARACTERS_UTF8 = 1
_PARAMETER_RATE = 1
_STATUS_OK = 0
_CALLBACK_CONTINUE = 0
# A fixed seed for the noise generators some voices use (klatt, breathy variants).
_RANDOM_SEED = 1

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SpeechError(RuntimeError):
    """eSpeak NG could not be loaded, initialised, or refused to speak."""


class _Engine:
    """The loaded library; only ever used while `_engine_lock` is held."""

    def __init__(self) -> None:
        try:
            library = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as error:
            raise SpeechError(f"cannot load eSpeak NG: {error}") from error

        library.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        library.espeak_Initialize.restype = ctypes.c_int
        library.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        library.espeak_SetSynthCallback.restype = None
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        library.espeak_SetVoiceByName.restype = ctypes.c_int
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_SetParameter.restype = ctypes.c_int
        library.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        library.espeak_Synth.restype = ctypes.c_int
        self._set_random_seed = getattr(library, "espeak_ng_SetRandSeed", None)
        if self._set_random_seed is not None:
            self._set_random_seed.argtypes = [ctypes.c_long]
            self._set_random_seed.restype = None

        sample_rate = library.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if sample_rate <= 0:
            raise SpeechError(f"espeak_Initialize failed (returned {sample_rate})")

        self.library = library
        self.sample_rate = sample_rate
        self._chunks: list[np.ndarray] = []
        # Kept on the instance so the C function pointer outlives every call into the library.
        self._callback = _SynthCallback(self._collect_samples)
        library.espeak_SetSynthCallback(self._callback)

    def _collect_samples(
        self, samples: ctypes._Pointer[ctypes.c_short], sample_count: int, _events: int | None
    ) -> int:
        if samples and sample_count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(sample_count,)).copy())
        return _CALLBACK_CONTINUE

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> np.ndarray:
        status = self.library.espeak_SetVoiceByName(voice.encode())
        if status != _STATUS_OK:
            raise SpeechError(f"eSpeak NG has no voice {voice!r} (status {status})")
        self.library.espeak_SetParameter(_PARAMETER_RATE, rate_wpm, 0)
        if self._set_random_seed is not None:
            self._set_random_seed(_RANDOM_SEED)

        encoded = text.encode()
        self._chunks = []
        try:
            status = self.library.espeak_Synth(
                encoded,
                len(encoded) + 1,
                0,
                _POSITION_CHARACTER,
                0,
                _CHARACTERS_UTF8,
                None,
                None,
            )
            if status != _STATUS_OK:
                raise SpeechError(f"espeak_Synth failed (status {status})")
            chunks = self._chunks
        finally:
            self._chunks = []
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return (np.concatenate(chunks).astype(np.float32) / 32768.0).astype(np.float32)


_engine_lock = threading.Lock()
_engine: _Engine | None = None


def _get_engine() -> _Engine:
    """Caller must hold `_engine_lock`."""
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


@functools.lru_cache(maxsize=128)
def _synthesize_memoised(text: str, voice: str, rate_wpm: int) -> tuple[np.ndarray, int]:
    with _engine_lock:
        engine = _get_engine()
        samples = engine.synthesize(text, voice, rate_wpm)
        samples.flags.writeable = False
        return samples, engine.sample_rate


def sample_rate() -> int:
    """The rate eSpeak NG synthesises at (initialises the library on first use)."""
    with _engine_lock:
        return _get_engine().sample_rate


def synthesize(
    text: str, *, voice: str = DEFAULT_VOICE, rate_wpm: int = DEFAULT_RATE_WPM
) -> tuple[np.ndarray, int]:
    """Speak `text`; return float32 mono samples in [-1, 1] and their sample rate.

    Text is read literally: no SSML and no phoneme input, whatever the prompt contains.
    """
    if not MIN_RATE_WPM <= rate_wpm <= MAX_RATE_WPM:
        raise ValueError(f"rate_wpm must be in [{MIN_RATE_WPM}, {MAX_RATE_WPM}], got {rate_wpm}")
    if not voice or "\x00" in voice:
        raise ValueError(f"invalid voice name {voice!r}")
    # A NUL would end the C string early; the rest of the text should still be spoken.
    cleaned = " ".join(text.replace("\x00", " ").split())
    if not cleaned:
        return np.zeros(0, dtype=np.float32), sample_rate()
    samples, rate = _synthesize_memoised(cleaned, voice, rate_wpm)
    return samples.copy(), rate
