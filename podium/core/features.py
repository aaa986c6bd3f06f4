"""Log-mel spectrogram features shared by challenge builders, starter kits and `podium check`.

This file depends on numpy only, so starter kits ship a byte-identical copy of it
and students can `from features import log_mel` without installing Podium.
"""

import functools
import struct
import wave

import numpy as np

DEFAULT_RECIPE = {
    "sample_rate": 16000,
    "n_mels": 40,
    "win_ms": 25,
    "hop_ms": 10,
    "n_fft": 512,
    "fmin": 20,
    "fmax": 8000,
    "duration_s": 1.0,
    "log_offset": 1e-6,
    "window": "hann",
    "center": True,
    "mel_scale": "htk",
    "power": 2.0,
}

_NUMERIC_KEYS = ("sample_rate", "n_mels", "win_ms", "hop_ms", "n_fft", "fmin", "fmax", "duration_s", "log_offset", "power")
_FIXED_KEYS = {"window": ("hann",), "mel_scale": ("htk",), "center": (True, False)}

_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_IEEE_FLOAT = 3
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def validate_recipe(recipe: dict) -> dict:
    """Return the recipe completed with defaults, or raise ValueError naming the bad key."""
    unknown = sorted(set(recipe) - set(DEFAULT_RECIPE))
    if unknown:
        raise ValueError(f"features: unknown key {unknown[0]!r}; known keys: {', '.join(DEFAULT_RECIPE)}")
    full = {**DEFAULT_RECIPE, **recipe}
    for key in _NUMERIC_KEYS:
        value = full[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
            if not (key == "fmin" and value == 0):
                raise ValueError(f"features.{key}: expected a positive number, got {value!r}")
    for key in ("sample_rate", "n_mels", "n_fft"):
        if int(full[key]) != full[key]:
            raise ValueError(f"features.{key}: expected an integer, got {full[key]!r}")
    for key, allowed in _FIXED_KEYS.items():
        if not any(full[key] == a and type(full[key]) is type(a) for a in allowed):
            raise ValueError(f"features.{key}: expected one of {list(allowed)}, got {full[key]!r}")
    win, hop = _samples(full, "win_ms"), _samples(full, "hop_ms")
    if win > full["n_fft"]:
        raise ValueError(f"features.win_ms: window of {win} samples is longer than n_fft={full['n_fft']}")
    if win < 2 or hop < 1:
        raise ValueError(f"features.{'win_ms' if win < 2 else 'hop_ms'}: shorter than the sample rate allows")
    if not full["fmin"] < full["fmax"] <= full["sample_rate"] / 2:
        raise ValueError(f"features.fmax: need fmin < fmax <= sample_rate/2, got fmin={full['fmin']} fmax={full['fmax']}")
    if _num_samples(full) < full["n_fft"]:
        raise ValueError("features.duration_s: the clip is shorter than one FFT frame")
    return full


def input_shape(recipe: dict = DEFAULT_RECIPE) -> list[int]:
    """Return [1, n_mels, frames], the shape log_mel produces for this recipe."""
    full = validate_recipe(recipe)
    n, hop = _num_samples(full), _samples(full, "hop_ms")
    if full["center"]:
        frames = 1 + n // hop
    else:
        frames = 1 + (n - full["n_fft"]) // hop
    return [1, int(full["n_mels"]), int(frames)]


def log_mel(waveform: np.ndarray, sample_rate: int, recipe: dict = DEFAULT_RECIPE) -> np.ndarray:
    """Turn a mono waveform into float32 log-mel features of shape [1, n_mels, frames]."""
    full = validate_recipe(recipe)
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim == 2:  # [samples, channels] from a multi-channel reader
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise ValueError(f"waveform: expected a 1-D mono signal, got shape {np.shape(waveform)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("waveform: contains NaN or Inf")
    target = int(full["sample_rate"])
    if int(sample_rate) != target:
        x = resample(x, int(sample_rate), target)
    x = fit_length(x, _num_samples(full))
    power = _power_spectrogram(x, full)
    mel = _apply_filterbank(_cached_filterbank(tuple(sorted(full.items()))), power)
    return np.log(mel + full["log_offset"]).astype(np.float32)[np.newaxis]


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited FFT resampling: keep the spectrum below both Nyquist rates, then invert."""
    n_out = int(round(len(x) * rate_out / rate_in))
    if n_out < 1:
        return np.zeros(0)
    spectrum = np.fft.rfft(x)
    keep = min(len(spectrum), n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, dtype=complex)
    out[:keep] = spectrum[:keep]
    return np.fft.irfft(out, n_out) * (n_out / len(x))


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Keep the first n samples, zero-padding at the end when the clip is shorter."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - len(x))])


def mel_filterbank(recipe: dict = DEFAULT_RECIPE) -> np.ndarray:
    """Triangular HTK-mel filters [n_mels, n_fft//2+1], peak 1, no area normalisation."""
    full = validate_recipe(recipe)
    n_freqs = int(full["n_fft"]) // 2 + 1
    fft_hz = np.linspace(0.0, full["sample_rate"] / 2, n_freqs)
    mel_points = np.linspace(_hz_to_mel(full["fmin"]), _hz_to_mel(full["fmax"]), int(full["n_mels"]) + 2)
    hz_points = _mel_to_hz(mel_points)
    widths = np.diff(hz_points)
    ramps = hz_points[:, np.newaxis] - fft_hz[np.newaxis, :]
    rising = -ramps[:-2] / widths[:-1, np.newaxis]
    falling = ramps[2:] / widths[1:, np.newaxis]
    return np.maximum(0.0, np.minimum(rising, falling))


def read_wav(path) -> tuple[np.ndarray, int]:
    """Read a PCM (8/16/24/32-bit) or IEEE-float WAV file as mono float32 in [-1, 1] and its sample rate."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
        samples = _pcm_to_float(raw, width)
    except wave.Error:
        # The stdlib wave module reads integer PCM only; float WAVs are parsed by hand.
        samples, channels, rate = _read_float_wav(path)
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    return np.clip(samples, -1.0, 1.0).astype(np.float32), int(rate)


def describe(recipe: dict = DEFAULT_RECIPE) -> str:
    """Markdown explaining the exact feature recipe, so students can compute it on their own recordings."""
    r = validate_recipe(recipe)
    shape = input_shape(r)
    sr = int(r["sample_rate"])
    win, hop, n = _samples(r, "win_ms"), _samples(r, "hop_ms"), _num_samples(r)
    pad = int(r["n_fft"]) // 2
    framing = (
        f"The signal is reflect-padded by n_fft/2 = {pad} samples on both sides, so frame t is centred on sample t*{hop}; "
        f"frames = 1 + {n} // {hop} = {shape[2]}."
        if r["center"]
        else f"No padding: frame t starts at sample t*{hop}; frames = 1 + ({n} - {r['n_fft']}) // {hop} = {shape[2]}."
    )
    center_py = "True" if r["center"] else "False"
    return f"""## Feature recipe

Every clip becomes a log-mel spectrogram, a float32 array of shape `{shape}`
(`[1, n_mels, frames]`); a batch for the model is `[B, {shape[0]}, {shape[1]}, {shape[2]}]`.
Podium computes them with `podium/features.py` (numpy only). The bundled challenges'
starter kits ship a byte-identical copy as `features.py`, so on your own recordings
`from features import log_mel, read_wav` gives exactly the grader's features:

```python
from features import log_mel, read_wav
audio, rate = read_wav("my_recording.wav")  # mono float32 in [-1, 1]
x = log_mel(audio, rate)                     # numpy float32 {shape}
```

Step by step (numpy only):

1. **Read** the WAV (8/16/24/32-bit PCM or 32/64-bit float), average the channels to mono, scale to [-1, 1].
2. **Resample** to {sr} Hz if needed, by FFT resampling (keep the spectrum below both Nyquist
   frequencies, inverse FFT at the new length; like `scipy.signal.resample`). Record at {sr} Hz to skip this.
3. **Fix the length** to {r['duration_s']} s = {n} samples: keep the first {n} samples, or zero-pad at the end.
   No gain normalisation: loudness is part of the input.
4. **STFT**: periodic Hann window of {win} samples ({r['win_ms']} ms), hop {hop} samples ({r['hop_ms']} ms),
   each windowed frame zero-padded to n_fft = {r['n_fft']}. {framing}
5. **Power spectrum**: |FFT|^{r['power']:g}, {int(r['n_fft']) // 2 + 1} bins from 0 to {sr // 2} Hz.
6. **Mel filterbank**: {r['n_mels']} triangular filters on the HTK mel scale (mel = 2595 log10(1 + f/700)),
   edges equally spaced in mel between {r['fmin']} Hz and {r['fmax']} Hz, peak height 1, no area (Slaney) normalisation.
7. **Log**: natural log of (mel energy + {r['log_offset']:g}).

Steps 4-5 equal `torch.stft(audio, n_fft={r['n_fft']}, hop_length={hop}, win_length={win},
window=torch.hann_window({win}), center={center_py}, pad_mode="reflect", return_complex=True).abs() ** {r['power']:g}`
(Podium's tests check this). With torchaudio, the whole recipe reads (up to float rounding):
`torch.log(torchaudio.transforms.MelSpectrogram(sample_rate={sr}, n_fft={r['n_fft']}, win_length={win},
hop_length={hop}, f_min={r['fmin']}, f_max={r['fmax']}, n_mels={r['n_mels']}, power={r['power']:g}, center={center_py},
pad_mode="reflect", mel_scale="htk", norm=None)(audio) + {r['log_offset']:g})`.

Recipe as published in `challenge.toml` (`[features]`):

```toml
{_toml_table(r)}
```
"""


def _samples(recipe: dict, key: str) -> int:
    return int(round(recipe["sample_rate"] * recipe[key] / 1000))


def _num_samples(recipe: dict) -> int:
    return int(round(recipe["sample_rate"] * recipe["duration_s"]))


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def _power_spectrogram(x: np.ndarray, recipe: dict) -> np.ndarray:
    n_fft, win, hop = int(recipe["n_fft"]), _samples(recipe, "win_ms"), _samples(recipe, "hop_ms")
    if recipe["center"]:
        x = np.pad(x, n_fft // 2, mode="reflect")
    # A win-sample window centred in an n_fft frame, as torch.stft and librosa place it.
    offset = (n_fft - win) // 2
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    frames = 1 + (len(x) - n_fft) // hop
    starts = offset + hop * np.arange(frames)
    segments = x[starts[:, np.newaxis] + np.arange(win)[np.newaxis, :]] * window
    spectrum = np.abs(np.fft.rfft(segments, n=n_fft, axis=1)) ** recipe["power"]
    return spectrum.T


@functools.lru_cache(maxsize=8)
def _cached_filterbank(recipe_items: tuple) -> np.ndarray:
    bank = mel_filterbank(dict(recipe_items))
    bank.setflags(write=False)
    return bank


def _apply_filterbank(bank: np.ndarray, power: np.ndarray) -> np.ndarray:
    # Same as bank @ power, but summing only each filter's nonzero bins, in a fixed order and without BLAS:
    # BLAS thread pools make a small matmul 5x slower between other work, and vary the rounding by machine.
    rows, cols = np.nonzero(bank)
    weighted = bank[rows, cols][:, np.newaxis] * power[cols]
    counts = np.bincount(rows, minlength=bank.shape[0])
    starts = np.minimum(np.concatenate([[0], np.cumsum(counts)[:-1]]), max(len(rows) - 1, 0))
    if len(rows) == 0:
        return np.zeros((bank.shape[0], power.shape[1]))
    mel = np.add.reduceat(weighted, starts, axis=0)
    mel[counts == 0] = 0.0
    return mel


def _pcm_to_float(raw: bytes, width: int) -> np.ndarray:
    if width == 1:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2") / 32768.0
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        return ints / float(1 << 23)
    if width == 4:
        return np.frombuffer(raw, dtype="<i4") / float(1 << 31)
    raise ValueError(f"unsupported WAV sample width: {width} bytes")


def _read_float_wav(path) -> tuple[np.ndarray, int, int]:
    data = open(path, "rb").read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    fmt, payload, pos = None, None, 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = body
        elif chunk_id == b"data":
            payload = body
        pos += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise ValueError(f"{path}: WAV without fmt or data chunk")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]
    if tag == _WAVE_FORMAT_PCM:
        width = bits // 8
        usable = len(payload) // width * width
        return _pcm_to_float(payload[:usable], width), channels, rate
    if tag != _WAVE_FORMAT_IEEE_FLOAT or bits not in (32, 64):
        raise ValueError(f"{path}: unsupported WAV format tag {tag} with {bits}-bit samples")
    dtype = "<f4" if bits == 32 else "<f8"
    usable = len(payload) // (bits // 8) * (bits // 8)
    return np.frombuffer(payload[:usable], dtype=dtype).astype(np.float64), channels, rate


def _toml_table(recipe: dict) -> str:
    lines = ["[features]"]
    for key, value in recipe.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = f'"{value}"'
        else:
            text = repr(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines)
