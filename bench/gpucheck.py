"""The GPU path in one go: `scripts/gpu-check [--device cpu] [--out DIR]` (issue 19); writes report.json and report.md.

Steps, each timed and recorded even when an earlier one failed:
  probe       the sandbox's confinement layers on this device, and the drill: with a layer switched off
              (PODIUM_SANDBOX_DISABLE_LAYERS) the pool refuses to score unless PODIUM_SANDBOX_ALLOW_INCOMPLETE
  tests       tests/integration/test_sandbox.py and the red-team corpus with PODIUM_TEST_DEVICE set to the device
  end_to_end  a real web server, SQLite database and two workers (one on the device, one forced to the CPU); the same
              models scored on both, with the inputs whose top two classes lie within 1e-4 named where scores differ
  bench       raw inference in a warm process against sandboxed end to end, and a burst, for the digits and
              spoken-commands starter models and a model about 100x larger
  memory_cap  a model that allocates past memory_limit_mb fails with the memory reason; the next one scores
--device cpu rehearses every step on a machine without a GPU (CI runs it), so a broken script is found before
GPU minutes are spent.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from bench import grading, models
from bench.raw import RawInference

ROOT = Path(__file__).resolve().parent.parent
NEAR_TIE = 1e-4


def _torch_info(device: str) -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda_build": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "python": platform.python_version(), "host": platform.node(), "cores": len(os.sched_getaffinity(0))}
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version())
    try:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def _pool_device(device: str) -> str | None:
    return "cpu" if device == "cpu" else "cuda"


def step_probe(device: str, tmp: Path) -> dict:
    """Confinement layers on this device, then the incomplete-confinement drill."""
    from podium.worker.sandbox import SandboxUnavailable, ScoringPool
    from podium.worker.sandbox.confine import DISABLE_ENV

    model = tmp / "probe.pt"
    model.write_bytes(models.torchscript_bytes(models.starter_cnn((1, 8, 8), 3)))
    inputs = tmp / "probe-inputs.npz"
    np.savez(inputs, x=np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32))
    run = dict(model_path=str(model), inputs_path=str(inputs), inputs_key="probe", num_classes=3, time_limit_s=60,
               memory_limit_mb=2048)
    out: dict = {}
    with ScoringPool(device=_pool_device(device)) as pool:
        pool.start()
        health = pool.health()
        out["layers"], out["blocked"], out["complete"] = health.get("layers"), health.get("blocked"), health.get("ok")
        try:
            result = pool.run(**run)
            out["scored"] = {"ok": result.ok, "device": result.device, "reason": result.reason}
        except SandboxUnavailable as exc:  # as designed where a layer is missing (gVisor has no Landlock)
            out["refused"] = str(exc)
    if out["complete"]:
        os.environ[DISABLE_ENV] = "landlock,seccomp"  # the drill: this host made to look like one without them
        try:
            with ScoringPool(device=_pool_device(device)) as pool:
                pool.start()
                try:
                    pool.run(**run)
                    out["drill_refused"] = "NOT REFUSED: scored with layers missing"
                except SandboxUnavailable as exc:
                    out["drill_refused"] = str(exc)
        finally:
            os.environ.pop(DISABLE_ENV, None)
    with ScoringPool(device=_pool_device(device), allow_incomplete=True) as pool:
        out["opt_in_scored"] = pool.run(**run).ok
    if out["complete"]:
        out["ok"] = bool(out.get("scored", {}).get("ok") and "INCOMPLETE" in out["drill_refused"]
                         and out["opt_in_scored"])
    else:
        out["ok"] = bool("INCOMPLETE" in out.get("refused", "") and out["opt_in_scored"])
        # The rest of the check measures the GPU path with the operator's opt-in, and says so in the report.
        os.environ["PODIUM_SANDBOX_ALLOW_INCOMPLETE"] = "1"
        out["later_steps"] = "run with PODIUM_SANDBOX_ALLOW_INCOMPLETE=1: this host lacks a confinement layer"
    return out


def step_tests(device: str, tmp: Path) -> dict:
    """The sandbox tests and the red-team corpus, with the scoring children on this device."""
    paths = [p for p in ("tests/integration/test_sandbox.py", "tests/integration/test_sandbox_incomplete.py", "tests/redteam")
             if (ROOT / p).exists()]
    env = dict(os.environ, PODIUM_TEST_DEVICE=_pool_device(device) or "cpu", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *paths],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    (tmp / "tests.log").write_text(proc.stdout + proc.stderr)
    tail = [line for line in proc.stdout.splitlines() if line.strip()][-1:] or ["(no output)"]
    return {"ok": proc.returncode == 0, "summary": tail[0], "paths": paths,
            "failures": [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))][:20]}


def _stack_with_two_workers(tmp: Path, bundles: list[Path], device: str):
    """Web + a worker on the device's queue + a worker forced to the CPU, each challenge routed to one of them."""
    from tests.support import live

    settings = live.settings_for(tmp / "var")
    tokens = live.prepare_database(settings, bundles, {"ann": "student", "prof": "instructor"})
    for b in bundles:
        grading.raise_limits(settings.database_url, b.name, daily_limit=100_000, max_queued=100_000)
    stack = live.Stack(settings)
    stack.start_web()
    stack.start_worker("device-worker", queues="gpu")
    stack.start_worker("cpu-worker", queues="cpu", CUDA_VISIBLE_DEVICES="")
    return stack, tokens


