"""Landlock through raw syscalls: deny all file access, TCP, abstract sockets and signals out of the domain."""

from __future__ import annotations

import ctypes
import os

_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_RULE_PATH_BENEATH = 1
# EXECUTE | READ_FILE | READ_DIR: enough to dlopen a library, nothing to write with.
READ_ONLY = (1 << 0) | (1 << 2) | (1 << 3)
_CREATE_RULESET_VERSION = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights handled by each ABI: 13 rights in ABI 1, REFER (2), TRUNCATE (3), IOCTL_DEV (5).
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_ALL = 0b11  # BIND_TCP | CONNECT_TCP, from ABI 4
_SCOPE_ALL = 0b11  # ABSTRACT_UNIX_SOCKET | SIGNAL, from ABI 6


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """Return the kernel's Landlock ABI version, or 0 when Landlock is unavailable."""
    r = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(r), 0)


def set_no_new_privs() -> None:
    """Set PR_SET_NO_NEW_PRIVS, which Landlock and seccomp need without CAP_SYS_ADMIN."""
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def restrict_all(read_only: tuple[str, ...] = ()) -> int:
    """Deny every access right this kernel's Landlock knows, except reading under read_only; return the ABI."""
    abi = abi_version()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    attr = _RulesetAttr(_FS_BY_ABI.get(abi, _FS_BY_ABI[5]), _NET_ALL if abi >= 4 else 0, _SCOPE_ALL if abi >= 6 else 0)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    libc = _libc()
    fd = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        for path in read_only:
            _allow_read(libc, fd, path)
        set_no_new_privs()
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_restrict_self: {os.strerror(err)}")
    finally:
        os.close(fd)
    return abi


def _allow_read(libc, ruleset_fd: int, path: str) -> None:
    try:
        dir_fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a library directory this host does not have
    try:
        rule = _PathBeneath(READ_ONLY, dir_fd)
        if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset_fd), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                        ctypes.c_uint32(0)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_add_rule {path}: {os.strerror(err)}")
    finally:
        os.close(dir_fd)
