"""Confine the current (forked, single-threaded) process before it touches a model.

Each layer is applied independently: a layer the host lacks is reported as
"unavailable: why" and the others still apply. Nothing here runs at import.
"""

from __future__ import annotations

import ctypes
import os
import resource

from podium.worker.sandbox import landlock, seccomp_filter

NOBODY = 65534
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_SIGKILL = 9
# A drill, e.g. "landlock,seccomp": confinement then skips these layers as a host without them would (a gVisor
# sandbox has no Landlock), so the refusal to score unconfined can be tried on any machine.
DISABLE_ENV = "PODIUM_SANDBOX_DISABLE_LAYERS"
DRILLABLE = ("landlock", "seccomp")
DRILL = f"disabled by {DISABLE_ENV}"
LAYERS = ("session", "stdio", "fds", "rlimits", "user", "namespaces", "landlock", "seccomp")


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def vm_bytes() -> int:
    """Return this process's current virtual memory size in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _stdio_to_null() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _close_fds(keep: set[int]) -> None:
    lo = 0
    for fd in sorted(keep | {0, 1, 2}):
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 1 << 20)


def _base_rlimits(nofile: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def limit_resources(*, base_vm: int, memory_limit_mb: int, cpu_s: float) -> None:
    """Cap address space at base_vm + the memory limit and CPU time at what is used now + cpu_s.

    Works after confinement too: lowering a limit needs no privilege, and the model can never raise it.
    """
    # Torch alone maps hundreds of MB of address space; the limit is what the model may add to that.
    address = base_vm + memory_limit_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (address, address))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + cpu_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _drop_user() -> str:
    if os.geteuid() != 0:
        return "skipped: not root (already unprivileged)"
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    return "ok"


def _namespaces(was_root: bool) -> str:
    if was_root:
        # Root may make the network and IPC namespaces directly; the user namespace comes after setuid.
        _unshare(CLONE_NEWNET | CLONE_NEWIPC)
        return "pending-user"
    _unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC)
    return "ok"


def _set(status: dict, layer: str, fn, *args) -> None:
    try:
        out = fn(*args)
        status[layer] = out if isinstance(out, str) else "ok"
    except Exception as exc:  # a missing layer is reported, never fatal: the rest still apply
        status[layer] = f"unavailable: {type(exc).__name__}: {exc}"


def confine(*, keep_fds: set[int], memory_limit_mb: int | None = None, cpu_s: float | None = None,
            nofile: int = 32, read_only: tuple[str, ...] = ()) -> dict[str, str]:
    """Apply every confinement layer to this process; return {layer: "ok" | "unavailable: why" | ...}.

    Without memory_limit_mb and cpu_s the address-space and CPU limits are left for limit_resources().
    read_only: directories Landlock still lets the process read (GPU children: the CUDA libraries).
    """
    base_vm = vm_bytes()
    parent = os.getppid()
    status: dict[str, str] = {}
    _set(status, "session", os.setsid)
    _set(status, "stdio", _stdio_to_null)
    _set(status, "fds", _close_fds, set(keep_fds))
    was_root = os.geteuid() == 0
    _set(status, "namespaces", _namespaces, was_root)
    _set(status, "user", _drop_user)
    if status["namespaces"] == "pending-user":
        try:
            _unshare(CLONE_NEWUSER)
            status["namespaces"] = "ok"
        except OSError as exc:
            status["namespaces"] = f"net+ipc only (user: {exc})"
    # Credential changes clear the parent-death signal, so it is set after them.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(0)

    def rlimits():
        _base_rlimits(nofile)
        if memory_limit_mb is not None and cpu_s is not None:
            limit_resources(base_vm=base_vm, memory_limit_mb=memory_limit_mb, cpu_s=cpu_s)

    _set(status, "rlimits", rlimits)
    drill = disabled_layers()
    if "landlock" in drill:
        status["landlock"] = f"unavailable: {DRILL}"
    else:
        try:
            abi = landlock.restrict_all(read_only)
            status["landlock"] = f"ok (ABI {abi}" + (f", read-only: {', '.join(read_only)})" if read_only else ")")
        except Exception as exc:
            status["landlock"] = f"unavailable: {exc}"
    if "seccomp" in drill:
        status["seccomp"] = f"unavailable: {DRILL}"
    else:
        try:
            seccomp_filter.install()
            status["seccomp"] = "ok"
        except Exception as exc:
            status["seccomp"] = f"unavailable: {type(exc).__name__}: {exc}"
    return status


def disabled_layers() -> set[str]:
    """Layers an operator switched off to rehearse a host that lacks them (PODIUM_SANDBOX_DISABLE_LAYERS)."""
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip() in DRILLABLE}


