"""(a) Raw inference: the same model file (any format) on the same tensors in a bare loop, in a warm process of its own.

The model is loaded and run by the sandbox's own adapter (worker/sandbox/loaders.py: torch.jit.load, torch.export.load
or an ONNX Runtime session with the sandbox's options), so each format is compared with its own runtime.

The loop runs in its own interpreter with the scoring child's batch size, torch thread count and malloc settings, so
it is the fastest this loop runs here (with glibc's default malloc, batch-128 passes of the starter CNN take about
88 ms instead of 61 ms). It stays alive between passes so that passes interleave with the other measurements and see
the same machine load.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import cpu

ROOT = str(Path(__file__).resolve().parent.parent)

class RawInference:
    """A warm process that runs one pass over the test inputs each time one_pass() asks."""

    def __init__(self, model_path: str, inputs_path: str, threads: int, batch: int | None = None, warm_passes: int = 3,
                 device: str = "cpu"):
        from podium.worker.sandbox.pool import scoring_env

        self.threads = threads
        self.times: list[float] = []
        self.cpu_s: list[float] = []
        self.fresh_times: list[float] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.raw", model_path, inputs_path, str(batch or 0)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     env=dict(os.environ, **self._sandbox_settings(scoring_env(threads, device)),
                                              PYTHONPATH=ROOT, RAW_THREADS=str(threads), RAW_DEVICE=device), cwd=ROOT)
        self.n, self.batch = (int(v) for v in self._read().split())
        for _ in range(warm_passes):
            self.one_pass(record=False)

    @staticmethod
    def _sandbox_settings(env: dict) -> dict:
        """The scoring child's malloc, OpenMP spin and runtime settings, so the raw loop runs as the child does."""
        keep = ("GLIBC_TUNABLES", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ORT_DISABLE_TELEMETRY")
        return {k: env[k] for k in keep if k in env}

    def _read(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the raw-inference process exited ({self.proc.wait()})")
        return line.strip()

    def fresh_pass(self) -> float:
        """Seconds to read and load the model anew and make one pass with it: the floor for a model never run."""
        self.proc.stdin.write("fresh\n")
        took = float(self._read())
        self.fresh_times.append(took)
        return took

    def one_pass(self, record: bool = True) -> float:
        """Seconds for one pass over the whole test set, scores copied out as numpy."""
        cpu0 = cpu.sample(self.proc.pid)[self.proc.pid][1]
        self.proc.stdin.write("pass\n")
        took = float(self._read())
        if record:
            self.times.append(took)
            self.cpu_s.append(cpu.sample(self.proc.pid)[self.proc.pid][1] - cpu0)
        return took

    def summary(self) -> dict:
        """Median and minimum of the recorded passes."""
        return {"median_s": statistics.median(self.times), "min_s": min(self.times), "passes": len(self.times),
                "n": self.n, "threads": self.threads, "batch": self.batch,
                "cpu_median_s": statistics.median(self.cpu_s),
                "fresh_median_s": statistics.median(self.fresh_times) if self.fresh_times else None}

    def close(self) -> None:
        """Stop the process."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)

    def __enter__(self) -> RawInference:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(model_path: str, inputs_path: str, batch: int) -> None:
    """Load the model and inputs, then time one pass per "pass" line on stdin (per "fresh" line: load the model
    anew first), printing seconds; batch 0: the sandbox's choice for these inputs."""
    import numpy as np
    import torch

    from podium.worker.sandbox.batching import default_batch
    from podium.worker.sandbox.loaders import load_model

    threads = int(os.environ["RAW_THREADS"])
    torch.set_num_threads(threads)
    device = os.environ.get("RAW_DEVICE", "cpu")
    with open(model_path, "rb") as f:
        data = f.read()
    model = load_model(data, device=device, threads=threads)
    with np.load(inputs_path) as npz:
        x = np.ascontiguousarray(npz["x"], dtype=np.float32)
    batch = batch or default_batch(device, int(np.prod(x.shape[1:])))
    print(len(x), batch, flush=True)
    for line in sys.stdin:
        t0 = time.perf_counter()
        if line.strip() == "fresh":  # a newly loaded copy, as each submission is a model never run before
            with open(model_path, "rb") as f:
                model = load_model(f.read(), device=device, threads=threads)
        np.concatenate([model.run(x[i:i + batch]) for i in range(0, len(x), batch)])
        print(time.perf_counter() - t0, flush=True)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
