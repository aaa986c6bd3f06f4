"""Offline speech synthesis with the espeak-ng library from the espeakng-loader wheel, through ctypes."""

import _ctypes
import ctypes

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_engine = None


class Espeak:
    """One loaded espeak-ng library; it keeps global state, so hold at most one per process (see fresh_engine)."""

    def __init__(self, seed: int = 0):
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed with {self.sample_rate} (data path {data_path.decode()})")
        self._variants = set(variants())
        self._chunks = []
        # Keep a reference: ctypes frees the trampoline when the Python callable is collected.
        self._callback = _CALLBACK(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.seed(seed)

    def seed(self, seed: int) -> None:
        """Seed espeak-ng's generator and libc's rand(), which the Klatt voices draw from."""
        # Unseeded, the same call gives different samples each time (pitch jitter, noise sources).
        self._lib.espeak_ng_SetRandSeed(int(seed))
        ctypes.CDLL(None).srand(ctypes.c_uint(seed % 2**32))

    def close(self) -> None:
        """Terminate the engine and unload the library, dropping all of its static state."""
        self._lib.espeak_Terminate()
        _ctypes.dlclose(self._lib._handle)
        self._lib = None

    def _collect(self, samples, count, events):
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def say(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50, volume: int = 100) -> np.ndarray:
        """Synthesise text with a voice like 'en-us+m3'; return float32 samples at self.sample_rate."""
        variant = voice.partition("+")[2]
        if variant and variant not in self._variants:
            # espeak-ng falls back to the plain voice without a word; a typo would go unnoticed.
            raise ValueError(f"espeak-ng has no voice {voice!r} (no variant {variant!r})")
        status = self._lib.espeak_SetVoiceByName(voice.encode())
        if status != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r} (error {status})")
        for name, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range), ("volume", volume)):
            self._lib.espeak_SetParameter(_PARAMETERS[name], int(value), 0)
        self._chunks = []
        data = text.encode("utf-8")
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with {status} for {text!r} in voice {voice!r}")
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return (np.concatenate(self._chunks) / 32768.0).astype(np.float32)


def fresh_engine(seed: int) -> Espeak:
    """Unload this process's engine and load a new, seeded one with no memory of earlier calls."""
    # espeak-ng keeps synthesis state in static variables (pitch flutter among them) that survive
    # espeak_Terminate and reseeding, so the same call sounds different depending on what was said
    # before. Only a freshly loaded library starts from a known state.
    global _engine
    if _engine is not None:
        _engine.close()
        _engine = None
    _engine = Espeak(seed)
    return _engine


def variants() -> list[str]:
    """Return the voice variant names (the part after '+') that the installed espeak-ng data holds."""
    from pathlib import Path

    import espeakng_loader

    folder = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())
