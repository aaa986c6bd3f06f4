"""How many inputs a scoring child feeds the model at once."""
from __future__ import annotations

CUDA_BATCH = 1024
# On a CPU a batch's activations should stay in cache and under malloc's 32 MB mmap threshold, or every batch
# faults its memory in again. Measured on 2 cores, starter CNN, two threads: digits [1, 28, 28] x 1000: batch
# 128 61 ms, 1024 72 ms; spoken-commands [1, 40, 101] x 800: batch 32 255 ms, 64 250-275 ms, 128 285 ms, 256 325 ms.
CPU_BATCH_ELEMENTS = 1 << 17
CPU_BATCH_MAX = 128


def default_batch(device: str, input_elements: int) -> int:
    """The batch size for inputs of this many elements each: fixed on a GPU, by input size on a CPU."""
    if device != "cpu":
        return CUDA_BATCH
    fits = max(1, CPU_BATCH_ELEMENTS // max(1, input_elements))
    return max(8, min(CPU_BATCH_MAX, 1 << (fits.bit_length() - 1)))
