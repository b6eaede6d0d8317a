"""Expand `pcls predict` INPUTS (files, folders searched recursively, globs, list files) into image paths."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import List, Tuple

from pcls.errors import PclsError
from pcls.utils.io import read_text

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
LIST_EXTENSIONS = {".txt", ".list", ".lst"}


def expand_inputs(inputs: List[str]) -> Tuple[List[Path], List[Tuple[str, str]]]:
    """(image paths in a stable order, [(path, why skipped)]) — files found in folders that are not images are
    reported, not silently dropped. A .txt/.list argument is a list file: the first field of each line is a
    path relative to the list's folder (PaddleClas list format)."""
    images: List[Path] = []
    skipped: List[Tuple[str, str]] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                (images.append(child) if child.suffix.lower() in IMAGE_EXTENSIONS
                 else skipped.append((str(child), "not an image file (by extension)")))
        elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
            for line in read_text(path, "list file").splitlines():  # not UTF-8: one line, no traceback
                if line.strip():
                    images.append(path.parent / line.split()[0])
        elif path.is_file():
            images.append(path)
        elif any(ch in text for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise PclsError(f"no file matches {text!r}")
            images.extend(matches)
        else:
            raise PclsError(f"input not found: {text}")
    if not images and not skipped:
        raise PclsError("no images to predict: pass files, folders, globs or a list file")
    return images, skipped
