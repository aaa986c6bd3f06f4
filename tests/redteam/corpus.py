"""Generator of the red-team corpus of hostile uploads (issue 4, point 6).

build_corpus(out_dir, targets) writes every case to out_dir and returns a list
of Case. Each case says what a grader must answer: a failure whose reason
matches `expect`, or (expect=None) any answer that is not a perfect score,
because the case tries to steal the labels and must fail harmlessly. The
sandbox tests run the corpus through ScoringPool; the worker tests can run the
same files through the real Celery worker.
"""

from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from redteam import craft, craft_formats

TIME_LIMIT = "ran longer than the"
MEMORY = "used more than the"
LOAD_FAILED = "the model failed to load"
RECIPE = r"torch\.export\.save\(program"


@dataclass
class Targets:
    """What the attacks aim at; the tests check afterwards that none was reached."""

    labels_path: str  # fake labels, raw uint8, one per test row
    secret_path: str  # a file whose text must never appear in a reason
    secret: str
    inputs_path: str  # the test npz (x and y) the child must not open
    canary_dir: str  # must stay empty; its victim file must stay unchanged
    victim_path: str
    token: str  # every file an attack tries to create has this in its name
    tcp_port: int
    udp_port: int
    unix_path: str
    abstract_name: str
    worker_pid: int  # the test process: it counts SIGUSR1 it receives
    num_classes: int = 10
    n: int = 300


@dataclass
class Case:
    """One hostile upload and the answer the grader must give."""

    name: str
    path: str
    expect: str | None  # regex the failure reason must match; None: must not score perfectly
    note: str = ""


# ---------------------------------------------------------------- TorchScript attacks
class FromFileTheft(torch.nn.Module):
    """Reads the labels in forward() and answers them."""

    def __init__(self, path: str, n: int, c: int):
        super().__init__()
        self.path, self.n, self.c = path, n, c

    def forward(self, x):
        y = torch.from_file(self.path, size=self.n, dtype=torch.uint8)
        return torch.nn.functional.one_hot(y[: x.size(0)].long(), self.c).float()


class SetstateTheft(torch.nn.Module):
    """Reads the labels while loading (TorchScript __setstate__) and answers them."""

    def __init__(self, path: str, n: int, c: int):
        super().__init__()
        self.path, self.n, self.c = path, n, c
        self.stolen = torch.zeros(n, dtype=torch.uint8)

    @torch.jit.export
    def __getstate__(self) -> tuple[str, int, int, bool]:
        return (self.path, self.n, self.c, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, int, int, bool]) -> None:
        self.path, self.n, self.c, self.training = state[0], state[1], state[2], state[3]
        self.stolen = torch.from_file(self.path, size=self.n, dtype=torch.uint8)

    def forward(self, x):
        return torch.nn.functional.one_hot(self.stolen[: x.size(0)].long(), self.c).float()


class ExfiltrateByException(torch.nn.Module):
    """Reads a secret file and raises with its bytes, hoping the reason shows them."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x):
        data = torch.from_file(self.path, size=16, dtype=torch.uint8)
        msg = ""
        for i in range(16):
            msg = msg + chr(int(data[i]))
        raise RuntimeError(msg)


class SaveWrite(torch.nn.Module):
    """Writes a file from forward() with torch.save (which ignores its own errors: it may score zeros)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x):
        torch.save(x, self.path)
        return torch.zeros(x.size(0), 10)


