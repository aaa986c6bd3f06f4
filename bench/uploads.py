"""(f) Web-process peak memory while many clients upload large models at once."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench import cpu


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes; empty when it is gone."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (the gunicorn master and its workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += cpu.children(p)
    return out


def concurrent_uploads(web_pid: int, url: str, tokens: list[str], slug: str, models: list[bytes]) -> dict:
    """Upload one model per token at the same moment; sample the web processes' RSS every 10 ms meanwhile."""
    pids = process_tree(web_pid)
    before = {p: _status(p) for p in pids}
    peak_total, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak_total[0] = max(peak_total[0], sum(_status(p).get("VmRSS", 0) for p in pids))
            time.sleep(0.01)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    barrier = threading.Barrier(len(tokens))

    def upload(i: int):
        barrier.wait()
        t0 = time.perf_counter()
        resp = requests.post(f"{url}/api/v1/challenges/{slug}/submissions",
                             headers={"Authorization": f"Bearer {tokens[i]}"},
                             files={"model": ("big.pt", models[i])}, timeout=300)
        return resp.status_code, time.perf_counter() - t0, resp.text[:200]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(tokens)) as pool:
        results = list(pool.map(upload, range(len(tokens))))
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    after = {p: _status(p) for p in pids}
    workers = [p for p in pids if p != web_pid]
    return {
        "clients": len(tokens), "model_mb": len(models[0]) / (1 << 20), "wall_s": wall,
        "statuses": sorted({r[0] for r in results}), "errors": [r[2] for r in results if r[0] != 202][:3],
        "baseline_rss_mb": sum(before[p].get("VmRSS", 0) for p in pids) / (1 << 20),
        "peak_rss_total_mb": peak_total[0] / (1 << 20),
        "peak_rss_per_worker_mb": [after[p].get("VmHWM", 0) / (1 << 20) for p in workers],
        "baseline_rss_per_worker_mb": [before[p].get("VmRSS", 0) / (1 << 20) for p in workers],
        "max_worker_growth_mb": max((after[p].get("VmHWM", 0) - before[p].get("VmRSS", 0)) / (1 << 20)
                                    for p in workers),
    }
