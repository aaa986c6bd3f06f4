"""Framing on pipes and sockets: a length-prefixed JSON header, then optional raw bytes."""

from __future__ import annotations

import json
import os
import socket
import struct

_LEN = struct.Struct(">I")
MAX_HEADER = 64 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame (or hung up mid-frame)."""


def _encode_header(header: dict, nbytes: int) -> bytes:
    raw = json.dumps(dict(header, nbytes=nbytes), separators=(",", ":")).encode()
    return _LEN.pack(len(raw)) + raw


def encode(header: dict, payload: bytes | memoryview = b"") -> bytes:
    """Return one frame: header (with nbytes) and payload."""
    return _encode_header(header, len(payload)) + bytes(payload)


def write_frame(ch, header: dict, payload: bytes | memoryview = b"") -> None:
    """Write one whole frame to a socket (honouring its timeout) or a blocking fd."""
    if isinstance(ch, socket.socket):
        ch.sendall(_encode_header(header, len(payload)))
        if len(payload):
            ch.sendall(payload)  # a view is sent as it is, never copied
        return
    data = encode(header, payload)
    view = memoryview(data)
    while view:
        n = os.write(ch, view)
        view = view[n:]


def read_exact(ch, n: int) -> bytes:
    """Read exactly n bytes from a socket or a blocking fd, or raise ProtocolError on EOF."""
    recv = ch.recv if isinstance(ch, socket.socket) else (lambda k: os.read(ch, k))
    buf = bytearray()
    while len(buf) < n:
        chunk = recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ProtocolError("peer closed the channel")
        buf += chunk
    return bytes(buf)


def read_frame(ch, max_payload: int = 1 << 34) -> tuple[dict, bytes]:
    """Read one frame from a socket or a blocking fd."""
    (size,) = _LEN.unpack(read_exact(ch, _LEN.size))
    if size > MAX_HEADER:
        raise ProtocolError("header too large")
    try:
        header = json.loads(read_exact(ch, size))
    except ValueError as exc:
        raise ProtocolError(f"bad header: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    nbytes = header.get("nbytes", 0)
    if not isinstance(nbytes, int) or nbytes < 0 or nbytes > max_payload:
        raise ProtocolError("payload size out of bounds")
    return header, read_exact(ch, nbytes)


class FrameBuffer:
    """Frames from an untrusted peer, read into one fixed buffer of cap bytes that is wiped after use.

    The zygote relays scores through this without copying them, so that no other
    submission's scores linger in its heap for a later (forked) child to find.
    """

    def __init__(self, cap: int):
        self.buf = bytearray(cap)
        self.view = memoryview(self.buf)
        self.end = 0
        self.pos = 0

    def read_from(self, fd: int) -> int:
        """Read what fd has into the buffer; return the byte count (0 at EOF); ProtocolError past the cap."""
        if self.end >= len(self.buf):
            raise ProtocolError("output over the byte cap")
        n = os.readv(fd, [self.view[self.end:]])
        self.end += n
        return n

    def frames(self):
        """Yield (header, payload view) for each complete frame not yielded before."""
        while self.end - self.pos >= _LEN.size:
            (size,) = _LEN.unpack_from(self.buf, self.pos)
            if size > MAX_HEADER:
                raise ProtocolError("header too large")
            start = self.pos + _LEN.size
            if self.end < start + size:
                return
            try:
                header = json.loads(bytes(self.view[start:start + size]))
            except ValueError:
                raise ProtocolError("bad header") from None
            if not isinstance(header, dict):
                raise ProtocolError("header is not an object")
            nbytes = header.get("nbytes", 0)
            if not isinstance(nbytes, int) or nbytes < 0 or start + size + nbytes > len(self.buf):
                raise ProtocolError("output over the byte cap")
            if self.end < start + size + nbytes:
                return
            self.pos = start + size + nbytes
            yield header, self.view[start + size:self.pos]

    def wipe(self) -> None:
        """Overwrite everything received with zeros."""
        self.view[: self.end] = bytes(self.end)
