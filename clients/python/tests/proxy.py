"""A TCP proxy on loopback that can cut or freeze the connections through it."""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType
from typing import Self


class Proxy:
    """Proxy forwards 127.0.0.1:<port> to target ("host:port").

    :meth:`drop` closes every connection through it (the peers see a reset
    or an end of stream). :meth:`freeze` stops forwarding on the current
    connections without closing them, like a peer whose machine died: only
    a keepalive notices. New connections are forwarded in either case.
    """

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, upstream)
            with self._lock:
                if self._closed:
                    pair.close()
                    return
                self._pairs = [p for p in self._pairs if not p.done.is_set()]
                self._pairs.append(pair)
            pair.start()

    @property
    def connections(self) -> int:
        """connections counts the live connections through the proxy."""
        with self._lock:
            return sum(1 for p in self._pairs if not p.done.is_set())

    def drop(self) -> None:
        """drop closes every current connection."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for p in pairs:
            p.close()

    def freeze(self) -> None:
        """freeze stops forwarding on every current connection."""
        with self._lock:
            for p in self._pairs:
                p.frozen.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._listener.close()
        self.drop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Pair:
    """_Pair forwards bytes both ways between two sockets until one ends."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self._socks = (a, b)
        self.frozen = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        a, b = self._socks
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while not self.done.is_set():
                if self.frozen.is_set():
                    # Hold the connection open and read nothing.
                    self.done.wait(0.1)
                    continue
                for key, _ in sel.select(timeout=0.1):
                    if self.frozen.is_set():
                        break
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            self.close()

    def close(self) -> None:
        self.done.set()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
