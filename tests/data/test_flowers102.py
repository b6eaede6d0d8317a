"""`pcls data flowers102` against a local HTTP server serving a generated miniature flowers102."""

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from pcls.cli import app
from pcls.data.flowers102 import prepare_flowers102
from pcls.errors import PclsError

# 12 images: labels (1-based) and splits chosen by hand
LABELS = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]
TRNID, VALID, TSTID = [1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11, 12]


def _tgz(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _mat(**arrays):
    buf = io.BytesIO()
    scipy.io.savemat(buf, arrays)
    return buf.getvalue()


def mini_flowers(extra_members=()):
    rng = np.random.default_rng(0)
    members = []
    for i in range(1, len(LABELS) + 1):
        img = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
        members.append((f"jpg/image_{i:05d}.jpg", cv2.imencode(".jpg", img)[1].tobytes()))
    return {
        "102flowers.tgz": _tgz(members + list(extra_members)),
        "imagelabels.mat": _mat(labels=np.array([LABELS], dtype=np.uint8)),
        "setid.mat": _mat(trnid=np.array([TRNID], np.uint16), valid=np.array([VALID], np.uint16),
                          tstid=np.array([TSTID], np.uint16)),
    }


class Server:
    """Serves files from a dict with HTTP Range support; can cut the first response of a file half-way."""

    def __init__(self, files):
        self.files, self.cut_once, self.requests = files, set(), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append((name, self.headers.get("Range")))
                data = server.files.get(name) if self.path == f"/flowers/102/{name}" else None
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
                self.end_headers()
                body = data[start:]
                if name in server.cut_once:
                    server.cut_once.discard(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/flowers/102/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server(mini_flowers())
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    import pcls.zoo.download as download

    monkeypatch.setattr(download, "BACKOFF_S", 0.0)


def test_end_to_end_lists_as_the_quick_start(server, tmp_path):
    root = tmp_path / "flowers102"
    result = prepare_flowers102(root, server.url, progress=False)
    assert result["lists"] == {"train_list.txt": 3, "val_list.txt": 3, "extra_list.txt": 6, "train_extra_list.txt": 9}
    assert (root / "train_list.txt").read_text() == "jpg/image_00001.jpg 0\njpg/image_00002.jpg 1\njpg/image_00003.jpg 2\n"
    assert (root / "val_list.txt").read_text().splitlines()[0] == "jpg/image_00004.jpg 0"
    assert (root / "extra_list.txt").read_text().splitlines()[-1] == "jpg/image_00012.jpg 2"
    assert (root / "train_extra_list.txt").read_text() == (
        (root / "train_list.txt").read_text() + (root / "extra_list.txt").read_text())
    assert len(list((root / "jpg").iterdir())) == 12
    # a second run reuses (and verifies) the downloads: no new requests
    before = len(server.requests)
    prepare_flowers102(root, server.url, progress=False)
    assert len(server.requests) == before


def test_interrupted_download_resumes_with_range(server, tmp_path):
    server.cut_once.add("102flowers.tgz")
    prepare_flowers102(tmp_path, server.url, progress=False)
    tgz_requests = [r for r in server.requests if r[0] == "102flowers.tgz"]
    assert len(tgz_requests) == 2 and tgz_requests[0][1] is None and tgz_requests[1][1].startswith("bytes=")
    assert (tmp_path / "102flowers.tgz").read_bytes() == server.files["102flowers.tgz"]


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    with pytest.raises(PclsError, match="sha256"):
        prepare_flowers102(tmp_path, server.url, progress=False, checksums={"setid.mat": (None, "0" * 64)})
    assert not (tmp_path / "setid.mat").exists()


def test_changed_file_is_detected_on_reuse(server, tmp_path):
    prepare_flowers102(tmp_path, server.url, progress=False)
    (tmp_path / "imagelabels.mat").write_bytes(b"tampered")
    with pytest.raises(PclsError, match="changed since it was downloaded"):
        prepare_flowers102(tmp_path, server.url, progress=False)


def test_tar_member_escaping_the_root_is_refused(tmp_path):
    srv = Server(mini_flowers(extra_members=[("../escape.txt", b"gotcha")]))
    try:
        with pytest.raises(PclsError, match="outside the target folder"):
            prepare_flowers102(tmp_path / "root", srv.url, progress=False)
    finally:
        srv.close()
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "root" / "jpg").exists()


def test_cli_with_mirror_env(server, tmp_path, monkeypatch):
    monkeypatch.setenv("PCLS_DATA_MIRROR", server.url)
    result = CliRunner().invoke(app, ["data", "flowers102", "--root", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert '"train_extra_list.txt": 9' in result.output
    monkeypatch.setenv("PCLS_DATA_MIRROR", server.url + "nothing-here/")
    result = CliRunner().invoke(app, ["data", "flowers102", "--root", str(tmp_path / "other")])
    assert result.exit_code == 2 and "error" in result.output
