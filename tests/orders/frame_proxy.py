"""A real TCP proxy between the ib_async client and the simulator that can swallow frames the
client sends (here: placeOrder, message id 3), as a broken link or middlebox would."""

from __future__ import annotations

import socket
import threading

from v6core.sim.codec import FrameReader, frame_raw

PLACE_ORDER = b"3"
HELLO = b"API\0"


class FrameProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.drop_ids: set[bytes] = set()
        self.dropped: list[bytes] = []
        self._server = socket.create_server((host, 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, name="frame-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._sockets += [client, upstream]
            threading.Thread(target=self._client_to_server, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._copy, args=(upstream, client), daemon=True).start()

    def _copy(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _client_to_server(self, client: socket.socket, upstream: socket.socket) -> None:
        reader = FrameReader()
        pending = b""
        try:
            while len(pending) < len(HELLO):          # the hello prefix passes unframed
                data = client.recv(len(HELLO) - len(pending))
                if not data:
                    return
                pending += data
            upstream.sendall(pending)
            while data := client.recv(65536):
                for payload in reader.feed(data):
                    if payload.split(b"\0", 1)[0] in self.drop_ids:
                        self.dropped.append(payload)
                        continue
                    upstream.sendall(frame_raw(payload))
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
