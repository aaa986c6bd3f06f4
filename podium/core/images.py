"""PNG images as model inputs: one file -> float32 [C, H, W] in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def read_png(path: Path, channels: int = 1) -> np.ndarray:
    """Return a PNG as float32 [channels, H, W] scaled to [0, 1] (grayscale for 1 channel, RGB for 3)."""
    from PIL import Image

    if channels not in (1, 3):
        raise ValueError(f"PNG inputs need 1 (grayscale) or 3 (RGB) channels, not {channels}")
    with Image.open(path) as img:
        if img.format != "PNG":
            raise ValueError(f"not a PNG image (found {img.format})")
        img.load()
        if channels == 1 and img.mode in _SIXTEEN_BIT:
            arr = np.asarray(img, dtype=np.float64) / 65535.0
            return arr[None].astype(np.float32)
        if img.mode in ("I", "F"):
            raise ValueError(f"PNG mode {img.mode} is not supported; save 8- or 16-bit images")
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
    return arr[None] if channels == 1 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def write_png(path: Path, image: np.ndarray) -> None:
    """Write float [1, H, W] or [3, H, W] in [0, 1] as an 8-bit PNG (for exporting a data set as folders)."""
    from PIL import Image

    arr = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    if arr.shape[0] == 1:
        Image.fromarray(arr[0]).save(path, format="PNG")
    else:
        Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0))).save(path, format="PNG")
