"""ScoringPool: the worker's handle on the pre-warmed zygote that scores models in confined children."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from podium.core.modelcheck import ModelRejected, check_batch_independence, check_scores
from podium.core.modelformat import inspect_model
from podium.worker.sandbox.confine import DISABLE_ENV
from podium.worker.sandbox.protocol import ProtocolError, read_frame, write_frame

START_TIMEOUT_S = 120.0
REPLY_MARGIN_S = 60.0
SAFETY_MAX_MODEL_BYTES = 2 * 2**30
# Only these reach the zygote: it and every child it forks must never see the worker's secrets.
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
            "LD_LIBRARY_PATH", "CUDA_HOME", "TMPDIR")

# glibc malloc for the zygote and its one-shot children: allocations under 32 MB come from the heap and freed memory
# stays mapped, so a child's second batch reuses the pages its first batch faulted in instead of mmap/munmap (and
# page-faulting) every activation again. Measured (`python -m bench.sandbox`, 2 threads, batch 128): sandboxed
# inference 80 ms -> 58 ms, against 60-77 ms for the same model in a warm process with default malloc.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"

log_default = logging.getLogger("podium.sandbox")


class SandboxUnavailable(RuntimeError):
    """The scoring infrastructure failed (not the student's fault); the submission may be retried."""


@dataclass
class RunResult:
    """What scoring one model produced: scores, or a student-facing reason."""

    ok: bool
    scores: np.ndarray | None
    reason: str | None
    timings: dict[str, float]
    device: str
    confinement: dict = field(default_factory=dict)
    format: str | None = None  # torchscript | exported_program | onnx, from the file's container (None: refused)
    # What the child measured, also when the model then failed: params, flops_per_input, error (why not).
    cost: dict = field(default_factory=dict)
    peak_memory_mb: float | None = None

    @property
    def inference_ms(self) -> float | None:
        """The scoring pass over the whole test set, in milliseconds (None unless it completed)."""
        return self.timings.get("inference_s", 0.0) * 1000 if self.ok else None


@dataclass
class CheckReport:
    """What `podium check` learns from a run: problems (empty = good) and what the child measured."""

    problems: list[str]
    cost: dict = field(default_factory=dict)


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def scoring_env(threads: int, device: str | None) -> dict[str, str]:
    """The environment of the zygote and its children: only harmless variables, plus threading and malloc settings."""
    env = {k: v for k, v in os.environ.items() if k in ENV_KEEP}
    # GOMP_SPINCOUNT: an idle OpenMP thread spins this long, then sleeps. Measured on 2 cores (starter CNN, 1000
    # images, batch 128, two threads, a warm loop): libgomp's default 60 ms on a quiet machine and 185 ms beside two
    # busy processes; OMP_WAIT_POLICY=PASSIVE (never spin) 72 / 185 ms; 10,000 spins 61 / 141 ms.
    if os.environ.get(DISABLE_ENV):
        env[DISABLE_ENV] = os.environ[DISABLE_ENV]
    env.update(PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               GOMP_SPINCOUNT="10000", GLIBC_TUNABLES=MALLOC_TUNABLES,
               PYTORCH_NVML_BASED_CUDA_CHECK="1", PODIUM_SANDBOX_THREADS=str(threads),
               PODIUM_SANDBOX_DEVICE=device or "",
               # torch.export.load retries a failed weights-only torch.load with full unpickling: never here.
               TORCH_FORCE_WEIGHTS_ONLY_LOAD="1", ORT_DISABLE_TELEMETRY="1")
    return env


class ScoringPool:
    """A warm zygote process that forks one confined child per model; thread-safe, one run at a time."""

    def __init__(self, *, threads: int | None = None, device: str | None = None, log: logging.Logger | None = None,
                 allow_incomplete: bool = False):
        """threads: torch threads per scoring child (default: the cores this process may use); device: "cpu",
        "cuda" or None (cuda when present); allow_incomplete: score even where a confinement layer is missing."""
        self.threads = threads or _default_threads()
        self.device = device
        self.allow_incomplete = allow_incomplete
        self.log = log or log_default
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._health: dict = {}
        self._lock = threading.RLock()

    # --- lifecycle -------------------------------------------------------
    def start(self) -> None:
        """Spawn the zygote (a fresh interpreter) and wait until torch is imported; idempotent."""
        with self._lock:
            if self._alive():
                return
            self._stop_process()
            ours, theirs = socket.socketpair()
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "podium.worker.sandbox.zygote", str(theirs.fileno()), str(os.getpid())],
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    env=scoring_env(self.threads, self.device), cwd="/", close_fds=True, start_new_session=True)
            finally:
                theirs.close()
            self._sock = ours
            ours.settimeout(START_TIMEOUT_S)
            try:
                header, _ = read_frame(ours)
            except (ProtocolError, OSError) as exc:
                self._stop_process()
                raise SandboxUnavailable(f"the scoring process did not start: {exc}") from None
            self._health = header.get("health", {})
            self._log_health()

    def _log_health(self) -> None:
        h = self._health
        layers = h.get("layers", {})
        bad = {k: v for k, v in layers.items() if not v.startswith(("ok", "skipped"))}
        unblocked = [k for k, v in h.get("blocked", {}).items() if not v]
        self.log.info("scoring sandbox ready: pid %s, device %s, warm-up %.2f s, layers %s",
                      h.get("pid"), h.get("device"), h.get("warmup_s", 0.0), layers)
        if bad or unblocked or not h.get("ok"):
            self.log.error("SANDBOX CONFINEMENT INCOMPLETE on this host: unavailable layers %s; not blocked: %s; %s",
                           bad, unblocked, "scoring anyway (PODIUM_SANDBOX_ALLOW_INCOMPLETE)" if self.allow_incomplete
                           else "refusing to score until it is fixed or PODIUM_SANDBOX_ALLOW_INCOMPLETE=1 is set")

    def incomplete(self) -> str | None:
        """Why this host's confinement is incomplete (None when every layer holds)."""
        h = self._health
        bad = {k: v for k, v in h.get("layers", {}).items() if not v.startswith(("ok", "skipped"))}
        unblocked = sorted(k for k, v in h.get("blocked", {}).items() if not v)
        if h.get("ok") and not bad and not unblocked:
            return None
        parts = [f"{k}: {v}" for k, v in sorted(bad.items())] + [f"not blocked: {k}" for k in unblocked]
        return "; ".join(parts) or "the confinement probe failed"

    def _refuse_unconfined(self) -> None:
        problem = None if self.allow_incomplete else self.incomplete()
        if problem:
            raise SandboxUnavailable(f"SANDBOX CONFINEMENT INCOMPLETE on this worker ({problem}); it refuses to score "
                                     "unconfined (the operator may set PODIUM_SANDBOX_ALLOW_INCOMPLETE=1)")

    def health_report(self) -> dict:
        """The last health report of the scoring process (versions, device, layers) without asking it again."""
        return dict(self._health)

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._sock is not None

    def health(self) -> dict:
        """Return the confinement layers, what a confined child was proven unable to do, device and pid."""
        with self._lock:
            self.start()
            try:
                reply, _ = self._request({"op": "health"}, b"", 10.0)
                self._health = reply.get("health", self._health)
            except SandboxUnavailable:
                pass
            return dict(self._health, alive=self._alive())

    def close(self) -> None:
        """Stop the zygote and any child it runs; leaves no process behind."""
        with self._lock:
            if self._alive():
                try:
                    self._sock.settimeout(5)
                    write_frame(self._sock, {"op": "stop"})
                    read_frame(self._sock)
                except (OSError, ProtocolError):
                    pass
            self._stop_process()

    def _stop_process(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self._proc.pid, 9)
                except OSError:
                    pass
                self._proc.wait()
            self._proc = None

    def __enter__(self) -> ScoringPool:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- requests --------------------------------------------------------
    def _request(self, header: dict, payload: bytes, timeout_s: float) -> tuple[dict, bytes]:
        with self._lock:
            if not self._alive():
                self.log.warning("scoring process not running; starting it")
                self.start()
            if header.get("op") in ("run", "check"):  # a student's model never runs under partial confinement
                self._refuse_unconfined()
            try:
                self._sock.settimeout(timeout_s)
                write_frame(self._sock, header, payload)
                reply, body = read_frame(self._sock)
            except (OSError, ProtocolError) as exc:
                self.log.error("scoring process failed during a request (%s); restarting it", exc)
                self._kill_process()
                try:
                    self.start()
                except SandboxUnavailable:
                    pass
                raise SandboxUnavailable(f"the scoring process failed: {exc}") from None
            except BaseException:
                # Interrupted mid-request (a Celery time limit, Ctrl-C): a late reply would answer the next
                # request, so this zygote cannot be trusted any more.
                self._kill_process()
                raise
            if reply.get("infra"):
                raise SandboxUnavailable(reply["infra"])
            return reply, body

    def _kill_process(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, 9)
            except OSError:
                pass
        self._stop_process()

    def preload(self, *, inputs_path: str, inputs_key: str) -> float:
        """Decode a test set's inputs in the zygote ahead of the first submission; return the seconds it took."""
        reply, _ = self._request({"op": "preload", "inputs_path": os.path.abspath(inputs_path),
                                  "inputs_key": inputs_key}, b"", REPLY_MARGIN_S)
        return float(reply.get("inputs_s", 0.0))

    def run(self, *, model_path: str, inputs_path: str, inputs_key: str, num_classes: int, time_limit_s: float,
            memory_limit_mb: int, batch_size: int | None = None, max_output_bytes: int | None = None,
            max_params: int | None = None, max_mflops: float | None = None) -> RunResult:
        """Score the model on the inputs x of an npz (never its y); model failures come back as ok=False.

        max_params / max_mflops: the challenge's budgets; a model over one is measured but not run on the inputs.
        """
        t0 = time.perf_counter()
        device = self._health.get("device", "cpu")
        try:
            fmt = inspect_model(model_path, max_bytes=SAFETY_MAX_MODEL_BYTES)
        except ModelRejected as exc:
            return RunResult(False, None, exc.reason, {"load_s": 0.0, "inference_s": 0.0, "transfer_s": 0.0,
                                                       "total_s": time.perf_counter() - t0}, device)
        header = {"op": "run", "model_path": os.path.abspath(model_path), "inputs_path": os.path.abspath(inputs_path),
                  "inputs_key": inputs_key, "num_classes": int(num_classes), "time_limit_s": float(time_limit_s),
                  "memory_limit_mb": int(memory_limit_mb), "batch_size": batch_size, "max_output_bytes": max_output_bytes,
                  "max_params": max_params, "max_mflops": max_mflops}
        reply, body = self._request(header, b"", float(time_limit_s) + REPLY_MARGIN_S)
        timings = self._timings(reply, t0)
        extra = {"confinement": reply.get("layers") or {}, "format": fmt, "cost": reply.get("cost") or {},
                 "peak_memory_mb": reply.get("peak_memory_mb")}
        if not reply.get("ok"):
            return RunResult(False, None, reply.get("reason") or "scoring failed", timings, reply.get("device", device),
                             **extra)
        scores, alone = _two_arrays(reply, body)
        try:
            check_scores(scores, int(reply["n"]), int(num_classes))
            check_scores(alone, len(alone), int(num_classes))
        except ModelRejected as exc:
            return RunResult(False, None, exc.reason, timings, reply["device"], **extra)
        problem = check_batch_independence(scores[: len(alone)], alone, reply["device"])
        if problem:
            return RunResult(False, None, problem, timings, reply["device"], **extra)
        return RunResult(True, scores.copy(), None, timings, reply["device"], **extra)

    @staticmethod
    def _timings(reply: dict, t0: float) -> dict[str, float]:
        t = {k: float(v) for k, v in reply.get("timings", {}).items()}
        t["total_s"] = time.perf_counter() - t0
        inside = sum(t.get(k, 0.0) for k in ("inputs_s", "fork_s", "confine_s", "load_s", "cost_s", "inference_s"))
        # Everything else: request and reply framing, result pipe, reaping; the sandbox's own cost.
        t["transfer_s"] = max(t["total_s"] - inside, 0.0)
        for k in ("load_s", "inference_s"):
            t.setdefault(k, 0.0)
        return t

    def check(self, *, model_path: str, samples: np.ndarray, num_classes: int, time_limit_s: float,
              memory_limit_mb: int) -> list[str]:
        """Run the model on samples all at once and one at a time; return problems (empty = good)."""
        return self.check_report(model_path=model_path, samples=samples, num_classes=num_classes,
                                 time_limit_s=time_limit_s, memory_limit_mb=memory_limit_mb).problems

    def check_report(self, *, model_path: str, samples: np.ndarray, num_classes: int, time_limit_s: float,
                     memory_limit_mb: int) -> CheckReport:
        """Like check(), and also what the child measured (params and FLOPs per input)."""
        try:
            inspect_model(model_path, max_bytes=SAFETY_MAX_MODEL_BYTES)
        except ModelRejected as exc:
            return CheckReport([exc.reason])
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        header = {"op": "check", "model_path": os.path.abspath(model_path), "samples_shape": list(samples.shape),
                  "num_classes": int(num_classes), "time_limit_s": float(time_limit_s),
                  "memory_limit_mb": int(memory_limit_mb)}
        reply, body = self._request(header, samples.tobytes(), float(time_limit_s) + REPLY_MARGIN_S)
        cost = reply.get("cost") or {}
        if not reply.get("ok"):
            return CheckReport([reply.get("reason") or "the model could not be run"], cost)
        whole, single = _two_arrays(reply, body)
        problems = []
        for scores in (whole, single):
            try:
                check_scores(scores, len(samples), int(num_classes))
            except ModelRejected as exc:
                problems.append(exc.reason)
                break
        if not problems:
            p = check_batch_independence(whole, single, reply.get("device", "cpu"))
            if p:
                problems.append(p)
        return CheckReport(problems, cost)


def _two_arrays(reply: dict, body: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The two float32 arrays of a scoring child's result, as its reply's shapes say (the zygote checked them)."""
    (s1, s2) = reply["shapes"]
    flat = np.frombuffer(body, dtype=np.float32)
    return flat[: s1[0] * s1[1]].reshape(s1), flat[s1[0] * s1[1]:].reshape(s2)
