"""A seccomp deny list for the scoring child: no sockets, exec, new processes, ptrace or signals out."""

from __future__ import annotations

import errno
import os

import pyseccomp as sc

CLONE_THREAD = 0x00010000

DENIED = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "execve", "execveat", "fork", "vfork",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_by_handle_at", "name_to_handle_at",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "mknod", "mknodat", "personality",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
)


def install() -> int:
    """Load the filter into this process (all threads later created inherit it); return rules added."""
    f = sc.SyscallFilter(defaction=sc.ALLOW)
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)  # 32-bit syscalls would bypass the rules below
    deny = sc.ERRNO(errno.EPERM)
    added = 0
    for name in DENIED:
        try:
            f.add_rule(deny, name)
            added += 1
        except (OSError, ValueError, RuntimeError):
            pass  # a syscall this architecture does not have
    # Threads (CLONE_THREAD) stay possible for torch's pools; new processes do not.
    f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    # clone3 passes flags in memory that seccomp cannot read; ENOSYS makes glibc fall back to clone.
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    pid = os.getpid()
    f.add_rule(deny, "kill", sc.Arg(0, sc.NE, pid))
    f.add_rule(deny, "tgkill", sc.Arg(0, sc.NE, pid))
    f.load()
    return added + 5