def _routed_copy(src: Path, dest: Path, slug: str, device: str) -> Path:
    from tests.support import live

    out = live.copy_bundle(src, dest)
    toml = out / "challenge.toml"
    text = "\n".join(line for line in toml.read_text().splitlines()
                     if not line.startswith(("slug", "device", "title")))
    toml.write_text(f'slug = "{slug}"\ntitle = "{slug}"\ndevice = "{device}"\n{text}\n')
    return out


def _logits(model_path: Path, inputs: np.ndarray, device: str) -> np.ndarray:
    import torch

    model = torch.jit.load(str(model_path), map_location=device).eval()
    with torch.inference_mode():
        return torch.cat([model(torch.from_numpy(inputs[i:i + 256]).to(device)).float().cpu()
                          for i in range(0, len(inputs), 256)]).numpy()


def _near_ties(logits: np.ndarray) -> np.ndarray:
    top2 = np.sort(logits, axis=1)[:, -2:]
    return np.flatnonzero(top2[:, 1] - top2[:, 0] < NEAR_TIE)


def step_end_to_end(device: str, tmp: Path, bundles: list[Path]) -> dict:
    """The same models scored by the device worker and by a CPU worker, through the real web server and queue."""
    from tests.support import live

    routed = []
    for b in bundles:
        routed += [_routed_copy(b, tmp / "routed" / f"{b.name}-dev", f"{b.name}-dev", "gpu"),
                   _routed_copy(b, tmp / "routed" / f"{b.name}-cpu", f"{b.name}-cpu", "cpu")]
    stack, tokens = _stack_with_two_workers(tmp / "e2e", routed, device)
    api = live.Api(stack.url, tokens["ann"])
    out: dict = {"models": {}}
    try:
        for b in bundles:
            meta = _meta(b)
            for label, module in (("starter", models.starter_cnn(meta["input_shape"], len(meta["labels"]), seed=1)),
                                  ("trained", _trained(b, meta))):
                data = models.torchscript_bytes(module)
                path = tmp / f"{b.name}-{label}.pt"
                path.write_bytes(data)
                rows = {}
                for where in ("dev", "cpu"):
                    rows[where] = api.wait_finished(_accepted(api.submit(f"{b.name}-{where}", data)), timeout_s=300)
                same = all(rows["dev"].get(k) == rows["cpu"].get(k) for k in ("public_score", "private_score"))
                entry = {"device": {w: r.get("device") for w, r in rows.items()},
                         "status": {w: r["status"] for w, r in rows.items()},
                         "public": {w: r.get("public_score") for w, r in rows.items()}, "same_scores": same}
                with np.load(b / "data" / "test.npz") as npz:
                    x = np.ascontiguousarray(npz["x"], dtype=np.float32)
                on_dev = _logits(path, x, "cuda" if device.startswith("cuda") else "cpu")
                on_cpu = _logits(path, x, "cpu")
                differ = np.flatnonzero(on_dev.argmax(1) != on_cpu.argmax(1))
                ties = sorted(set(_near_ties(on_dev)) | set(_near_ties(on_cpu)))
                entry.update(max_abs_logit_diff=float(np.abs(on_dev - on_cpu).max()),
                             argmax_differs=[int(i) for i in differ[:50]], near_ties=[int(i) for i in ties[:50]],
                             differs_only_on_near_ties=bool(set(differ) <= set(ties)))
                out["models"][f"{b.name}/{label}"] = entry
        out["ok"] = all(m["status"] == {"dev": "scored", "cpu": "scored"}
                        and (m["same_scores"] or m["differs_only_on_near_ties"]) for m in out["models"].values())
    finally:
        stack.stop()
    return out


