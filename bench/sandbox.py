"""Measure the sandbox's cost: `.venv/bin/python -m bench.sandbox [--runs N] [--threads T]`.

Compares the sandboxed score of a small CNN on 1000 x [1, 28, 28] with raw
inference of the same TorchScript file in a warm process (bench/raw.py),
interleaved so that both see the same machine load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def small_cnn():
    """The classic starter-kit shape: two conv blocks, two linear layers."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10)).eval()


def main(argv=None) -> None:
    """Print warm-up, fork+confine and per-submission overhead over raw inference."""
    import torch

    from bench.raw import RawInference
    from podium.worker.sandbox import ScoringPool

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=None, help="batch size for both sides (default: the sandbox's CPU batch)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        model_path, inputs = str(Path(d) / "m.pt"), str(Path(d) / "test.npz")
        torch.jit.save(torch.jit.script(small_cnn()), model_path)
        x = np.random.default_rng(0).random((args.n, 1, 28, 28), dtype=np.float32)
        np.savez(inputs, x=x, y=np.zeros(args.n, np.int64))
        t0 = time.perf_counter()
        pool = ScoringPool(threads=args.threads)
        pool.start()
        warm = time.perf_counter() - t0
        runs = []
        try:
            with RawInference(model_path, inputs, pool.threads, args.batch) as raw:
                for i in range(args.runs + 1):
                    r = pool.run(model_path=model_path, inputs_path=inputs, inputs_key="bench", num_classes=10,
                                 time_limit_s=60, memory_limit_mb=2048, batch_size=raw.batch)
                    assert r.ok, r.reason
                    if i:
                        runs.append(r.timings)
                        raw.one_pass()
            health = pool.health()
        finally:
            pool.close()

    def med(key):
        return statistics.median(t[key] for t in runs)

    raw_s = raw.summary()["median_s"]
    total = med("total_s")
    print(f"device {health['device']}, threads {pool.threads}, layers ok: {health['ok']}")
    print(f"zygote start (fresh interpreter, torch import, warm-up, probe): {warm:.3f} s  (inside: {health['warmup_s']:.3f} s)")
    print(f"  child fork + confinement (off the path, in the spare): median {med('child_prep_s') * 1000:.1f} ms")
    for key in ("fork_s", "confine_s", "load_s", "inference_s", "transfer_s", "total_s"):
        print(f"  sandbox {key:12s} median {med(key) * 1000:8.1f} ms")
    print(f"raw inference (warm process, same file, batch {raw.batch}): median {raw_s * 1000:.1f} ms")
    print(f"per-submission overhead over raw: {(total - raw_s) * 1000:.1f} ms  (ratio {total / raw_s:.2f})")


if __name__ == "__main__":
    main()
