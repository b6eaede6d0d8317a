"""A generated miniature flowers102 (102flowers.tgz, imagelabels.mat, setid.mat) and a local HTTP server that
serves it, shared by the data tests and the recipe pipeline tests."""

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import scipy.io

# the default miniature: 12 images, labels (1-based) and splits chosen by hand
LABELS = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]
TRNID, VALID, TSTID = [1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11, 12]
URL_PATH = "/flowers/102/"


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


def mini_flowers(extra_members=(), labels=LABELS, trnid=TRNID, valid=VALID, tstid=TSTID, image_hw=(16, 20)):
    """The three flowers102 files as bytes: random JPEGs jpg/image_%05d.jpg for 1..len(labels), the 1-based
    `labels` in imagelabels.mat and the trnid/valid/tstid image ids in setid.mat (as the published files)."""
    rng = np.random.default_rng(0)
    members = []
    for i in range(1, len(labels) + 1):
        img = rng.integers(0, 256, (*image_hw, 3), dtype=np.uint8)
        members.append((f"jpg/image_{i:05d}.jpg", cv2.imencode(".jpg", img)[1].tobytes()))
    return {
        "102flowers.tgz": _tgz(members + list(extra_members)),
        "imagelabels.mat": _mat(labels=np.array([labels], dtype=np.uint8)),
        "setid.mat": _mat(trnid=np.array([trnid], np.uint16), valid=np.array([valid], np.uint16),
                          tstid=np.array([tstid], np.uint16)),
    }


class Server:
    """Serves files from a dict at 127.0.0.1 under URL_PATH, with HTTP Range support; can cut the first
    response of a file half-way (names in `cut_once`). `requests` records (name, Range header)."""

    def __init__(self, files):
        self.files, self.cut_once, self.requests = files, set(), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append((name, self.headers.get("Range")))
                data = server.files.get(name) if self.path == f"{URL_PATH}{name}" else None
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
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{URL_PATH}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
