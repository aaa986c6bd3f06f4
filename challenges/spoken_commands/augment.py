"""Turn a synthesised word into a realistic one-second clip: trim, shift, babble, noise, loudness."""

import numpy as np


def trim_silence(audio: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """Cut leading and trailing samples quieter than threshold times the peak."""
    if audio.size == 0:
        return audio
    loud = np.flatnonzero(np.abs(audio) >= threshold * np.abs(audio).max())
    if loud.size == 0:
        return audio[:0]
    return audio[loud[0] : loud[-1] + 1]


def colored_noise(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^alpha (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / freqs ** (alpha / 2.0), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def hum(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Mains hum: a few harmonics of 50 or 60 Hz with random phases, unit RMS."""
    t = np.arange(n) / sample_rate
    base = rng.choice([50.0, 60.0])
    wave = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3, 5))
    return wave / (np.sqrt(np.mean(wave**2)) + 1e-12)


def place(audio: np.ndarray, n: int, offset: int) -> np.ndarray:
    """Put audio into a zero clip of n samples starting at offset, cutting what does not fit."""
    clip = np.zeros(n)
    part = audio[: max(0, n - offset)]
    clip[offset : offset + part.size] = part
    return clip


def mix(word: np.ndarray, rng: np.random.Generator, n: int, sample_rate: int, babble: list, params: dict) -> np.ndarray:
    """Return the finished float32 clip of n samples for one trimmed word and its distractor words."""
    if word.size > n:
        word = word[:n]
    offset = int(rng.integers(0, n - word.size + 1))
    speech = place(word, n, offset)
    speech_power = float(np.mean(word**2)) + 1e-12
    clip = speech.copy()
    for other in babble:
        other = trim_silence(other)
        if other.size == 0:
            continue
        level_db = rng.uniform(*params["babble_db"])
        scale = np.sqrt(speech_power / (np.mean(other**2) + 1e-12)) * 10 ** (level_db / 20)
        clip += scale * place(other, n, int(rng.integers(0, max(1, n - other.size // 2))))
    noise = colored_noise(rng, n, rng.uniform(0.0, 2.0))
    if rng.random() < params["hum_p"]:
        noise = noise + rng.uniform(0.3, 1.5) * hum(rng, n, sample_rate)
    snr_db = rng.uniform(*params["snr_db"])
    clip += noise * np.sqrt(speech_power / np.mean(noise**2) / 10 ** (snr_db / 10))
    peak = 10 ** (rng.uniform(*params["peak_db"]) / 20)
    clip *= peak / (np.abs(clip).max() + 1e-12)
    return clip.astype(np.float32)
