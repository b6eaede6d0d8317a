"""A folder of class folders as a training set (`pcls train --model M --data DIR`): DIR/<class>/... with a
validation part split off each class by a fixed seed, or DIR/train/<class>/... beside DIR/val/<class>/....

The tree is indexed into list files (`pcls data index`'s format) without writing into DIR: the lists are
checked first, then written where the run keeps them, so the run folder holds everything its config names.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pcls.errors import PclsError
from pcls.utils.io import atomic_write_text, read_text

LIST_FILES = {"train": "train_list.txt", "val": "val_list.txt", "labels": "labels.txt"}


@dataclass
class FolderIndex:
    """The lists of one class-folder tree: texts in the list-file format, paths relative to `image_root`."""

    image_root: str
    layout: str  # "train/ and val/" or "class folders, val split <fraction>"
    classes: int
    counts: dict  # split -> images
    texts: dict  # "train" / "val" / "labels" -> file text

    def write(self, folder) -> dict:
        """Write the three files into `folder` (temp name + rename; recorded in its ledger); name -> path."""
        paths = {}
        for key, name in LIST_FILES.items():
            path = Path(folder) / name
            atomic_write_text(path, self.texts[key])
            paths[key] = str(path)
        return paths


def index_class_folders(root, val_split: float = 0.2, seed: int = 0) -> FolderIndex:
    """Index `root` for training: train/ + val/ when both exist (val_split unused), else class folders with
    `val_split` of each class held out by `seed`. Refused in one line: no folder, one class, or no image left
    for validation."""
    from pcls.data.lists import index_folders

    root = Path(root)
    if not root.is_dir():
        raise PclsError(f"--data {root}: no such folder; give a folder of class folders (DIR/<class>/*.jpg) or "
                        f"one with train/ and val/ class folders")
    has_val = (root / "train").is_dir() and (root / "val").is_dir()
    if not has_val and not 0 < val_split < 1:
        raise PclsError(f"--val-split must be between 0 and 1 (exclusive) for {root}, which has no train/ and val/ "
                        f"folders, got {val_split}")
    with tempfile.TemporaryDirectory(prefix="pcls-index-") as scratch:
        result = index_folders(root, val_split=0.0 if has_val else val_split, seed=seed, out_dir=scratch)
        texts = {key: read_text(Path(scratch) / name, "list file") for key, name in LIST_FILES.items()
                 if (Path(scratch) / name).is_file()}
    if result["classes"] < 2:
        raise PclsError(f"{root} holds one class folder; a classifier needs two or more (DIR/<class>/*.jpg)")
    if not result["counts"].get("val"):
        where = f"{root / 'val'} holds no images" if has_val else \
            f"no class of {root} has two images, so --val-split {val_split} leaves nothing to validate on"
        raise PclsError(f"{where}; add images (two or more per class)")
    layout = "train/ and val/" if has_val else f"class folders, val split {val_split:g} (seed {seed})"
    return FolderIndex(image_root=str(root), layout=layout, classes=result["classes"], counts=result["counts"],
                       texts=texts)