class SharedWrite(torch.nn.Module):
    """Overwrites an existing file through a shared mapping."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x):
        t = torch.from_file(self.path, shared=True, size=8, dtype=torch.uint8)
        t.fill_(66)
        return torch.zeros(x.size(0), 10) + t[0].float() * 0.0  # used, so the JIT keeps it


class InfiniteLoop(torch.nn.Module):
    def forward(self, x):
        while bool(x.sum() > -1.0):
            x = x + 0.0
        return x


class MemoryBomb(torch.nn.Module):
    def forward(self, x):
        keep = []
        for _ in range(10_000):
            keep.append(torch.empty(x.size(0) * 250_000))  # address space, not pages: fast on a busy machine
        return torch.zeros(x.size(0), 10) + float(len(keep))


class HugeOutput(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.size(0), 100_000)


class NaNOutput(torch.nn.Module):
    def forward(self, x):
        return torch.full([x.size(0), 10], float("nan"))


class InfOutput(torch.nn.Module):
    def forward(self, x):
        return torch.full([x.size(0), 10], float("inf"))


class FixedShape(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(7, 10)


class FlatOutput(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.size(0))


class WrongClasses(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.size(0), 3)


class ThreeDims(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.size(0), 10, 1)


class TupleOutput(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.size(0), 10), torch.zeros(x.size(0), 10)


class DictOutput(torch.nn.Module):
    def forward(self, x):
        return {"scores": torch.zeros(x.size(0), 10)}


class TwoArgs(torch.nn.Module):
    def forward(self, x, y):
        return torch.zeros(x.size(0), 10) + y


class Raises(torch.nn.Module):
    def forward(self, x):
        msg = "boom"
        for _ in range(500):
            msg = msg + " boom"
        raise ValueError(msg)


class PrintFlood(torch.nn.Module):
    def forward(self, x):
        i = 0
        while bool(x.sum() > -1.0):
            print("REDTEAM-FLOOD", i)
            i += 1
        return torch.zeros(x.size(0), 10)


# ---------------------------------------------------------------- Python run at load
_PROBE = """
import os, sys
R = []
def attempt(name, fn):
    try:
        fn()
        R.append(name + "=DONE")
    except BaseException as e:
        R.append(name + "=" + type(e).__name__)
{body}
raise RuntimeError("probe " + " ".join(R))
"""


def _probe(body: str) -> str:
    return _PROBE.replace("{body}", body.strip("\n"))


def _python_cases(t: Targets) -> dict[str, tuple[str, str | None]]:
    """name -> (python source run at load, expected reason regex)."""
    blocked = LOAD_FAILED + r".*probe ([\w-]+=(?!DONE)\w+ ?)+$"
    w = f"{t.canary_dir}/{t.token}"
    theft = f"""
import torch, numpy as np
def steal():
    y = np.frombuffer(open({t.labels_path!r}, "rb").read(), dtype=np.uint8)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(y.astype("int64")), {t.num_classes}).float()
    torch.cat = lambda tensors, *a, **k: onehot  # the child's own torch.cat now answers the labels
attempt("labels", steal)
"""
    # A theft that fails falls back to loading normally, so it must be graded as an ordinary (wrong) model.
    theft_quiet = theft.replace('attempt("labels", steal)', "try:\n    steal()\nexcept Exception:\n    pass")
    return {
        "load-read-labels": (_probe(theft), blocked),
        "load-steal-labels-quietly": (theft_quiet, None),
        "load-read-etc-passwd": (_probe('attempt("passwd", lambda: open("/etc/passwd").read())'), blocked),
        "load-read-test-npz-y": (_probe(f'import numpy as np\nattempt("y", lambda: np.load({t.inputs_path!r})["y"])'), blocked),
        "load-read-zygote-memory": (_probe('attempt("mem", lambda: open(f"/proc/{os.getppid()}/mem", "rb").read(1))'), blocked),
        "load-read-environ": (_probe("""
attempt("environ", lambda: open("/proc/self/environ", "rb").read())
def envvars():
    if not [k for k in os.environ if "REDTEAM" in k]:
        raise LookupError("no worker secrets in the environment")
