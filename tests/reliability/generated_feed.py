"""A loopback HTTP server that streams huge CSV or XML feeds generated on the fly (nothing of them is on disk).

``GET /feed.csv?bytes=N&mode=M`` (or ``/feed.xml``) answers a feed of about N bytes (exactly ``feed_size(...)``)
made of one block of records repeated; ``mode`` is ``length`` (Content-Length, the size declared up front),
``chunked`` (Transfer-Encoding: chunked, no size known before the end) or ``gzip`` (chunked, Content-Encoding:
gzip, so the wire carries a few MB that decompress to N bytes). The server counts the body bytes it managed to
write for each request before the client hung up.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DISTINCT_SKUS = 1000  # the block repeats, so the feed names the same 1,000 products over and over
PADDING = "x" * 900  # makes a record about 1 KB, so a few records fill a MB


def csv_header() -> bytes:
    return b"sku;name;quantity;price\n"


def csv_block() -> bytes:
    rows = (f"HUGE{i:04d};Product {i} {PADDING};{i % 7 + 1};{i % 50 + 1},99\n" for i in range(DISTINCT_SKUS))
    return "".join(rows).encode()


def xml_header() -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n<offers>\n'


def xml_block() -> bytes:
    records = (
        f'<o id="HUGE{i:04d}"><name>Product {i}</name><stock>{i % 7 + 1}</stock><price>{i % 50 + 1}.99</price>'
        f"<desc>{PADDING}</desc></o>\n"
        for i in range(DISTINCT_SKUS)
    )
    return "".join(records).encode()


def xml_footer() -> bytes:
    return b"</offers>\n"


def _parts(kind: str) -> tuple[bytes, bytes, bytes]:
    if kind == "xml":
        return xml_header(), xml_block(), xml_footer()
    return csv_header(), csv_block(), b""


def block_count(kind: str, target_bytes: int) -> int:
    header, block, footer = _parts(kind)
    return max(1, -(-(target_bytes - len(header) - len(footer)) // len(block)))


def feed_size(kind: str, target_bytes: int) -> int:
    """The exact size of the feed served for ``target_bytes`` (whole blocks, so at least the target)."""
    header, block, footer = _parts(kind)
    return len(header) + block_count(kind, target_bytes) * len(block) + len(footer)


def records_in(kind: str, target_bytes: int) -> int:
    return block_count(kind, target_bytes) * DISTINCT_SKUS


def feed_pieces(kind: str, target_bytes: int) -> Iterator[bytes]:
    header, block, footer = _parts(kind)
    yield header
    for _ in range(block_count(kind, target_bytes)):
        yield block
    if footer:
        yield footer


def gzip_pieces(kind: str, target_bytes: int) -> Iterator[bytes]:
    """The feed gzip-compressed, cheaply: after a full flush deflate starts afresh, so every repeat of the block
    compresses to the same bytes, computed once; the trailer's CRC is chained over the repeats."""
    header, block, footer = _parts(kind)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    yield compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    compressed_block = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    for _ in range(block_count(kind, target_bytes)):
        yield compressed_block
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(footer, crc)
    size = feed_size(kind, target_bytes)
    final = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the footer as the final block, then the trailer
    yield final.compress(footer) + final.flush() + crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")


@dataclass
class FeedServer:
    base: str
    sent: list[int] = field(default_factory=list)  # body bytes written per request, in request order
    done: threading.Event = field(default_factory=threading.Event)

    def url(self, kind: str, target_bytes: int, mode: str) -> str:
        return f"{self.base}/feed.{kind}?bytes={target_bytes}&mode={mode}"


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    box: list[FeedServer] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state = box[0]
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            kind = "xml" if parts.path.endswith(".xml") else "csv"
            target = int(query["bytes"][0])
            mode = query["mode"][0]
            self.send_response(200)
            self.send_header("Content-Type", "application/xml" if kind == "xml" else "text/csv")
            self.send_header("Connection", "close")
            if mode == "length":
                self.send_header("Content-Length", str(feed_size(kind, target)))
                pieces = feed_pieces(kind, target)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                if mode == "gzip":
                    self.send_header("Content-Encoding", "gzip")
                pieces = gzip_pieces(kind, target) if mode == "gzip" else feed_pieces(kind, target)
            self.end_headers()
            written = 0
            try:
                for piece in pieces:
                    if mode == "length":
                        self.wfile.write(piece)
                    else:
                        self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                    written += len(piece)
                if mode != "length":
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: that is what the size cap is for
            finally:
                state.sent.append(written)
                state.done.set()
            self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    box.append(FeedServer(base=f"http://127.0.0.1:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
