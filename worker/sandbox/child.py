"""The scoring child: confine, then read, load and run the model, and send scores back.

Runs in a process forked from the zygote. Everything it needs is imported by
the zygote beforehand, because after confinement no file can be opened.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import time

import numpy as np
import torch

from podium.core.budgets import over_budget
from podium.core.cost import onnx_cost, torch_cost
from podium.worker.sandbox.batching import default_batch
from podium.worker.sandbox.confine import confine, limit_resources, vm_bytes
from podium.worker.sandbox.loaders import ContractProblem, LoadedModel, OutputProblem, load_model
from podium.worker.sandbox.protocol import read_exact, write_frame

MAX_MESSAGE = 4000


def infer(model: LoadedModel, x: np.ndarray, batch: int, num_classes: int) -> np.ndarray:
    """Run the model over x in batches; return float32 scores [N, C] on the CPU."""
    outs = []
    n = len(x)
    for i in range(0, n, batch):
        xb = x[i:i + batch]
        out = model.run(xb)
        if out.ndim != 2 or out.shape[0] != len(xb) or out.shape[1] != num_classes:
            got = ", ".join(str(d) for d in out.shape)
            if len(xb) == n:
                raise OutputProblem(f"output shape [{got}], expected [{n}, {num_classes}]")
            raise OutputProblem(f"output shape [{got}] for a batch of {len(xb)} inputs, expected [{len(xb)}, {num_classes}]")
        outs.append(out)
    return np.concatenate(outs) if outs else np.zeros((0, num_classes), np.float32)


ONE_BY_ONE_INPUTS = 2  # scored again alone after a batched pass: scores must not depend on the batch


def score(model: LoadedModel, x: np.ndarray, batch: int, num_classes: int) -> list[np.ndarray]:
    """The grader's pass: scores [N, C] in batches, and the first inputs scored again one at a time.

    The second array is what podium.core.modelcheck.check_batch_independence compares with the first rows, the
    rule `podium check` applies to all its samples; empty when the pass did not batch.
    """
    scores = infer(model, x, batch, num_classes)
    alone = x[:ONE_BY_ONE_INPUTS] if batch > 1 and len(x) > 1 else x[:0]
    return [scores, infer(model, alone, 1, num_classes)]


def measure(model: LoadedModel, x: np.ndarray) -> dict:
    """The model's params and FLOPs per input (a torch model counted on its first input), or why they could not be
    counted, whatever its format: the counting works on what the loader holds (module or ONNX bytes)."""
    try:
        if model.module is not None:
            cost = torch_cost(model.module, x.shape[1:], device=model.device, example=torch.from_numpy(x[:1]))
        else:
            cost = onnx_cost(model.underlying, x.shape[1:])
    except BaseException as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE]}
    return {"params": cost.params, "flops_per_input": cost.flops_per_input}


def _peak_memory_mb(device: str, base_kb: int) -> float:
    """Memory the model needed: the GPU's peak allocation, or on a CPU how far the child's peak RSS rose
    above where it stood before the model was read (the runtime's own footprint is not the model's)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_kb) / 1024


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, got = [], 0
    while got < size:
        # pread, not read: the descriptor's shared offset may have been moved by another holder.
        chunk = os.pread(fd, min(size - got, 1 << 24), got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    os.close(fd)
    return b"".join(chunks)


def _prepare_cuda(device: str) -> None:
    # Landlock checks files at open time; the driver opens /dev/nvidia* and torch dlopens cuBLAS and
    # cuDNN lazily, so make the context and run each kind of kernel once before confining.
    dev = torch.device(device)
    torch.cuda.get_device_properties(dev)
    with torch.inference_mode():
        x = torch.ones(2, 1, 8, 8, device=dev)
        y = torch.nn.functional.conv2d(x, torch.ones(2, 1, 3, 3, device=dev))
        y = torch.nn.functional.batch_norm(y, torch.zeros(2, device=dev), torch.ones(2, device=dev))
        z = torch.flatten(torch.nn.functional.max_pool2d(torch.relu(y), 2), 1) @ torch.ones(18, 3, device=dev)
        torch.softmax(z, 1).cpu()
    torch.cuda.synchronize(dev)


def cuda_library_dirs() -> tuple[str, ...]:
    """Directories a CUDA child may still read after confinement: where torch and the CUDA libraries live."""
    import site

    dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")]
    for base in site.getsitepackages():
        dirs.append(os.path.join(base, "nvidia"))
    dirs += ["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"]
    try:  # onnxruntime-gpu loads its CUDA provider library when the first ONNX session is made
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            dirs.append(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))
    except ImportError:
        pass
    return tuple(d for d in dirs if os.path.isdir(d))


def _error(res_w: int, stage: str, exc: BaseException, **timings: float) -> None:
    msg = str(exc) if isinstance(exc, OutputProblem) else f"{type(exc).__name__}: {exc}"
    # TorchScript puts the model's own message last, after its traceback.
    msg = msg[-MAX_MESSAGE:] if "Traceback of TorchScript" in msg else msg[:MAX_MESSAGE]
    write_frame(res_w, {"event": "error", "stage": stage, "output": isinstance(exc, OutputProblem), "message": msg,
                        **timings})


