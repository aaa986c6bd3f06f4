"""The pre-warmed scoring process: imports torch once, then forks one confined child per request.

Started as a fresh interpreter (`python -m podium.worker.sandbox.zygote FD`), never
forked from the worker, so it holds no labels, secrets or broker connections.
It speaks frames (podium.worker.sandbox.protocol) on the socket FD.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import sys
import threading
import time
import warnings

from podium.worker.sandbox import probe, reasons
from podium.worker.sandbox.batching import default_batch
from podium.worker.sandbox.inputs import InputsCache
from podium.worker.sandbox.protocol import FrameBuffer, ProtocolError, encode, read_frame, write_frame
from podium.worker.sandbox.supervise import reap, supervise

FRAME_SLACK = 64 * 1024
def warm(threads: int) -> dict:
    """Import torch single-threaded, load and run a tiny model of each format once, so children import nothing.

    Returns the versions of torch, onnx and onnxruntime, for the health report and the provenance record.
    """
    import io

    import numpy as np
    import torch

    # Children forked after a multi-threaded op hang in an OpenMP barrier: stay at one thread here.
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from podium.core import cost
    from podium.worker.sandbox import child

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(2 * 13 * 13, 3), torch.nn.Softmax(dim=1))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notices: noise in the worker's log
        torch.jit.save(torch.jit.script(net.eval()), buf)
        buf.seek(0)
        loaded = torch.jit.load(buf).eval()
    with torch.inference_mode():
        loaded(torch.zeros(2, 1, 28, 28)).to("cpu", torch.float32).numpy()
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # before onnxruntime is imported
    from podium.worker.sandbox import loaders

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        versions = loaders.warm_up(threads)
        # Counting (FlopCounterMode, ONNX shape inference) sets up its machinery on first use: here, not confined.
        sample = np.zeros((1, 1, 28, 28), np.float32)
        for data in (buf.getvalue(), loaders.tiny_exported_program(), loaders.tiny_onnx()):
            child.measure(loaders.load_model(data, device="cpu", threads=threads), sample)
        cost.warm_up()  # the shape folding a dynamic-batch ONNX export takes (tiny_onnx has no Reshape)
    # Model warnings would go to /dev/null anyway; "ignore" also spares the child a source-file lookup.
    warnings.simplefilter("ignore")
    return versions


def pick_device(requested: str | None) -> str:
    """Return "cuda:0" when asked for (or by default) and available without touching CUDA here."""
    if requested == "cpu":
        return "cpu"
    import torch

    # NVML-based check (env set by the pool) so this process never initialises CUDA and stays forkable.
    if torch.cuda.is_available():
        return "cuda:0" if requested in (None, "cuda") else requested
    if requested not in (None, "cuda"):
        raise RuntimeError(f"device {requested} requested but CUDA is not available")
    return "cpu"


class Zygote:
    """Serves requests from one pool over one socket."""

    def __init__(self, sock: socket.socket, device: str, threads: int):
        self.sock = sock
        self.device = device
        self.threads = threads
        self.cache = InputsCache()
        self.unreaped: dict | None = None
        self.spare: dict | None = None
        self.last_buffer: FrameBuffer | None = None

    def _fork_spare(self) -> dict:
        """Fork a child that confines itself at once and then waits for one request."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        t0 = time.perf_counter()
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            raise
        if pid == 0:
            from podium.worker.sandbox import child

            child.main(sock_fd=theirs.detach(), cache=dict(self.cache.items), device=self.device,
                       threads=self.threads)
        theirs.close()
        return {"pid": pid, "sock": ours, "keys": set(self.cache.items), "fork_s": time.perf_counter() - t0}

    def ensure_spare(self) -> None:
        """Have a confined spare waiting, so fork, confinement and CUDA set-up stay off the next request's path."""
        if self.spare is None:
            try:
                self.spare = self._fork_spare()
            except OSError:
                self.spare = None

    def wipe(self) -> None:
        """Zero the last child's output before the next spare is forked: scores never outlive their reply."""
        if self.last_buffer is not None:
            self.last_buffer.wipe()
            self.last_buffer = None
        if self.unreaped is not None:
            self.unreaped.pop("buffer", None)
            self.unreaped["result"] = None

    def drop_spare(self) -> None:
        """Kill the waiting spare, if any."""
        if self.spare is not None:
            self._discard(self.spare)
            self.spare = None

    def _discard(self, spare: dict) -> None:
        spare["sock"].close()
        try:
            os.kill(spare["pid"], signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(spare["pid"], 0)

    def _take_spare(self, key: str | None) -> tuple[dict, bool]:
        """Return (a spare holding the inputs for key, whether it was ready before this request)."""
        spare, self.spare = self.spare, None
        if spare is not None:
            alive = os.waitpid(spare["pid"], os.WNOHANG) == (0, 0)
            if alive and (key is None or key in spare["keys"]):
                return spare, True
            if alive:
                self._discard(spare)
            else:
                spare["sock"].close()
        return self._fork_spare(), False

    @staticmethod
    def _send_request(spare: dict, req: dict, payload: bytes, model_fd: int) -> None:
        frame = encode(req, payload)
        sent = socket.send_fds(spare["sock"], [frame], [model_fd])
        spare["sock"].sendall(frame[sent:])

    def handle_run(self, req: dict) -> tuple[dict, bytes]:
        """Score one model on cached inputs; return the reply frame."""
        t0 = time.perf_counter()
        payload = b""
        try:
            if req["op"] == "run":
                x, inputs_s = self.cache.get(req["inputs_key"], req["inputs_path"])
                n, key, shape = len(x), req["inputs_key"], x.shape
            else:
                payload, inputs_s = req.pop("_samples"), 0.0
                n, key, shape = int(req["samples_shape"][0]), None, req["samples_shape"]
        except Exception as exc:
            return {"ok": False, "infra": f"cannot read test inputs: {type(exc).__name__}: {exc}"}, b""
        req["batch_size"] = int(req.get("batch_size") or default_batch(self.device, math.prod(shape[1:])))
        parts = 2  # check: batched and one at a time; run: the scores and a few inputs scored again alone
        expected = parts * n * int(req["num_classes"]) * 4
        cap = int(req.get("max_output_bytes") or expected) + FRAME_SLACK
        try:
            model_fd = os.open(req["model_path"], os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            return {"ok": False, "infra": f"cannot open the model file: {exc}"}, b""
        try:
            for attempt in (1, 2):
                try:
                    spare, warm = self._take_spare(key)
                except OSError as exc:
                    return {"ok": False, "infra": f"cannot start a scoring child: {exc}"}, b""
                try:
                    self._send_request(spare, req, payload, model_fd)
                    break
                except OSError as exc:  # the spare died while waiting: not the model's doing
                    self._discard(spare)
                    if attempt == 2:
                        return {"ok": False, "infra": f"the scoring child did not take the request: {exc}"}, b""
        finally:
            os.close(model_fd)
        fork_s = 0.0 if warm else spare["fork_s"]
        deadline = time.monotonic() + float(req["time_limit_s"])
        try:
            out = supervise(spare["pid"], spare["sock"].fileno(), self.sock, deadline, cap)
        finally:
            spare["sock"].close()
        self.last_buffer = out["buffer"]
        if out["result"] is not None:
            self.unreaped = out
        # A spare forked and confined itself before the request: that time was off the student's path.
        confine_s = _num(out.get("confine_s"))
        timings = {"inputs_s": inputs_s, "fork_s": fork_s, "confine_s": 0.0 if warm else confine_s,
                   "load_s": _num(out.get("load_s")), "inference_s": 0.0, "warm_child": 1.0 if warm else 0.0,
                   "child_prep_s": spare["fork_s"] + confine_s}
        # ONNX runs on the CPU provider in a GPU worker unless onnxruntime-gpu is there: the child says which.
        device = out.get("model_device") if out.get("model_device") in ("cpu", self.device) else self.device
        cost = out.get("cost") or {}
        timings["cost_s"] = _num(cost.pop("cost_s", None))
        reply = {"ok": False, "n": n, "layers": out.get("layers"), "timings": timings,
                 "device": device, "maxrss_mb": out.get("maxrss_mb"), "cost": cost}
        mem_mb = int(req["memory_limit_mb"])
        if out["result"] is not None:
            header, payload = out["result"]
            for key in ("load_s", "inference_s"):
                if key in header:
                    timings[key] = _num(header[key])
            if "peak_memory_mb" in header:
                reply["peak_memory_mb"] = _num(header["peak_memory_mb"])
            if header.get("event") == "error":
                reply["reason"] = reasons.from_error(header, memory_limit_mb=mem_mb)
                return self._finish(reply, t0), b""
            shapes = header.get("shapes")
            if not _valid_shapes(shapes, parts, len(payload)):
                reply["reason"] = "the model corrupted its result (malformed scores)"
                return self._finish(reply, t0), b""
            reply.update(ok=True, shapes=shapes)
            return self._finish(reply, t0), payload
        if out["stage"] is None and out["killed"] is None:
            reply["infra"] = f"the scoring child failed before confinement (status {out['status']})"
            return self._finish(reply, t0), b""
        if out["killed"] == "output":
            reply["reason"] = f"the model produced more output than expected (over {cap // 1024} KB)"
        elif out["killed"] == "protocol":
            reply["reason"] = "the model corrupted its result channel"
        else:
            # The limit counts on top of torch's own footprint: resident memory past it alone means allocation trouble.
            near = out["maxrss_mb"] >= mem_mb
            reply["reason"] = reasons.from_exit(out["status"], stage=out["stage"], limit_s=float(req["time_limit_s"]),
                                                memory_limit_mb=mem_mb, near_memory_limit=near,
                                                killed_by_us=out["killed"] == "time")
        return self._finish(reply, t0), b""

    @staticmethod
    def _finish(reply: dict, t0: float) -> dict:
        reply["timings"]["zygote_s"] = time.perf_counter() - t0
        return reply

    def serve(self, health: dict) -> None:
        """Answer requests until the pool hangs up or says stop."""
        fd = self.sock
        self.ensure_spare()
        try:
            write_frame(fd, {"event": "ready", "health": health})
        except BrokenPipeError:  # the worker went away while this zygote warmed up (e.g. a shutdown)
            self.drop_spare()
            return
        while True:
            try:
                req, payload = read_frame(fd)
            except ProtocolError:
                self.drop_spare()
                return
            op = req.get("op")
            if op == "stop":
                self.drop_spare()
                write_frame(fd, {"ok": True})
                return
            if op == "health":
                live = dict(health, spare_pid=self.spare["pid"] if self.spare else None,
                            cached_inputs=list(self.cache.items))
                write_frame(fd, {"ok": True, "health": live})
                continue
            if op == "preload":
                try:
                    _, seconds = self.cache.get(req["inputs_key"], req["inputs_path"])
                except Exception as exc:
                    write_frame(fd, {"ok": False, "infra": f"cannot read test inputs: {type(exc).__name__}: {exc}"})
                    continue
                if self.spare is not None and req["inputs_key"] not in self.spare["keys"]:
                    self.drop_spare()  # its memory predates these inputs
                self.ensure_spare()
                write_frame(fd, {"ok": True, "inputs_s": seconds})
                continue
            if op == "check":
                req["_samples"] = payload
            if op in ("run", "check"):
                header, body = self.handle_run(req)
                try:
                    write_frame(fd, header, body)
                finally:
                    self.wipe()
                if self.unreaped is not None:
                    reap(self.unreaped)
                    self.unreaped = None
                self.ensure_spare()
            else:
                write_frame(fd, {"ok": False, "infra": f"unknown op {op!r}"})


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and v == v and 0 <= v < 1e7 else 0.0


def _valid_shapes(shapes, parts: int, nbytes: int) -> bool:
    if not isinstance(shapes, list) or len(shapes) != parts:
        return False
    total = 0
    for s in shapes:
        if not (isinstance(s, list) and len(s) == 2 and all(isinstance(d, int) and 0 <= d < 2**31 for d in s)):
            return False
        total += s[0] * s[1] * 4
    return total == nbytes


def exit_with_parent(parent: int, interval_s: float = 0.2) -> threading.Thread:
    """Leave at once when the worker `parent` that started this zygote is gone, even in the middle of the warm-up.

    A watch rather than PR_SET_PDEATHSIG: the worker starts the zygote from a thread, and the kernel sends the
    death signal when that thread ends, not the process. The worker passes its pid, since it may be gone before
    this interpreter even runs. Forked children do not inherit the thread.
    """
    def watch():
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(0)

    thread = threading.Thread(target=watch, name="podium-parent-watch", daemon=True)
    thread.start()
    return thread


def main(argv: list[str]) -> int:
    """Run the zygote on the socket fd given in argv[1], for the worker whose pid is argv[2] (if given)."""
    exit_with_parent(int(argv[2]) if len(argv) > 2 else os.getppid())
    sock = socket.socket(fileno=int(argv[1]))
    threads = int(os.environ.get("PODIUM_SANDBOX_THREADS", "1"))
    t0 = time.perf_counter()
    versions = warm(threads)
    device = pick_device(os.environ.get("PODIUM_SANDBOX_DEVICE") or None)
    health = probe.run_probe(device=device)
    health.update(pid=os.getpid(), device=device, threads=threads, warmup_s=time.perf_counter() - t0, **versions)
    Zygote(sock, device, threads).serve(health)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
