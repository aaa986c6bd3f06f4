"""The web server's worker: gunicorn's threaded worker, but no thread waits on a slow client's request head.

gunicorn's gthread worker hands a connection to a thread as soon as its first byte arrives, and the thread then
blocks until the request line and headers are complete: eight clients that trickle one header line every few
seconds hold all eight threads of `podium serve`. Here the event loop (one per worker process) reads the head, and
a body of at most `small_body` bytes, without blocking; a request goes to a thread only once that much has
arrived. A head that is not complete within `head_timeout_s` is answered 408 and closed. Larger bodies (uploads)
are read by the thread after the view has checked who is sending and whether the size is allowed; every read
waits at most `idle_timeout_s`, so a stalled upload frees its thread.
"""
from __future__ import annotations

import errno
import re
import selectors
import socket
import time
from collections import deque
from functools import partial

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

_END_OF_HEAD = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\S*)", re.I | re.M)
_CHUNKED = re.compile(rb"^transfer-encoding[ \t]*:", re.I | re.M)
_TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_TOO_LARGE_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _IdleTimeoutSocket(socket.socket):
    """A client socket whose blocking mode waits at most idle_timeout_s per read or write (set by the worker)."""

    __slots__ = ()
    idle_timeout_s = 30.0

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.idle_timeout_s)
        else:
            super().setblocking(False)


def request_ready(buffered: bytes, small_body: int) -> bool:
    """True when the buffered bytes hold a whole request head, and its body if that is small.

    A body announced larger than small_body, or chunked, is left to the thread: the view refuses it before
    reading when the sender may not send that much.
    """
    end = buffered.find(_END_OF_HEAD)
    if end < 0:
        return False
    head = buffered[:end]
    if _CHUNKED.search(head):
        return True
    match = _CONTENT_LENGTH.search(head)
    if match is None or not match.group(1).isdigit():
        return True  # no body, or one gunicorn's parser refuses with a 400
    length = int(match.group(1))
    return length > small_body or len(buffered) - end - len(_END_OF_HEAD) >= length


class HeadBufferingWorker(ThreadWorker):
    """ThreadWorker that reads request heads (and small bodies) in its event loop and times out slow ones."""

    head_timeout_s = 10.0
    idle_timeout_s = 30.0
    small_body = 64 * 1024
    max_head = 64 * 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading_heads: deque[TConn] = deque()

    def init_process(self):
        _IdleTimeoutSocket.idle_timeout_s = self.idle_timeout_s  # one worker class per process
        super().init_process()

    def accept(self, listener):
        """A new connection waits in the event loop until its request head has arrived."""
        if self.cfg.is_ssl:  # TLS ends at the reverse proxy; a TLS listener keeps gunicorn's own handling
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client_sock.__class__ = _IdleTimeoutSocket
        self._read_head(TConn(self.cfg, client_sock, client_addr, listener.getsockname()))

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection's next request is read the same way."""
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_head(conn)

    def _read_head(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        conn.head = bytearray()
        conn.timeout = time.monotonic() + self.head_timeout_s
        self.reading_heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_bytes, conn))

    def _on_head_bytes(self, conn: TConn, _client) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.head += data
        ready = request_ready(bytes(conn.head), self.small_body)
        if not ready:
            if len(conn.head) > self.max_head + self.small_body:
                self._drop(conn, _TOO_LARGE_431)
            return
        self.poller.unregister(conn.sock)
        self.reading_heads.remove(conn)
        if conn.parser is None:
            conn.initialized = True
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = None
        conn.data_ready = True
        self.enqueue_req(conn)

    def _drop(self, conn: TConn, answer: bytes = b"") -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        try:
            self.reading_heads.remove(conn)
        except ValueError:
            pass
        if answer:
            try:
                conn.sock.send(answer)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        """Also close the connections whose request head is late (408)."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading_heads and self.reading_heads[0].timeout <= now:
            conn = self.reading_heads[0]
            self._drop(conn, _TIMEOUT_408 if conn.head else b"")


def worker_class(head_timeout_s: float, idle_timeout_s: float, small_body: int) -> type[HeadBufferingWorker]:
    """The worker class for gunicorn's worker_class setting, with these limits."""
    return type("PodiumWorker", (HeadBufferingWorker,), {
        "head_timeout_s": head_timeout_s, "idle_timeout_s": idle_timeout_s, "small_body": small_body})