attempt("envvars", envvars)
"""), blocked),
        "load-write-files": (_probe(f'attempt("canary", lambda: open({w + "-w"!r}, "w").write("x"))\n'
                                    f'attempt("tmp", lambda: open("/tmp/{t.token}-w", "w").write("x"))\n'
                                    f'attempt("shm", lambda: open("/dev/shm/{t.token}-w", "w").write("x"))\n'
                                    f'attempt("mkdir", lambda: os.mkdir({w + "-d"!r}))'), blocked),
        "load-tcp": (_probe(f'import socket\nattempt("tcp", lambda: socket.socket().connect(("127.0.0.1", {t.tcp_port})))\n'
                            f'attempt("tcp-by-name", lambda: socket.create_connection(("localhost", {t.tcp_port}), timeout=1))'), blocked),
        "load-udp": (_probe(f'import socket\nattempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", {t.udp_port})))'), blocked),
        "load-unix-socket": (_probe(f'import socket\nattempt("unix", lambda: socket.socket(socket.AF_UNIX).connect({t.unix_path!r}))\n'
                                    f'attempt("abstract", lambda: socket.socket(socket.AF_UNIX).connect("\\0{t.abstract_name}"))'), blocked),
        "load-exec": (_probe(f"""
attempt("execv", lambda: os.execv("/bin/sh", ["sh", "-c", "touch {w}-exec"]))
def system():
    if os.system("touch {w}-system") != 0:
        raise OSError("system() failed")
attempt("system", system)
import subprocess
attempt("popen", lambda: subprocess.run(["touch", "{w}-popen"]))
"""), blocked),
        "load-fork": (_probe(f"""
def fork():
    pid = os.fork()
    if pid == 0:
        open({w + "-fork"!r}, "w").close()
        os._exit(0)
attempt("fork", fork)
"""), blocked),
        "load-signals": (_probe(f"""
import signal, ctypes
attempt("kill-parent", lambda: os.kill(os.getppid(), signal.SIGKILL))
attempt("kill-worker", lambda: os.kill({t.worker_pid}, signal.SIGUSR1))
attempt("kill-all", lambda: os.kill(-1, 0))
libc = ctypes.CDLL(None, use_errno=True)
def ptrace():
    if libc.ptrace(16, os.getppid(), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "ptrace")
