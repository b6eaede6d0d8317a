"""`pcls data flowers102` against a local HTTP server serving a generated miniature flowers102."""

import pytest
from typer.testing import CliRunner

from pcls.cli import app
from pcls.data.flowers102 import prepare_flowers102
from pcls.errors import PclsError
from tests.data.flowers102_fixture import Server, mini_flowers


@pytest.fixture
def server():
    srv = Server(mini_flowers())
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    import pcls.zoo.download as download

    monkeypatch.setattr(download, "BACKOFF_S", 0.0)


def test_the_published_md5s_are_checked_for_the_official_site(server, tmp_path, monkeypatch):
    monkeypatch.setattr("pcls.data.flowers102.DEFAULT_URL_BASE", server.url)  # the miniature, as if official
    with pytest.raises(PclsError, match="102flowers.tgz has md5 [0-9a-f]{32}, expected 52808999861908f626f3c1f4e79d11fa"):
        prepare_flowers102(tmp_path, server.url, progress=False)
    assert not list(tmp_path.glob("102flowers.tgz*"))  # neither the file nor a .part


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
    with pytest.raises(PclsError, match="setid.mat has md5 [0-9a-f]{32}, expected 0{32}"):
        prepare_flowers102(tmp_path, server.url, progress=False, checksums={"setid.mat": "0" * 32})
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


def test_labels_file_is_written_once_and_a_names_file_is_kept(server, tmp_path):
    result = prepare_flowers102(tmp_path, server.url, progress=False)
    assert (tmp_path / "labels.txt").read_text() == "0 class_001\n1 class_002\n2 class_003\n"
    assert result["labels"] == str(tmp_path / "labels.txt")
    (tmp_path / "labels.txt").write_text("0 pink primrose\n1 hard-leaved pocket orchid\n2 canterbury bells\n")
    prepare_flowers102(tmp_path, server.url, progress=False)
    assert (tmp_path / "labels.txt").read_text().startswith("0 pink primrose\n")
