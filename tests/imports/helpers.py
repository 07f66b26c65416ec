"""Shared helpers of the import tests: data files, and a real HTTP server on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = Path(__file__).parent / "data"


def write_ceneo_offers(path: Path, count: int, *, between: str = "") -> None:
    """A Ceneo feed of ``count`` offers of ~0.8 KB each (a long name and description), ``between`` after each."""
    with path.open("w") as f:
        f.write('<offers><group name="g">')
        for i in range(count):
            f.write(f'<o id="S{i}" price="1.00" stock="1"><name>{"n" * 200}</name><desc>{"d" * 500}</desc></o>')
            f.write(between)
        f.write("</group></offers>")


@dataclass
class Route:
    """What the test server answers on one path."""

    body: bytes = b""
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds slept after the headers, before the body
    content_length: int | None = None  # larger than the body: a cut-off response; -1: none (until close)
    location: str | None = None


@dataclass
class Server:
    base: str
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


@contextmanager
def http_server(routes: dict[str, Route]) -> Iterator[Server]:
    """A ThreadingHTTPServer on 127.0.0.1 serving ``routes`` (304 when If-None-Match matches the ETag)."""
    server_box: list[Server] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state = server_box[0]
            state.requests.append((self.path, dict(self.headers.items())))
            route = state.routes.get(self.path)
            if route is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.etag and self.headers.get("If-None-Match") == route.etag:
                self.send_response(304)
                self.send_header("ETag", route.etag)
                self.end_headers()
                return
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", route.location)
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            length = route.content_length if route.content_length is not None else len(route.body)
            if length >= 0:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.flush()
            if route.delay:
                time.sleep(route.delay)
            try:
                self.wfile.write(route.body)
                self.wfile.flush()
            except OSError:
                pass
            if route.content_length is not None:
                self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}", routes=routes)
    server_box.append(state)
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def collect(iterator: Iterator[object]) -> list[object]:
    return list(iterator)


Factory = Callable[..., object]