attempt("ptrace", ptrace)
attempt("setuid", lambda: os.setuid(0))
"""), blocked),
        "load-sleep": ("import time\ntime.sleep(600)", TIME_LIMIT),
        "load-infinite-loop": ("while True:\n    pass", TIME_LIMIT),
        "load-memory-bomb": ("x = bytearray(8 * 2**30)", MEMORY),
        "load-result-channel-junk": ("import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'\\xff' * 65536)\n    except OSError:\n        pass\nimport time\ntime.sleep(600)",
                                     r"corrupted its result channel"),
        "load-result-channel-flood": ("import os, json, struct\nh = json.dumps({'event': 'stage', 'stage': 'load', 'nbytes': 0}).encode()\n"
                                      "frame = struct.pack('>I', len(h)) + h\nfor fd in range(3, 64):\n    try:\n        while True:\n            os.write(fd, frame * 1000)\n    except OSError:\n        pass",
                                      r"more output than expected"),
        "load-crash": ("import ctypes\nctypes.string_at(0)", r"crashed while loading \(signal SIGSEGV\)"),
        "load-exit": ("import os\nos._exit(3)", r"exited \(code 3\) while loading"),
    }


# ---------------------------------------------------------------- the corpus
def _script(module: torch.nn.Module, path: Path) -> None:
    torch.jit.save(torch.jit.script(module), str(path))


def _zip_bomb(path: Path, inflated: int) -> None:
    block = b"\0" * 2**20
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("model/code/__torch__.py", "class M(Module):\n  pass\n")
        with zf.open("model/data.pkl", "w", force_zip64=True) as f:
            for _ in range(inflated // len(block)):
                f.write(block)


def _lying_zip_bomb(path: Path, inflated: int) -> None:
    """A bomb whose central directory claims 4 KB, so the directory check alone passes."""
    _zip_bomb(path, inflated)
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    pos = struct.unpack_from("<I", data, eocd + 16)[0]
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        name = bytes(data[pos + 46:pos + 46 + name_len])
        if name == b"model/data.pkl":
            struct.pack_into("<I", data, pos + 24, 4096)
        pos += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))


def build_corpus(out_dir, t: Targets) -> list[Case]:
    """Write every hostile upload into out_dir; return the cases with their expected answers."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    c = t.num_classes

    def add(name, expect, writer, note=""):
        path = out / f"{name}.pt"
        writer(path)
        cases.append(Case(name, str(path), expect, note))

    batch = r"( for a batch of \d+ inputs)?"  # the grader runs forward() in batches
    scripted = {
        "theft-from-file-in-forward": (FromFileTheft(t.labels_path, t.n, c), r"forward\(\) raised: .*"),
        "theft-from-file-at-load": (SetstateTheft(t.labels_path, t.n, c), LOAD_FAILED),
        "exfiltrate-by-exception": (ExfiltrateByException(t.secret_path), r"forward\(\) raised: "),
        "write-torch-save": (SaveWrite(f"{t.canary_dir}/{t.token}-save"), None),
        "write-shared-mapping": (SharedWrite(t.victim_path), r"forward\(\) raised: "),
        "infinite-loop": (InfiniteLoop(), TIME_LIMIT),
        "memory-bomb": (MemoryBomb(), MEMORY),
        "huge-output": (HugeOutput(), rf"^output shape \[\d+, 100000\]{batch}, expected \[\d+, {c}\]$|{MEMORY}"),
        "nan-output": (NaNOutput(), r"^output contains NaN or Inf$"),
        "inf-output": (InfOutput(), r"^output contains NaN or Inf$"),
        "wrong-shape-fixed": (FixedShape(), rf"^output shape \[7, 10\]{batch}, expected \[\d+, {c}\]$"),
        "wrong-shape-flat": (FlatOutput(), rf"^output shape \[\d+\]{batch}, expected \[\d+, {c}\]$"),
        "wrong-shape-classes": (WrongClasses(), rf"^output shape \[\d+, 3\]{batch}, expected \[\d+, {c}\]$"),
        "wrong-shape-3d": (ThreeDims(), rf"^output shape \[\d+, 10, 1\]{batch}, expected \[\d+, {c}\]$"),
        "tuple-output": (TupleOutput(), r"^forward\(\) must return a single tensor, got a tuple$"),
        "dict-output": (DictOutput(), r"^forward\(\) must return a single tensor, got a dict$"),
        "two-arg-forward": (TwoArgs(), r"^forward\(\) must take one argument"),
        "raising": (Raises(), r"^forward\(\) raised: .*boom boom"),
        "print-flood": (PrintFlood(), TIME_LIMIT),
    }
    for name, (module, expect) in scripted.items():
        add(name, expect, lambda p, m=module: _script(m, p))

    for name, (source, expect) in _python_cases(t).items():
        add(name, expect, lambda p, s=source: p.write_bytes(craft.python_at_load(s, num_classes=c)))

    add("nested-code-crash", r"crashed while loading \(signal SIGSEGV\)|" + LOAD_FAILED,
        lambda p: p.write_bytes(craft.nested_code()))
    add("nested-pickle-crash", r"crashed while loading \(signal SIGSEGV\)|" + LOAD_FAILED,
        lambda p: p.write_bytes(craft.nested_pickle()))
    add("pickled-module", RECIPE, lambda p: torch.save(HugeOutput(), str(p)))
    add("pickled-state-dict", RECIPE, lambda p: torch.save(torch.nn.Linear(3, 2).state_dict(), str(p)))
    add("legacy-pickled-module", RECIPE,
        lambda p: torch.save(torch.nn.Linear(3, 2), str(p), _use_new_zipfile_serialization=False))
    add("reduce-pickle", RECIPE, lambda p: p.write_bytes(craft.reduce_pickle(f"open('{t.canary_dir}/{t.token}-pickle', 'w')")))
    add("garbage", r"not a model Podium recognises", lambda p: p.write_bytes(os.urandom(1 << 16).replace(b"PK", b"pk")))
    add("empty", r"empty", lambda p: p.write_bytes(b""))
    add("non-torchscript-zip", r"no data\.pkl", lambda p: _plain_zip(p))
    add("zip-bomb", r"unpacks to|zip bomb", lambda p: _zip_bomb(p, 600 * 2**20))
    add("zip-bomb-lying-directory", LOAD_FAILED + "|" + MEMORY + r"|crashed while loading", lambda p: _lying_zip_bomb(p, 64 * 2**20))
    cases += _exported_program_cases(add, t)
    cases += _onnx_cases(add, t)
    return cases