def _trained(bundle: Path, meta: dict, steps: int = 80):
    """The starter CNN after a few hundred milliseconds of training on the public data, so predictions mean something."""
    import torch

    model = models.starter_cnn(meta["input_shape"], len(meta["labels"]), seed=2).train()
    with np.load(bundle / "data" / "train.npz") as npz:
        x = torch.from_numpy(np.ascontiguousarray(npz["x"][:1024], dtype=np.float32))
        y = torch.from_numpy(np.asarray(npz["y"][:1024], dtype=np.int64))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for i in range(steps):
        j = (i * 128) % len(x)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[j:j + 128]), y[j:j + 128]).backward()
        opt.step()
    return model.eval()


def step_bench(device: str, tmp: Path, bundles: list[Path], runs: int, burst_n: int) -> dict:
    """Raw inference in a warm process against sandboxed end to end, and a burst, per model."""
    from tests.support import live

    settings = live.settings_for(tmp / "bench-var")
    tokens = live.prepare_database(settings, bundles, {"ann": "student", "burst": "student"})
    for b in bundles:
        grading.raise_limits(settings.database_url, b.name, daily_limit=100_000, max_queued=100_000,
                             time_limit_s=300, max_model_mb=2000)
    stack = live.Stack(settings)
    stack.start_web()
    stack.start_worker(queues="podium", **({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {}))
    threads = len(os.sched_getaffinity(0))
    raw_device = "cuda" if device.startswith("cuda") else "cpu"
    out: dict = {}
    try:
        for b in bundles:
            meta = _meta(b)
            variants = [("starter", models.starter_cnn(meta["input_shape"], len(meta["labels"])))]
            if b == bundles[0]:
                # width 10: about 100x the starter's work; the CPU rehearsal keeps to 10x to stay quick.
                width = 3 if device == "cpu" else 10
                variants.append((f"{width * width}x", models.wide_cnn(meta["input_shape"], len(meta["labels"]),
                                                                     width=width)))
            for label, module in variants:
                data = models.torchscript_bytes(module)
                path = tmp / f"bench-{b.name}-{label}.pt"
                path.write_bytes(data)
                grading.end_to_end(stack, tokens["ann"], b.name, data, 1)  # warm: zygote, inputs, labels
                with RawInference(str(path), str(b / "data" / "test.npz"), threads, device=raw_device) as raw:
                    e2e = grading.end_to_end(stack, tokens["ann"], b.name, data, runs, raw)
                    rows = grading.worker_rows(settings.database_url, [r["id"] for r in e2e])
                    committed = sorted(rows[r["id"]]["finished"] - r["t0"] for r in e2e)
                    burst = grading.burst(stack, tokens["burst"], b.name, data, burst_n)
                summary = raw.summary()
                out[f"{b.name}/{label}"] = {
                    "params": sum(p.numel() for p in module.parameters()), "model_mb": round(len(data) / 2**20, 2),
                    "raw_median_s": summary["median_s"], "e2e_median_s": statistics.median(committed),
                    "device": rows[e2e[0]["id"]]["device"], "burst_n": burst_n, "burst_wall_s": burst["wall_s"],
                    "burst_per_s": burst_n / burst["wall_s"] if burst["wall_s"] else None,
                    "burst_vs_raw": (summary["median_s"] * burst_n) / burst["wall_s"] if burst["wall_s"] else None}
    finally:
        stack.stop()
    out["ok"] = bool(out)
    return out


def step_memory_cap(device: str, tmp: Path, bundles: list[Path]) -> dict:
    """A model that allocates past the memory limit fails with the memory reason; the next submission scores."""
    from tests.support import live

    b = live.copy_bundle(bundles[0], tmp / "memcap-bundle")
    toml = b / "challenge.toml"
    toml.write_text("\n".join(line for line in toml.read_text().splitlines()
                              if not line.startswith("memory_limit_mb")) + "\nmemory_limit_mb = 512\n")
    settings = live.settings_for(tmp / "memcap-var")
    tokens = live.prepare_database(settings, [b], {"ann": "student"})
    slug = _meta(b)["slug"]
    grading.raise_limits(settings.database_url, slug, daily_limit=100_000, max_queued=100_000)
    stack = live.Stack(settings)
    stack.start_web()
    stack.start_worker(queues="podium", **({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {}))
    api = live.Api(stack.url, tokens["ann"])
    meta = _meta(b)
    try:
        hog = models.torchscript_bytes(models.MemoryHog(len(meta["labels"]), mb=2048))
        first = api.wait_finished(_accepted(api.submit(slug, hog)), timeout_s=300)
        good = models.torchscript_bytes(models.starter_cnn(meta["input_shape"], len(meta["labels"])))
        second = api.wait_finished(_accepted(api.submit(slug, good)), timeout_s=300)
    finally:
        stack.stop()
    reason = first.get("error") or ""
    return {"hog": {"status": first["status"], "error": reason, "device": first.get("device")},
            "next": {"status": second["status"], "device": second.get("device")},
            "ok": first["status"] == "failed" and "memory" in reason.lower() and second["status"] == "scored"}


def _accepted(resp) -> int:
    if resp.status_code != 202:
        raise RuntimeError(f"upload refused: HTTP {resp.status_code} {resp.text[:500]}")
    return resp.json()["id"]


def _run_step(name: str, device: str, tmp: Path, bundles: list[Path], runs: int, burst_n: int) -> dict:
    if name == "probe":
        return step_probe(device, tmp)
    if name == "tests":
        return step_tests(device, tmp)
    if name == "end_to_end":
        return step_end_to_end(device, tmp, bundles)
    if name == "bench":
        return step_bench(device, tmp, bundles, runs, burst_n)
    if name == "memory_cap":
        return step_memory_cap(device, tmp, bundles)
    raise ValueError(f"unknown step {name!r}")


def _meta(bundle: Path) -> dict:
    import tomllib
    return tomllib.loads((bundle / "challenge.toml").read_text())


def _build_bundles(tmp: Path, names: list[str]) -> list[Path]:
    from podium.challenges.build import build_all
    return build_all(tmp / "bundles", names=names)


def write_report(report: dict, out: Path) -> None:
    """report.json (everything) and report.md (a summary a person reads)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    lines = [f"# GPU check: device {report['device']}", "",
             f"Run {report['started']} on {report['env'].get('host')}: torch {report['env'].get('torch')} "
             f"(CUDA build {report['env'].get('cuda_build')}), GPU {report['env'].get('gpu', 'none')}, "
             f"onnxruntime {report['env'].get('onnxruntime')}, Python {report['env'].get('python')}, "
             f"{report['env'].get('cores')} cores; {report['wall_s']:.0f} s in all.", "",
             "| step | result | seconds |", "| --- | --- | --- |"]
    for name, step in report["steps"].items():
        lines.append(f"| {name} | {'ok' if step.get('ok') else 'FAILED'} | {step.get('seconds', 0):.0f} |")
    probe = report["steps"].get("probe", {})
    if probe.get("layers"):
        lines += ["", "## Confinement", "", "| layer | status |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in probe["layers"].items()]
        if probe.get("complete"):
            lines += ["", f"Every layer holds. Drill (landlock and seccomp switched off): {probe.get('drill_refused')}"]
        else:
            lines += ["", f"Confinement is incomplete on this host, and the worker refused to score: "
                          f"{probe.get('refused')}", "", f"Later steps: {probe.get('later_steps')}."]
        lines += [f"With PODIUM_SANDBOX_ALLOW_INCOMPLETE the pool scored: {probe.get('opt_in_scored')}"]
    e2e = report["steps"].get("end_to_end", {}).get("models", {})
    if e2e:
        lines += ["", "## Same models on the device and on the CPU", "",
                  "| model | devices | public (device / CPU) | same | max logit diff | argmax differs | near ties |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, m in e2e.items():
            lines.append(f"| {name} | {m['device']['dev']} / {m['device']['cpu']} | {m['public']['dev']} / "
                         f"{m['public']['cpu']} | {m['same_scores']} | {m['max_abs_logit_diff']:.2e} | "
                         f"{m['argmax_differs'] or '-'} | {m['near_ties'] or '-'} |")
    bench = {k: v for k, v in report["steps"].get("bench", {}).items() if isinstance(v, dict)}
    if bench:
        lines += ["", "## Raw inference against sandboxed end to end, and a burst", "",
                  "| model | params | device | raw pass | end to end | burst | burst vs raw |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, m in bench.items():
            lines.append(f"| {name} | {m['params']:,} | {m['device']} | {m['raw_median_s'] * 1000:.0f} ms | "
                         f"{m['e2e_median_s'] * 1000:.0f} ms | {m['burst_n']} in {m['burst_wall_s']:.1f} s | "
                         f"{(m['burst_vs_raw'] or 0) * 100:.0f}% |")
    cap = report["steps"].get("memory_cap", {})
    if cap.get("hog"):
        lines += ["", "## Memory cap", "", f"A model allocating 2 GB against memory_limit_mb = 512: "
                  f"{cap['hog']['status']} ({cap['hog']['error']}); the next submission: {cap['next']['status']}."]
    for name, step in report["steps"].items():
        if step.get("error"):
            lines += ["", f"## {name} failed", "", "```", step["error"][-3000:], "```"]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    """Run every step, write the reports, and exit 1 when any step failed."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu for the rehearsal")
    ap.add_argument("--out", type=Path, default=Path("gpu-check-out"))
    ap.add_argument("--runs", type=int, default=None, help="end-to-end runs per model (default 5 on cuda, 2 on cpu)")
    ap.add_argument("--burst", type=int, default=None, help="burst size (default 50 on cuda, 8 on cpu)")
    ap.add_argument("--steps", default="probe,tests,end_to_end,bench,memory_cap")
    args = ap.parse_args(argv)
    rehearsal = args.device == "cpu"
    runs = args.runs or (2 if rehearsal else 5)
    burst_n = args.burst or (8 if rehearsal else 50)
    t0 = time.perf_counter()
    report = {"device": args.device, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "env": _torch_info(args.device),
              "steps": {}}
    wanted = args.steps.split(",")
    with tempfile.TemporaryDirectory(prefix="podium-gpu-check-") as d:
        tmp = Path(d)
        bundles: list[Path] = []
        for name in wanted:
            s0 = time.perf_counter()
            print(f"[gpu-check] {name} ...", flush=True)
            try:
                if name in ("end_to_end", "bench", "memory_cap") and not bundles:
                    bundles = _build_bundles(tmp, ["digits"] if rehearsal else ["digits", "spoken_commands"])
                step = _run_step(name, args.device, tmp, bundles, runs, burst_n)
            except Exception:
                step = {"ok": False, "error": traceback.format_exc()}
            step["seconds"] = time.perf_counter() - s0
            report["steps"][name] = step
            print(f"[gpu-check] {name}: {'ok' if step.get('ok') else 'FAILED'} in {step['seconds']:.0f} s", flush=True)
            report["wall_s"] = time.perf_counter() - t0
            write_report(report, args.out)  # after every step, so a run cut short still leaves its report
        if (tmp / "tests.log").exists():
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "tests.log").write_text((tmp / "tests.log").read_text())
    print((args.out / "report.md").read_text())
    return 0 if all(s.get("ok") for s in report["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
