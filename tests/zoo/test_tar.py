"""safe_extract_tar: extracts ordinary archives, refuses members that escape the target or are links."""

from __future__ import annotations

import io
import tarfile

import pytest

from pcls.errors import PclsError
from pcls.zoo.download import safe_extract_tar


def _tar(path, members, mode="w"):
    """Write a tar whose members are (name, bytes) files or (name, TarInfo-kind, linkname) links."""
    with tarfile.open(path, mode) as archive:
        for member in members:
            info = tarfile.TarInfo(member[0])
            if len(member) == 3:
                info.type, info.linkname = member[1], member[2]
                archive.addfile(info)
            else:
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return path


def test_extracts_a_plain_and_a_gzipped_archive(tmp_path):
    files = [("ResNet50_pretrained/conv1_weights", b"w" * 100), ("ResNet50_pretrained/fc_0.b_0", b"b" * 10)]
    for name, mode in (("plain.tar", "w"), ("packed.tgz", "w:gz")):
        dest = tmp_path / name.split(".")[0]
        assert safe_extract_tar(_tar(tmp_path / name, files, mode), dest) == dest
        assert (dest / "ResNet50_pretrained" / "conv1_weights").read_bytes() == b"w" * 100
        assert (dest / "ResNet50_pretrained" / "fc_0.b_0").read_bytes() == b"b" * 10
        assert sorted(p.name for p in dest.iterdir()) == ["ResNet50_pretrained"]  # no staging folder left


def test_extracting_again_keeps_what_is_there(tmp_path):
    archive = _tar(tmp_path / "a.tar", [("top/file", b"new")])
    dest = tmp_path / "out"
    (dest / "top").mkdir(parents=True)
    (dest / "top" / "file").write_bytes(b"old")
    safe_extract_tar(archive, dest)
    assert (dest / "top" / "file").read_bytes() == b"old"


@pytest.mark.parametrize(
    "member, problem",
    [
        (("../escaped.txt", b"x"), "outside the target folder"),
        (("good/../../escaped.txt", b"x"), "outside the target folder"),
        (("/tmp/absolute_escape.txt", b"x"), "outside the target folder"),
        (("link", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (("hard", tarfile.LNKTYPE, "good/a.txt"), "is a link"),
        (("fifo", tarfile.FIFOTYPE, ""), "special file"),
    ],
)
def test_refuses_escaping_members_and_links_before_writing_anything(tmp_path, member, problem):
    archive = _tar(tmp_path / "evil.tar", [("good/a.txt", b"fine"), member])
    dest = tmp_path / "sub" / "out"
    with pytest.raises(PclsError, match=problem) as err:
        safe_extract_tar(archive, dest)
    assert repr(member[0]).strip("'") in str(err.value)
    assert not dest.exists()  # validation happens before anything is extracted
    assert not (tmp_path / "sub" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_unreadable_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not a tar archive" * 40)
    with pytest.raises(PclsError, match="not a readable tar archive"):
        safe_extract_tar(bad, tmp_path / "out")