def _exported_program_cases(add, t: Targets) -> list[Case]:
    """torch.export archives: Python through sympify, pickles in every pickled member, bombs, refused kinds."""
    f = craft_formats
    base = f.honest_pt2()
    for name, (source, expect) in _python_cases(t).items():
        if expect is not None and name != "load-result-channel-flood":  # the flood needs TorchScript's own frames
            # torch.export.load wraps every Exception in its own: the probe reports through a BaseException.
            source = source.replace('raise RuntimeError("probe "', 'raise KeyboardInterrupt("probe "')
            add(f"pt2-sympify-{name[5:]}", expect, lambda p, s=source: p.write_bytes(f.python_at_load(base, s)))
    write = _python_cases(t)["load-write-files"][0]
    pickled = r"^the torch\.export archive holds pickled Python objects"
    add("pt2-pickle-sample-inputs", pickled, lambda p: p.write_bytes(f.pickle_in_sample_inputs(base, write)))
    add("pt2-pickle-weight", pickled, lambda p: p.write_bytes(f.pickle_in_weight(base, write)))
    add("pt2-pickle-constant", pickled, lambda p: p.write_bytes(f.pickle_in_constant(base, write)))
    add("pt2-opaque-object", r"pickled Python objects", lambda p: p.write_bytes(f.opaque_object(base, write)))
    add("pt2-custom-object", r"pickled Python objects",
        lambda p: p.write_bytes(f.opaque_object(base, write, prefix="custom_obj_")))
    add("pt2-huge-declared-shape", LOAD_FAILED + "|" + MEMORY, lambda p: p.write_bytes(f.huge_declared_shape(base)))
    add("pt2-zip-bomb", r"unpacks to|zip bomb", lambda p: p.write_bytes(f.zip_bomb(base, 600 * 2**20)))
    add("pt2-zip-bomb-lying-directory", LOAD_FAILED + "|" + MEMORY + r"|crashed while loading",
        lambda p: p.write_bytes(f.lying_zip_bomb(base, 64 * 2**20)))
    add("pt2-aotinductor", r"AOTInductor package", lambda p: p.write_bytes(f.aoti_package(base)))
    add("pt2-two-programs", r"holds 2 programs", lambda p: p.write_bytes(f.two_programs(base)))
    return []


def _onnx_cases(add, t: Targets) -> list[Case]:
    """ONNX: external data (plain, relative to the zygote's working directory /, traversal, absolute, hidden in a
    subgraph), huge shapes, nesting past protobuf's limit, operators no runtime here has."""
    f = craft_formats
    external = r"^the ONNX model keeps tensor .* in external data"
    relative = os.path.relpath(t.labels_path, "/")  # ONNX Runtime would read this from the cwd, /
    add("onnx-external-plain", external, lambda p: p.write_bytes(f.external_data("weights.bin")))
    add("onnx-external-relative", external, lambda p: p.write_bytes(f.external_data(relative)))
    add("onnx-external-traversal", external, lambda p: p.write_bytes(f.external_data("../" * 12 + "etc/passwd")))
    add("onnx-external-absolute", external, lambda p: p.write_bytes(f.external_data(t.labels_path)))
    add("onnx-external-in-subgraph", external, lambda p: p.write_bytes(f.external_data_in_subgraph(relative)))
    add("onnx-huge-allocation", MEMORY, lambda p: p.write_bytes(f.huge_allocation()))
    add("onnx-huge-declared-initializer", LOAD_FAILED + "|" + MEMORY,
        lambda p: p.write_bytes(f.huge_declared_initializer()))
    add("onnx-deeply-nested", LOAD_FAILED + r"|crashed while loading", lambda p: p.write_bytes(f.deeply_nested()))
    add("onnx-unknown-domain", LOAD_FAILED + r".*com\.evil", lambda p: p.write_bytes(f.unknown_domain()))
    add("onnx-custom-op", LOAD_FAILED + r".*(PyOp|ai\.onnx\.contrib)", lambda p: p.write_bytes(f.custom_op()))
    add("onnx-fixed-batch", r"batch dimension is fixed at 1", lambda p: p.write_bytes(f.fixed_batch()))
    return []


