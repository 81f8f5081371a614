"""HTTP downloads (``sbkube.sources.http``) from a loopback server: the file written
whole at ``dest`` with its sha256, the headers sent, and every failure naming the url
without writing anything."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sbkube.sources.git import FetchError
from sbkube.sources.http import MAX_DOWNLOAD_BYTES, download


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.headers.append(dict(self.headers.items()))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    served = Server()
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()
    served.thread.join(10)


def test_the_file_is_written_with_its_digest_and_the_headers_sent(server, tmp_path) -> None:
    server.files["/a.yaml"] = b"kind: ConfigMap\n"
    dest = tmp_path / "app" / "downloaded" / "a.yaml"
    got = download(f"{server.url}/a.yaml", dest, "downloaded/a.yaml", {"X-Team": "blue"})
    assert dest.read_bytes() == b"kind: ConfigMap\n"
    assert got.sha256 == "sha256:" + hashlib.sha256(b"kind: ConfigMap\n").hexdigest()
    assert got.record() == {
        "kind": "http",
        "url": f"{server.url}/a.yaml",
        "dest": "downloaded/a.yaml",
        "sha256": got.sha256,
        "bytes": 16,
    }
    assert server.headers[0]["X-Team"] == "blue"
    # Nothing but the file itself is left in its directory.
    assert [p.name for p in dest.parent.iterdir()] == ["a.yaml"]


def test_a_failed_download_names_the_url_and_leaves_the_old_file(server, tmp_path) -> None:
    dest = tmp_path / "a.yaml"
    dest.write_bytes(b"old\n")
    with pytest.raises(FetchError) as err:
        download(f"{server.url}/missing.yaml", dest, "a.yaml", {})
    assert err.value.field == "url" and err.value.exit_code == 1
    assert err.value.message == f"GET {server.url}/missing.yaml: 404 Not Found"
    assert dest.read_bytes() == b"old\n"


def test_a_download_too_large_is_refused(server, tmp_path) -> None:
    server.files["/big"] = b"x" * (MAX_DOWNLOAD_BYTES + 1)
    with pytest.raises(FetchError, match="more than 10 MiB; refused"):
        download(f"{server.url}/big", tmp_path / "big", "big", {})
    assert not (tmp_path / "big").exists()


def test_a_server_that_is_not_there_is_one_line(tmp_path) -> None:
    with pytest.raises(FetchError) as err:
        download("http://127.0.0.1:9/a.yaml", tmp_path / "a.yaml", "a.yaml", {})
    assert err.value.message.startswith("GET http://127.0.0.1:9/a.yaml: ")
    assert "\n" not in err.value.message
