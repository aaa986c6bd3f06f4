"""Measure the sandbox's cost: `python -m worker.sandbox.bench [--runs N] [--threads T]`.

Compares the sandboxed score of a small CNN on 1000 x [1, 28, 28] with raw
inference of the same TorchScript file in this (warm) process.
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
    import torch
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10)).eval()


def raw_pass_s(model, xt, batch: int) -> float:
    """Seconds for one pass of an already loaded model over xt."""
    import torch

    t0 = time.perf_counter()
    with torch.inference_mode():
        torch.cat([model(xt[j:j + batch]) for j in range(0, len(xt), batch)]).numpy()
    return time.perf_counter() - t0


def main(argv=None) -> None:
    """Print warm-up, fork+confine and per-submission overhead over raw inference."""
    import torch

    from worker.sandbox import ScoringPool

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=None, help="batch size for both sides (default: the sandbox's)")
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
        import torch as _t

        _t.set_num_threads(pool.threads)
        model = _t.jit.load(model_path).eval()
        xt = _t.from_numpy(x)
        from worker.sandbox.zygote import DEFAULT_BATCH

        batch = args.batch or DEFAULT_BATCH["cpu" if pool.health()["device"] == "cpu" else "cuda"]
        for _ in range(2):
            raw_pass_s(model, xt, batch)
        # Interleaved, so that load from other processes on the machine hits both sides alike.
        runs, raw = [], []
        try:
            for i in range(args.runs + 1):
                r = pool.run(model_path=model_path, inputs_path=inputs, inputs_key="bench", num_classes=10,
                             time_limit_s=60, memory_limit_mb=2048, batch_size=batch)
                assert r.ok, r.reason
                if i:
                    runs.append(r.timings)
                    raw.append(raw_pass_s(model, xt, batch))
            health = pool.health()
        finally:
            pool.close()

    def med(key):
        return statistics.median(t[key] for t in runs)

    raw_s = statistics.median(raw)
    total = med("total_s")
    print(f"device {health['device']}, threads {pool.threads}, layers ok: {health['ok']}")
    print(f"zygote start (fresh interpreter, torch import, warm-up, probe): {warm:.3f} s  (inside: {health['warmup_s']:.3f} s)")
    print(f"  child fork + confinement (off the path, in the spare): median {med('child_prep_s') * 1000:.1f} ms")
    for key in ("fork_s", "confine_s", "load_s", "inference_s", "transfer_s", "total_s"):
        print(f"  sandbox {key:12s} median {med(key) * 1000:8.1f} ms")
    print(f"raw inference (warm process, same file, batch {batch}): median {raw_s * 1000:.1f} ms")
    print(f"per-submission overhead over raw: {(total - raw_s) * 1000:.1f} ms  (ratio {total / raw_s:.2f})")


if __name__ == "__main__":
    main()
