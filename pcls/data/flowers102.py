"""`pcls data flowers102`: download Oxford flowers102 and write the PaddleClas quick-start list files.

Lists as the quick start makes them: setid.mat `trnid` -> train_list.txt, `valid` -> val_list.txt,
`tstid` -> extra_list.txt, train + extra -> train_extra_list.txt; lines `jpg/image_%05d.jpg <label>`
with imagelabels.mat's 1-based labels made 0-based; labels.txt (the recipes' class_id_map_file) names them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from pcls.errors import PclsError
from pcls.utils.io import atomic_write_text

DEFAULT_URL_BASE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
MIRROR_ENV = "PCLS_DATA_MIRROR"
FILES = ("102flowers.tgz", "imagelabels.mat", "setid.mat")
# The MD5s the Oxford VGG files are published with (the data-set loaders of other libraries pin the same
# values), checked when the files come from DEFAULT_URL_BASE; a mirror you name is trusted as you trust it. Either
# way the downloader records each file's size and sha256 and verifies every reuse against them.
KNOWN_MD5 = {"102flowers.tgz": "52808999861908f626f3c1f4e79d11fa",
             "imagelabels.mat": "e0620be6f572b9609742df49c70aed4d",
             "setid.mat": "a5357ecc9cb78c4bef273ce3793fc85c"}
SPLITS = (("train_list.txt", "trnid"), ("val_list.txt", "valid"), ("extra_list.txt", "tstid"))
LABELS_FILE = "labels.txt"


def url_base(option: Optional[str] = None) -> str:
    base = option or os.environ.get(MIRROR_ENV, "").strip() or DEFAULT_URL_BASE
    return base if base.endswith("/") else base + "/"


def _load_mat(path: Path, key: str):
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, OSError, TypeError) as err:
        raise PclsError(f"{path} is not a readable .mat file ({err}); delete it and run the command again") from None
    if key not in mat:
        raise PclsError(f"{path} has no '{key}' array (found: {', '.join(k for k in mat if not k.startswith('__'))})")
    return np.asarray(mat[key]).ravel().astype(np.int64)


def write_lists(root) -> dict:
    """Write the four list files from imagelabels.mat + setid.mat under `root`; returns line counts."""
    root = Path(root)
    labels = _load_mat(root / "imagelabels.mat", "labels")
    if labels.size == 0 or labels.min() < 1:
        raise PclsError(f"{root / 'imagelabels.mat'}: labels must be 1-based class ids")
    lines = {}
    for list_name, key in SPLITS:
        ids = _load_mat(root / "setid.mat", key)
        bad = ids[(ids < 1) | (ids > labels.size)]
        if bad.size:
            raise PclsError(f"{root / 'setid.mat'}: '{key}' has image id {int(bad[0])} outside 1..{labels.size}")
        missing = [i for i in ids if not (root / "jpg" / f"image_{i:05d}.jpg").is_file()]
        if missing:
            raise PclsError(
                f"{len(missing)} images listed in setid.mat '{key}' are missing under {root / 'jpg'} "
                f"(first: image_{missing[0]:05d}.jpg); delete {root / 'jpg'} and run the command again"
            )
        lines[list_name] = [f"jpg/image_{i:05d}.jpg {labels[i - 1] - 1}\n" for i in ids]
    lines["train_extra_list.txt"] = lines["train_list.txt"] + lines["extra_list.txt"]
    for list_name, content in lines.items():
        atomic_write_text(root / list_name, "".join(content))
    return {name: len(content) for name, content in lines.items()}


def prepare_flowers102(root="dataset/flowers102", url_base_option: Optional[str] = None, progress: bool = True,
                       checksums: Optional[dict] = None) -> dict:
    """Download (resumable; verified against `checksums` {file: md5}, or KNOWN_MD5 from the official site),
    extract safely, and write the list files. Idempotent."""
    from pcls.zoo.download import fetch, safe_extract_tar

    root = Path(root)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    base = url_base(url_base_option)
    pinned = {**(KNOWN_MD5 if base == url_base(DEFAULT_URL_BASE) else {}), **(checksums or {})}
    try:
        for name in FILES:
            fetch(base + name, root / name, expected_md5=pinned.get(name), progress=progress)
    except PclsError as err:
        if created and not any(root.iterdir()):
            root.rmdir()  # a failed first download leaves no empty folder behind
        if not any(hint in str(err) for hint in ("PCLS_ZOO_MIRROR", "PCLS_OFFLINE")):
            raise
        # the downloader's hint names the zoo's mirror variable; these files come from the data mirror
        raise PclsError(f"{str(err).split('; ')[0]}; {_download_hint(root)}", err.exit_code) from None
    if not (root / "jpg").is_dir():
        safe_extract_tar(root / "102flowers.tgz", root)
        if not (root / "jpg").is_dir():
            raise PclsError(f"{root / '102flowers.tgz'} has no jpg/ folder; is it the flowers102 archive?")
    counts = write_lists(root)
    classes = int(_load_mat(root / "imagelabels.mat", "labels").max())
    labels = write_label_names(root, classes)
    return {"root": str(root), "url_base": base, "classes": classes, "lists": counts, "labels": str(labels)}


def _download_hint(root: Path) -> str:
    """What to do when the files cannot be downloaded: the data mirror (not the zoo's), or copy them by hand."""
    from pcls.zoo.cache import offline

    mirror = f"set {MIRROR_ENV}=URL or pass --url-base URL (a folder holding {', '.join(FILES)})"
    if offline():
        return f"copy {', '.join(FILES)} into {root}, or unset PCLS_OFFLINE and {mirror}"
    return f"check the network, or use a mirror: {mirror}"


def write_label_names(root, classes: int) -> Path:
    """labels.txt ('id name' lines) unless one is there already: the archive ships no flower names, so a
    class is named by its 1-based imagelabels.mat number; put a names file there to see flower names."""
    path = Path(root) / LABELS_FILE
    if not path.is_file():
        atomic_write_text(path, "".join(f"{i} class_{i + 1:03d}\n" for i in range(classes)))
    return path
