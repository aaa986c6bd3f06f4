"""Tests for the shared log-mel feature recipe in podium.core.features."""

import struct
import wave

import numpy as np
import pytest
import torch

from podium.core import features


def _tone(freq_hz, rate, seconds=1.0, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_shape_dtype_and_input_shape():
    x = features.log_mel(_tone(440, 16000), 16000)
    assert x.dtype == np.float32
    assert list(x.shape) == features.input_shape() == [1, 40, 101]
    assert np.all(np.isfinite(x))


def test_deterministic_and_copy_safe():
    rng = np.random.default_rng(3)
    audio = rng.standard_normal(16000).astype(np.float32) * 0.1
    before = audio.copy()
    a = features.log_mel(audio, 16000)
    b = features.log_mel(audio, 16000)
    assert a.tobytes() == b.tobytes()
    assert np.array_equal(audio, before)


def test_matches_torch_stft_and_independent_mel_bank():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(16000) * 0.1
    spec = torch.stft(
        torch.tensor(audio), n_fft=512, hop_length=160, win_length=400,
        window=torch.hann_window(400, dtype=torch.float64), center=True, pad_mode="reflect", return_complex=True,
    ).abs() ** 2
    # An independent HTK filterbank written from the textbook definition, one filter at a time.
    def mel(f):
        return 2595 * np.log10(1 + f / 700)

    edges = 700 * (10 ** (np.linspace(mel(20), mel(8000), 42) / 2595) - 1)
    bins = np.linspace(0, 8000, 257)
    bank = np.zeros((40, 257))
    for m in range(40):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(bins):
            if lo < f <= mid:
                bank[m, k] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                bank[m, k] = (hi - f) / (hi - mid)
    expected = np.log(bank @ spec.numpy() + 1e-6)
    got = features.log_mel(audio, 16000)[0]
    assert np.abs(got - expected).max() < 1e-4


def test_pad_and_trim_to_one_second():
    short = _tone(300, 16000, seconds=0.5)
    long = np.concatenate([short, _tone(300, 16000, seconds=2.0)])
    assert features.log_mel(short, 16000).shape == (1, 40, 101)
    assert features.log_mel(long, 16000).shape == (1, 40, 101)
    # Zero padding: the last frames of a half-second clip are silence (the log offset).
    assert features.log_mel(short, 16000)[0, :, -5:].max() < np.log(1e-6) + 1e-3


def test_resampling_keeps_the_tone_in_the_same_mel_band():
    native = features.log_mel(_tone(1000, 16000), 16000)[0].mean(axis=1)
    resampled = features.log_mel(_tone(1000, 44100), 44100)[0].mean(axis=1)
    assert native.argmax() == resampled.argmax()
    assert np.abs(native - resampled).max() < 0.5


def test_stereo_is_mixed_down():
    mono = _tone(500, 16000)
    assert np.allclose(features.log_mel(np.stack([mono, mono], axis=1), 16000), features.log_mel(mono, 16000))


def _write_pcm16(path, samples, rate, channels=1):
    ints = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(ints.tobytes())


def _write_float32(path, samples, rate, channels=1):
    payload = np.asarray(samples, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(payload)) + payload
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_read_wav_pcm16(tmp_path):
    tone = _tone(440, 8000, seconds=0.25)
    _write_pcm16(tmp_path / "a.wav", tone, 8000)
    audio, rate = features.read_wav(tmp_path / "a.wav")
    assert rate == 8000 and audio.dtype == np.float32
    assert np.abs(audio - tone).max() < 1e-4


def test_read_wav_float32_stereo(tmp_path):
    left, right = _tone(440, 16000, 0.1, 0.8), _tone(440, 16000, 0.1, 0.2)
    _write_float32(tmp_path / "f.wav", np.stack([left, right], axis=1).reshape(-1), 16000, channels=2)
    audio, rate = features.read_wav(tmp_path / "f.wav")
    assert rate == 16000 and audio.shape == left.shape
    assert np.abs(audio - (left + right) / 2).max() < 1e-6


def test_read_wav_refuses_garbage(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"not a wav at all")
    with pytest.raises((ValueError, EOFError, wave.Error)):
        features.read_wav(tmp_path / "bad.wav")


@pytest.mark.parametrize(
    "change, key",
    [({"n_mels": 0}, "n_mels"), ({"fmax": 9000}, "fmax"), ({"win_ms": 50}, "win_ms"),
     ({"mel_scale": "slaney"}, "mel_scale"), ({"colour": "red"}, "colour"), ({"n_fft": 512.5}, "n_fft")],
)
def test_validate_recipe_names_the_bad_key(change, key):
    with pytest.raises(ValueError, match=key):
        features.validate_recipe({**features.DEFAULT_RECIPE, **change})


def test_other_recipe_changes_shape():
    recipe = {**features.DEFAULT_RECIPE, "n_mels": 64, "center": False}
    assert features.input_shape(recipe) == [1, 64, 97]
    assert features.log_mel(_tone(440, 16000), 16000, recipe).shape == (1, 64, 97)


def test_describe_publishes_every_recipe_value():
    text = features.describe()
    for key in features.DEFAULT_RECIPE:
        assert key in text
    assert "[1, 40, 101]" in text and "HTK" in text and "Hann" in text
