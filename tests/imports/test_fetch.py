"""Fetching: the import root for local files, and URL sources from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from stockq.imports.feeds import FeedError
from stockq.imports.fetch import FetchOptions, check_source, describe, fetch
from tests.imports.helpers import Route, http_server

FAST = FetchOptions(connect_timeout=0.5, read_timeout=0.5, max_bytes=1000, max_redirects=2)


def test_local_file_under_the_root(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "a.csv").write_text("sku\nA\n")
    with fetch("feeds/a.csv", import_root=tmp_path) as fetched:
        assert fetched.path == tmp_path / "feeds" / "a.csv"
        assert fetched.size == 6


@pytest.mark.parametrize("source", ["/etc/passwd", "../outside.csv", "feeds/../../outside.csv"])
def test_paths_outside_the_root_are_refused(tmp_path: Path, source: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(FeedError, match="outside the import root"), fetch(source, import_root=root):
        pass


def test_a_symlink_pointing_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "innocent.csv")
    with pytest.raises(FeedError, match="outside the import root"), fetch("innocent.csv", import_root=root):
        pass


@pytest.mark.parametrize("source", ["file:///etc/passwd", "ftp://example.com/feed.csv", "gopher://x/"])
def test_only_http_and_https(tmp_path: Path, source: str) -> None:
    with pytest.raises(FeedError, match="Only http and https"):
        check_source(source, tmp_path)


def test_describe_hides_credentials_and_query() -> None:
    assert (
        describe("https://user:pass@feeds.example.com:8443/f.xml?key=SECRET") == "https://feeds.example.com:8443/f.xml"
    )


def test_download_then_304_with_the_stored_etag(tmp_path: Path) -> None:
    routes = {"/f.xml": Route(body=b"<offers/>", etag='"v1"', last_modified="Sun, 29 Nov 2026 03:00:00 GMT")}
    with http_server(routes) as server:
        with fetch(server.url("/f.xml"), import_root=tmp_path, options=FAST) as fetched:
            assert fetched.path is not None
            assert fetched.path.read_bytes() == b"<offers/>"
            assert (fetched.etag, fetched.last_modified) == ('"v1"', "Sun, 29 Nov 2026 03:00:00 GMT")
            downloaded = fetched.path
        assert not downloaded.exists()  # the temp file is removed
        with fetch(
            server.url("/f.xml"),
            import_root=tmp_path,
            etag='"v1"',
            last_modified="Sun, 29 Nov 2026 03:00:00 GMT",
            options=FAST,
        ) as again:
            assert again.not_modified
        assert server.hits("/f.xml") == 2
        _, headers = server.requests[-1]
        assert headers["If-None-Match"] == '"v1"'
        assert headers["If-Modified-Since"] == "Sun, 29 Nov 2026 03:00:00 GMT"


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route(body=b"oops", status=500), "answered HTTP 500"),
        (Route(body=b"<offers/>", delay=1.5), "timed out \\(read\\)"),
        (Route(body=b"<offers><o", content_length=5000), "is 5000 bytes, more than the limit of 1000"),
        (Route(body=b"<offers><o", content_length=900), "closed the connection before the whole feed"),
        (Route(body=b"x" * 2000, content_length=-1), "larger than the limit of 1000 bytes"),
        (Route(status=302, location="/loop"), "redirected more than 2 times"),
    ],
    ids=["500", "timeout", "declared-too-big", "cut-off", "too-big", "redirect-loop"],
)
def test_failed_downloads(tmp_path: Path, route: Route, message: str) -> None:
    routes = {"/f": route, "/loop": Route(status=302, location="/f")}
    with http_server(routes) as server:
        started = time.monotonic()
        with pytest.raises(FeedError, match=message), fetch(server.url("/f"), import_root=tmp_path, options=FAST):
            pass
        assert time.monotonic() - started < 1.4  # the read timeout (0.5 s) ends it, not the server's 1.5 s


def test_connection_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(FeedError, match="could not be fetched"),
        fetch("http://127.0.0.1:9/f.xml", import_root=tmp_path, options=FAST),
    ):
        pass
