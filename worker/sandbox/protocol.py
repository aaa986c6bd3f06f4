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


def encode(header: dict, payload: bytes | memoryview = b"") -> bytes:
    """Return one frame: header (with nbytes) and payload."""
    header = dict(header, nbytes=len(payload))
    raw = json.dumps(header, separators=(",", ":")).encode()
    return _LEN.pack(len(raw)) + raw + bytes(payload)


def write_frame(ch, header: dict, payload: bytes | memoryview = b"") -> None:
    """Write one whole frame to a socket (honouring its timeout) or a blocking fd."""
    data = encode(header, payload)
    if isinstance(ch, socket.socket):
        ch.sendall(data)
        return
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


class FrameParser:
    """Incremental parser for untrusted frames read in chunks, with a byte cap."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.buf = bytearray()
        self.total = 0
        self.frames: list[tuple[dict, bytes]] = []

    def feed(self, chunk: bytes) -> None:
        """Add bytes; raise ProtocolError when the peer oversteps the cap or the format."""
        self.total += len(chunk)
        if self.total > self.max_bytes:
            raise ProtocolError("output over the byte cap")
        self.buf += chunk
        while len(self.buf) >= _LEN.size:
            (size,) = _LEN.unpack_from(self.buf)
            if size > MAX_HEADER:
                raise ProtocolError("header too large")
            if len(self.buf) < _LEN.size + size:
                return
            try:
                header = json.loads(bytes(self.buf[_LEN.size:_LEN.size + size]))
            except ValueError:
                raise ProtocolError("bad header") from None
            if not isinstance(header, dict):
                raise ProtocolError("header is not an object")
            nbytes = header.get("nbytes", 0)
            if not isinstance(nbytes, int) or nbytes < 0 or nbytes > self.max_bytes:
                raise ProtocolError("payload size out of bounds")
            end = _LEN.size + size + nbytes
            if len(self.buf) < end:
                return
            self.frames.append((header, bytes(self.buf[_LEN.size + size:end])))
            del self.buf[:end]
