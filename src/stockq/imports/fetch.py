"""Getting a feed's bytes: a local file under the import root, or an http/https URL streamed to a temp file.

URL sources: connect and read timeouts, a cap on the (decompressed) size, a limited number of redirects, and a
conditional GET (If-None-Match / If-Modified-Since from the previous fetch) so that an unchanged feed costs one
request and a 304. A body cut off before its Content-Length, a timeout or an HTTP error fails the fetch; nothing is
parsed from a partial download.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from stockq.imports.feeds import FeedError

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_BYTES = 1 << 30
DEFAULT_MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """Limits of a URL fetch."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched feed: ``path`` to read (None when the server answered 304), and the validators to store."""

    path: Path | None
    size: int
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.path is None


def is_url(source: str) -> bool:
    """True for anything with a URL scheme (checked further by ``check_source``); a Windows drive is not one."""
    scheme = urlsplit(source).scheme
    return len(scheme) > 1


def check_source(source: str, import_root: Path) -> None:
    """Refuse a source that could never be fetched: a scheme other than http/https, or a path outside the root."""
    if is_url(source):
        parts = urlsplit(source)
        if parts.scheme.lower() not in ("http", "https"):
            raise FeedError(f"Only http and https URLs can be imported, not {parts.scheme}:")
        if not parts.hostname:
            raise FeedError("The URL has no host")
        return
    local_path(source, import_root, must_exist=False)


def local_path(source: str, import_root: Path, *, must_exist: bool = True) -> Path:
    """``source`` resolved (symlinks followed; relative to the root); FeedError unless it is under the root."""
    root = import_root.resolve()
    candidate = Path(source).expanduser()
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve(strict=False)
    if not resolved.is_relative_to(root):
        raise FeedError(f"{source} is outside the import root {root} (STOCKQ_IMPORT_ROOT)")
    if must_exist and not resolved.is_file():
        raise FeedError(f"{source} does not exist or is not a file")
    return resolved


def describe(source: str) -> str:
    """The source without credentials or query string, for messages and listings."""
    if not is_url(source):
        return source
    parts = urlsplit(source)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@contextmanager
def fetch(
    source: str,
    *,
    import_root: Path,
    etag: str | None = None,
    last_modified: str | None = None,
    options: FetchOptions | None = None,
) -> Iterator[Fetched]:
    """Yield the feed as a readable file; a downloaded one lives in a temp file removed afterwards."""
    check_source(source, import_root)
    if not is_url(source):
        path = local_path(source, import_root)
        yield Fetched(path=path, size=path.stat().st_size)
        return
    with tempfile.TemporaryDirectory(prefix="stockq-import-") as tmp:
        target = Path(tmp) / "feed"
        yield _download(source, target, etag=etag, last_modified=last_modified, options=options or FetchOptions())


def _download(url: str, target: Path, *, etag: str | None, last_modified: str | None, options: FetchOptions) -> Fetched:
    headers = {"Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = httpx.Timeout(options.read_timeout, connect=options.connect_timeout)
    where = describe(url)
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=options.max_redirects) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code == 304:
                return Fetched(path=None, size=0, etag=etag, last_modified=last_modified)
            if response.status_code >= 400:
                raise FeedError(f"{where} answered HTTP {response.status_code}")
            if response.status_code != 200:
                raise FeedError(f"{where} answered HTTP {response.status_code}, expected 200")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > options.max_bytes:
                raise FeedError(f"{where} is {int(declared)} bytes, more than the limit of {options.max_bytes}")
            size = 0
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > options.max_bytes:
                        raise FeedError(f"{where} is larger than the limit of {options.max_bytes} bytes")
                    out.write(chunk)
            return Fetched(
                path=target,
                size=size,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            )
    except httpx.TimeoutException as exc:
        raise FeedError(f"{where} timed out ({_kind(exc)})") from None
    except httpx.TooManyRedirects:
        raise FeedError(f"{where} redirected more than {options.max_redirects} times") from None
    except httpx.RemoteProtocolError as exc:
        raise FeedError(f"{where} closed the connection before the whole feed arrived: {exc}") from None
    except httpx.UnsupportedProtocol:
        raise FeedError(f"{where} redirected to a URL that is not http or https") from None
    except httpx.HTTPError as exc:
        raise FeedError(f"{where} could not be fetched: {type(exc).__name__}: {exc}") from None


def _kind(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect"
    if isinstance(exc, httpx.ReadTimeout):
        return "read"
    return "timeout"