def _plain_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("weights.npy", b"\x93NUMPY" + b"\0" * 100)
        zf.writestr("README.txt", "my model")


def write_targets(root, *, token: str, tcp_port: int, udp_port: int, unix_path: str, n: int = 300,
                  num_classes: int = 10) -> Targets:
    """Create the files the attacks aim at under root and return their description."""
    import numpy as np

    root = Path(root)
    (root / "secret").mkdir(parents=True, exist_ok=True)
    canary = root / "canary"
    canary.mkdir(exist_ok=True)
    labels = np.random.default_rng(7).integers(0, num_classes, n).astype(np.uint8)
    labels_path = root / "secret" / "labels.bin"
    labels.tofile(labels_path)
    secret = f"SECRET-{token}"
    (root / "secret" / "secret.txt").write_text(secret)
    x = np.random.default_rng(8).random((n, 1, 28, 28), dtype=np.float32)
    inputs_path = root / "secret" / "test.npz"
    np.savez(inputs_path, x=x, y=labels.astype(np.int64))
    victim = root / "victim.bin"
    victim.write_bytes(b"UNTOUCHED")
    return Targets(labels_path=str(labels_path), secret_path=str(root / "secret" / "secret.txt"), secret=secret,
                   inputs_path=str(inputs_path), canary_dir=str(canary), victim_path=str(victim), token=token,
                   tcp_port=tcp_port, udp_port=udp_port, unix_path=unix_path, abstract_name=f"podium-{token}",
                   worker_pid=os.getpid(), num_classes=num_classes, n=n)


def labels_of(t: Targets):
    """The fake labels the attacks try to steal."""
    import numpy as np

    return np.fromfile(t.labels_path, dtype=np.uint8).astype(np.int64)


__all__ = ["Case", "Targets", "build_corpus", "labels_of", "write_targets"]


MARKER_VALUE = 1234.5678


class MarkerScores(torch.nn.Module):
    """An honest-looking victim whose scores are easy to recognise in memory."""

    def forward(self, x):
        return torch.full([x.size(0), 10], 1234.5678)


def memory_scan_source() -> str:
    """Python run at load that searches its own memory for another submission's scores."""
    return _probe(f"""
import ctypes, struct
marker = struct.pack("<f", {MARKER_VALUE}) * 10
own = id(marker)
r, w = os.pipe()
def scan():
    step = 1 << 20  # chunk copies this big are mmap'ed and gone when freed: no false finds
    heap = id(bytes(4096))  # a glibc-heap address
    for k in range(-64, 64):
        addr = (heap + k * step) & ~0xFFF
        try:
            for page in range(addr, addr + step, 4096):  # a pipe copies the page: EFAULT, not a crash
                os.write(w, (ctypes.c_char * 4096).from_address(page))
                os.read(r, 4096)
        except OSError:
            continue
        chunk = ctypes.string_at(addr, step)
        at = chunk.find(marker)
        while at >= 0:
            if not own <= addr + at < own + 128:
                return
            at = chunk.find(marker, at + 1)
    raise LookupError("no scores of another submission in memory")
attempt("scan", scan)
""")