def _receive_request(sock: socket.socket) -> tuple[dict, bytes, int | None]:
    """Wait for the zygote's request frame; the model file arrives as a passed descriptor."""
    buf, fds = bytearray(), []
    while len(buf) < 4:
        data, got, _, _ = socket.recv_fds(sock, 1 << 16, 1)
        if not data:
            raise EOFError("zygote hung up")
        buf += data
        fds += got
    size = int.from_bytes(buf[:4], "big")
    while len(buf) < 4 + size:
        buf += read_exact(sock, 4 + size - len(buf))
    header = json.loads(bytes(buf[4:4 + size]))
    rest = int(header.get("nbytes", 0)) - (len(buf) - 4 - size)
    payload = bytes(buf[4 + size:]) + (read_exact(sock, rest) if rest > 0 else b"")
    return header, payload, (fds[0] if fds else None)


def _warm_up(threads: int, cache: dict, device: str) -> None:
    """Start torch's OpenMP threads and fault in working memory while waiting, not during the model's first batch.

    One 32-channel convolution and pooling over a zero batch shaped like the latest test inputs. Measured on 2
    cores (fork children, digits starter CNN): first pass 77 ms without, 71 ms with (with 8 channels, too little
    memory: 77 ms). Only after confinement: Landlock and seccomp bind the calling thread and the threads it
    creates later.
    """
    torch.set_num_threads(max(threads, 1))
    x = next(reversed(cache.values()), None)
    with torch.inference_mode():
        if device == "cpu" and x is not None and x.ndim == 4:
            batch = torch.zeros(default_batch(device, int(np.prod(x.shape[1:]))), *x.shape[1:])
            y = torch.nn.functional.conv2d(batch, torch.zeros(32, x.shape[1], 3, 3), padding=1)
            torch.nn.functional.max_pool2d(torch.relu(y), 2)
        else:
            torch.ones(1 << 17).mul_(2)  # above torch's grain size: a parallel region starts the threads


def spare(*, sock_fd: int, cache: dict, device: str, threads: int) -> None:
    """Confine now, wait for one request, then load and run the model it names, reporting on sock_fd."""
    t0 = time.perf_counter()
    if device.startswith("cuda"):
        _prepare_cuda(device)
    base_vm = vm_bytes()
    layers = confine(keep_fds={sock_fd}, read_only=cuda_library_dirs() if device.startswith("cuda") else ())
    _warm_up(threads, cache, device)
    confine_s = time.perf_counter() - t0
    sock = socket.socket(fileno=sock_fd)
    req, payload, model_fd = _receive_request(sock)
    t1 = time.perf_counter()
    memory_limit_mb = int(req["memory_limit_mb"])
    limit_resources(base_vm=base_vm, memory_limit_mb=memory_limit_mb,
                    cpu_s=float(req["time_limit_s"]) * max(threads, 1) + 1)
    if device.startswith("cuda"):
        total = torch.cuda.get_device_properties(torch.device(device)).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, memory_limit_mb * 2**20 / total), torch.device(device))
    if req["op"] == "check":
        x = np.frombuffer(payload, dtype=np.float32).reshape(req["samples_shape"]).copy()
    else:
        x = cache[req["inputs_key"]]
    write_frame(sock_fd, {"event": "confined", "layers": layers, "confine_s": confine_s})
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(torch.device(device))
    try:
        data = _read_all(model_fd)
        model = load_model(data, device=device, threads=threads)
        del data
    except ContractProblem as exc:
        write_frame(sock_fd, {"event": "error", "stage": "signature", "output": True, "message": str(exc)[:MAX_MESSAGE]})
        return
    except BaseException as exc:
        _error(sock_fd, "load", exc, load_s=time.perf_counter() - t1)
        return
    t2 = time.perf_counter()
    found = {"format": model.format, "device": model.device}
    write_frame(sock_fd, {"event": "stage", "stage": "forward", "load_s": t2 - t1, **found})
    cost = measure(model, x)
    t_cost = time.perf_counter()
    write_frame(sock_fd, {"event": "cost", "format": model.format, "cost_s": t_cost - t2, **cost})
    # The grader decides on the numbers; stopping here only spares the scoring pass of a model that cannot count.
    if over_budget(params=cost.get("params"), flops_per_input=cost.get("flops_per_input"),
                   max_params=req.get("max_params"), max_mflops=req.get("max_mflops")):
        write_frame(sock_fd, {"event": "error", "stage": "budget", "output": False, "message": "over budget"})
        return
    num_classes = int(req["num_classes"])
    try:
        if req["op"] == "check":
            arrays = [infer(model, x, len(x), num_classes), infer(model, x, 1, num_classes)]
        else:
            arrays = score(model, x, int(req["batch_size"]), num_classes)
    except BaseException as exc:
        _error(sock_fd, "forward", exc, load_s=t2 - t1, inference_s=time.perf_counter() - t_cost)
        return
    t3 = time.perf_counter()
    payload = b"".join(np.ascontiguousarray(a, dtype=np.float32).tobytes() for a in arrays)
    write_frame(sock_fd, {"event": "result", "shapes": [list(a.shape) for a in arrays], "load_s": t2 - t1,
                          "inference_s": t3 - t_cost, "peak_memory_mb": _peak_memory_mb(device, base_kb), **found},
                payload)


def main(**kwargs) -> None:
    """Entry point after fork: be a spare for one request and leave without running any Python cleanup."""
    code = 0
    try:
        spare(**kwargs)
    except BaseException:
        code = 70
    finally:
        os._exit(code)
