"""(g) One model exported three ways (torch.export, ONNX, TorchScript): end-to-end latency and burst throughput of
each format, against that format's own raw inference in a warm process (bench/raw.py, the sandbox's loader)."""
from __future__ import annotations

import statistics
from pathlib import Path

from bench import grading, models
from bench.raw import RawInference
from tests.support import live
from tests.support.models import model_bytes

FORMATS = ("exported_program", "onnx", "torchscript")


def measure_formats(tmp: Path, bundle: Path, meta: dict, runs: int, burst_n: int, threads: int) -> dict:
    """For each format of the starter CNN: (a) raw, (b) end to end (runs, one at a time), (d) a burst of burst_n."""
    settings = live.settings_for(tmp / "var-formats")
    tokens = live.prepare_database(settings, [bundle], {"fay": "student"})
    grading.raise_limits(settings.database_url, bundle.name, daily_limit=100_000, max_queued=100_000)
    stack = live.Stack(settings)
    stack.start_web()
    stack.start_worker()
    module = models.starter_cnn(meta["input_shape"], len(meta["labels"]))
    inputs = str(bundle / "data" / "test.npz")
    out: dict = {}
    try:
        for fmt in FORMATS:
            data = model_bytes(fmt, module, tuple(meta["input_shape"]))
            path = tmp / f"{bundle.name}-{fmt}.model"
            path.write_bytes(data)
            grading.end_to_end(stack, tokens["fay"], bundle.name, data, 2)  # warm: zygote, inputs, labels
            with RawInference(str(path), inputs, threads) as raw:
                e2e = grading.end_to_end(stack, tokens["fay"], bundle.name, data, runs, raw)
                rows = grading.worker_rows(settings.database_url, [r["id"] for r in e2e])
                for _ in range(3):
                    raw.one_pass()
                burst = grading.burst(stack, tokens["fay"], bundle.name, data, burst_n) if burst_n else None
                for _ in range(3):
                    raw.one_pass()
            committed = sorted(rows[r["id"]]["finished"] - r["t0"] for r in e2e)
            first = rows[e2e[0]["id"]]
            out[fmt] = {"raw": raw.summary(), "e2e_median_s": statistics.median(committed),
                        "load_median_s": statistics.median(rows[r["id"]]["timings"].get("load_s", 0.0) for r in e2e),
                        "inference_median_s": statistics.median(rows[r["id"]]["timings"].get("inference_s", 0.0)
                                                                for r in e2e),
                        "burst": burst, "model_bytes": len(data), "device": first["device"],
                        "versions": first["versions"]}
            print(f"[formats] {fmt}: raw {raw.summary()['median_s']:.3f} s, end to end "
                  f"{statistics.median(committed):.3f} s" + (f", burst {burst_n} in {burst['wall_s']:.1f} s"
                                                             if burst else ""), flush=True)
    finally:
        stack.stop()
    return {"formats": {"slug": bundle.name, "runs": runs, "burst_n": burst_n, "by_format": out}}
