"""What measuring a model's cost adds to grading: `.venv/bin/python -m bench.cost [--runs N] [--threads T]
[--formats torchscript,exported_program,onnx]`.

Scores each bundled challenge's starter-shaped CNN (1000 x [1, 28, 28] and 800 x [1, 40, 101]) in the real
sandbox, RUNS times per format, and compares the child's measuring step (cost_s: params, and FLOPs from one
batch-1 FlopCounterMode pass or from the ONNX graph) with the whole submission (total_s) and with the run-to-run
spread of total_s.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

SHAPES = {"digits": ((1, 28, 28), 1000), "spoken-commands": ((1, 40, 101), 800)}


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main(argv=None) -> None:
    """Print per challenge: median cost_s, inference_s, total_s, the IQR of total_s, and the share of measuring."""
    from bench.models import starter_cnn
    from podium.worker.sandbox import ScoringPool
    from tests.support.models import model_bytes

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--formats", default="torchscript")
    args = ap.parse_args(argv)
    pool = ScoringPool(threads=args.threads)
    pool.start()
    try:
        with tempfile.TemporaryDirectory() as d:
            for slug, (shape, n), fmt in ((s, v, f) for s, v in SHAPES.items() for f in args.formats.split(",")):
                model_path, inputs = Path(d) / f"{slug}.{fmt}", str(Path(d) / f"{slug}.npz")
                model_path.write_bytes(model_bytes(fmt, starter_cnn(shape), shape))
                model_path = str(model_path)
                np.savez(inputs, x=np.random.default_rng(0).random((n, *shape), dtype=np.float32),
                         y=np.zeros(n, np.int64))
                runs = []
                for i in range(args.runs + 1):
                    r = pool.run(model_path=model_path, inputs_path=inputs, inputs_key=slug, num_classes=10,
                                 time_limit_s=60, memory_limit_mb=2048)
                    assert r.ok, r.reason
                    if i:  # the first run decodes the inputs
                        runs.append(r)
                cost = [r.timings["cost_s"] * 1000 for r in runs]
                infer = [r.timings["inference_s"] * 1000 for r in runs]
                total = [r.timings["total_s"] * 1000 for r in runs]
                q1, med, q3 = _quartiles(total)
                c = runs[0].cost
                measured = (f"{c['params']:,} params, {c['flops_per_input'] / 1e6:.2f} MFLOPs/input"
                            if c.get("params") is not None else "not measured")
                print(f"{slug} ({fmt}): {n} inputs {list(shape)}, {measured}, device {runs[0].device}, threads {pool.threads}, "
                      f"{args.runs} runs")
                print(f"  measuring (cost_s)      median {statistics.median(cost):7.2f} ms  "
                      f"(min {min(cost):.2f}, max {max(cost):.2f})")
                print(f"  scoring pass            median {statistics.median(infer):7.2f} ms")
                print(f"  whole submission        median {med:7.2f} ms  (IQR {q1:.2f} .. {q3:.2f}, "
                      f"spread {q3 - q1:.2f} ms)")
                print(f"  measuring / submission  {statistics.median(cost) / med * 100:.1f} %")
    finally:
        pool.close()


if __name__ == "__main__":
    main()
