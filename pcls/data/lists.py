"""List files from class folders (`pcls data index`), list-file health checks (`pcls data check`) and the
multi-label list format (`path<TAB>0,1,0,1`: one 0/1 per class, PaddleClas's MultiLabelDataset)."""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from pcls.data.datasets import parse_list_line, scan_class_folders
from pcls.data.decode import DecodeError, decode_image, file_refusal, max_file_bytes, read_image_file
from pcls.errors import PclsError, short_repr
from pcls.utils.io import atomic_write_text, read_text


def read_label_names(path) -> list:
    """labels.txt lines 'id name' -> names indexed by id (PaddleClas class_id_map_file format)."""
    names = {}
    for lineno, line in enumerate(read_text(path, "labels file").splitlines(), 1):
        if not line.strip():
            continue
        head, _, name = line.strip().partition(" ")
        if not head.isdigit():
            raise PclsError(f"{path}:{lineno}: expected 'id name', got {short_repr(line.strip())}")
        names[int(head)] = name.strip()
    return [names.get(i, str(i)) for i in range(max(names) + 1)] if names else []


def parse_multilabel_line(line: str, delimiter: Optional[str]) -> Tuple[str, np.ndarray]:
    """`path<delimiter>0,1,0,1` -> (path, int64 vector of 0/1); raises ValueError with a short reason.

    The label vector is the text after the LAST delimiter (whitespace when `delimiter` is None or a space),
    so file names may contain the delimiter.
    """
    text = line.strip()
    parts = text.rsplit(delimiter, 1) if delimiter not in (None, "", " ") else text.rsplit(None, 1)
    if len(parts) != 2 or not parts[1].strip():
        raise ValueError("no labels: expected 'path<TAB>0,1,0,...' (one 0/1 per class)")
    values = [v.strip() for v in parts[1].split(",")]
    if not all(v in ("0", "1") for v in values):
        raise ValueError(f"labels {short_repr(parts[1].strip())} are not comma-separated 0/1 values")
    return parts[0].strip(), np.asarray([int(v) for v in values], dtype=np.int64)


def read_multilabel_list(list_path, delimiter: Optional[str] = None) -> Tuple[List[str], np.ndarray]:
    """Paths and the [N, classes] 0/1 label matrix of a multi-label list; every line needs as many labels."""
    list_path = Path(list_path)
    if not list_path.is_file():
        raise PclsError(f"list file {list_path} not found; check cls_label_path")
    paths, rows = [], []
    for lineno, line in enumerate(read_text(list_path, "list file").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            path, labels = parse_multilabel_line(line, delimiter)
        except ValueError as err:
            raise PclsError(f"{list_path}:{lineno}: {err}: {line.strip()[:120]!r}") from None
        if rows and len(labels) != len(rows[0]):
            raise PclsError(f"{list_path}:{lineno}: {len(labels)} labels, but the first line has {len(rows[0])}; "
                            f"every line needs one 0/1 per class")
        paths.append(path)
        rows.append(labels)
    if not rows:
        raise PclsError(f"list file {list_path} has no samples")
    return paths, np.stack(rows)


def _relative(paths, root):
    return [Path(p).relative_to(root).as_posix() for p in paths]


def stratified_split(labels, val_split: float, seed: int):
    """Indices (train, val): per class, a seeded shuffle puts round(n * val_split) samples in val
    (at least one when the class has two or more samples and val_split > 0)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(labels):
        members = np.nonzero(labels == cls)[0]
        members = members[rng.permutation(len(members))]
        n_val = int(round(len(members) * val_split))
        if val_split > 0 and len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val.extend(members[:n_val].tolist())
        train.extend(members[n_val:].tolist())
    return sorted(train), sorted(val)


def index_folders(root, *, val_split: float = 0.0, seed: int = 0, out_dir=None) -> dict:
    """Write train_list.txt (+ val_list.txt) and labels.txt for class folders under `root`. Symbolic links
    that dangle or leave their folder are not listed; the result's "skipped" says which and why.

    `root/train/<class>/...` (+ optional `root/val/<class>/...`) or `root/<class>/...` directly;
    paths in the lists are relative to `root` (use it as image_root).
    """
    root = Path(root)
    out_dir = Path(out_dir) if out_dir else root
    if not 0 <= val_split < 1:
        raise PclsError(f"--val-split must be in [0, 1), got {val_split}")
    split_dirs = root / "train"
    lists, skipped = {}, []
    if split_dirs.is_dir() and any(p.is_dir() for p in split_dirs.iterdir()):
        classes, samples = scan_class_folders(split_dirs, skipped)
        lists["train"] = samples
        if (root / "val").is_dir():
            val_classes, val_samples = scan_class_folders(root / "val", skipped)
            unknown = sorted(set(val_classes) - set(classes))
            if unknown:
                raise PclsError(f"{root / 'val'} has classes not in {split_dirs}: {', '.join(unknown[:5])}")
            remap = {i: classes.index(name) for i, name in enumerate(val_classes)}
            lists["val"] = [(p, remap[label]) for p, label in val_samples]
    else:
        classes, samples = scan_class_folders(root, skipped)
        lists["train"] = samples
    if val_split > 0:
        if "val" in lists:
            raise PclsError(f"{root} already has a val/ folder; drop --val-split or the folder")
        samples = lists["train"]
        train_idx, val_idx = stratified_split([s[1] for s in samples], val_split, seed)
        lists = {"train": [samples[i] for i in train_idx], "val": [samples[i] for i in val_idx]}
    written = {}
    for split, samples in lists.items():
        rel = _relative([p for p, _ in samples], root)
        path = out_dir / f"{split}_list.txt"
        atomic_write_text(path, "".join(f"{r} {label}\n" for r, (_, label) in zip(rel, samples)))
        written[f"{split}_list"] = str(path)
    labels_path = out_dir / "labels.txt"
    atomic_write_text(labels_path, "".join(f"{i} {name}\n" for i, name in enumerate(classes)))
    written["labels"] = str(labels_path)
    return {
        "image_root": str(root),
        "classes": len(classes),
        "counts": {split: len(samples) for split, samples in lists.items()},
        "files": written,
        "skipped": [{"path": path, "reason": why} for path, why in skipped],
    }


def _decodes(path) -> Optional[str]:
    """None if the file decodes as an image (within the file size and pixel limits), else the reason."""
    try:
        decode_image(read_image_file(path))
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    except DecodeError as err:  # refused (not a regular file, too big), or not an image
        return str(err)
    return None


def check_list(list_path, root, *, class_num: Optional[int] = None, delimiter: Optional[str] = " ",
               allow_unlabeled: bool = False, decode: bool = True,
               on_progress: Optional[Callable[[int], None]] = None) -> dict:
    """Check every line of a list file: parses, file exists (and decodes), label in range.

    Returns {"ok", "lines", "samples", "per_class", "problems": [{"line", "path", "problem"}],
    "warnings": [{"line", "path", "warning"}], ...}; a path that leaves the image root (absolute, or '..'
    above it) is a warning: it may be intended, but the user should see it before training.
    """
    list_path, root = Path(list_path), Path(root)
    if not list_path.is_file():
        raise PclsError(f"list file {list_path} not found")
    if not root.is_dir():
        raise PclsError(f"image root {root} is not a directory (pass --root DIR)")
    if class_num is None:
        for candidate in (root / "labels.txt", list_path.parent / "labels.txt"):
            if candidate.is_file():
                class_num = len(read_label_names(candidate))
                break
    problems, warnings, entries, lines = [], [], [], 0
    for lineno, line in enumerate(read_text(list_path, "list file").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        lines += 1
        try:
            rel, label = parse_list_line(line, delimiter, allow_unlabeled)
        except ValueError as err:
            problems.append({"line": lineno, "path": None, "problem": str(err)})
            continue
        if class_num is not None and label >= class_num:
            problems.append({"line": lineno, "path": rel, "problem": f"label {label} >= class_num {class_num}"})
            continue
        outside = _outside_root(rel)
        if outside:
            warnings.append({"line": lineno, "path": rel, "warning": outside})
        entries.append((lineno, rel, label))

    file_limit = max_file_bytes()

    def inspect(entry):
        lineno, rel, _ = entry
        full = root / rel
        try:
            info = full.stat()
        except OSError:
            return "missing file"
        return (file_refusal(info, file_limit) or _decodes(full)) if decode else file_refusal(info, file_limit)

    results = []
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        for k, result in enumerate(pool.map(inspect, entries, chunksize=32)):
            results.append(result)
            if on_progress is not None and (k + 1) % 64 == 0:
                on_progress(64)
    if on_progress is not None:
        on_progress(len(entries) % 64)
    good = Counter()
    for (lineno, rel, label), problem in zip(entries, results):
        if problem:
            problems.append({"line": lineno, "path": rel, "problem": problem})
        else:
            good[label] += 1
    problems.sort(key=lambda p: p["line"])
    return {
        "list": str(list_path),
        "root": str(root),
        "ok": not problems,
        "lines": lines,
        "samples": sum(good.values()),
        "class_num": class_num,
        "classes_seen": len([c for c in good if c >= 0]),
        "per_class": {int(k): v for k, v in sorted(good.items())},
        "problems": problems,
        "warnings": warnings,
    }


def _outside_root(rel: str) -> Optional[str]:
    """Why a list path leaves the image root (absolute, or '..' climbing above it), else None."""
    text = rel.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return "absolute path: it ignores the image root"
    depth = 0
    for part in text.split("/"):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0:
            return "path leaves the image root ('..')"
    return None


def count_lines(list_path) -> int:
    """Non-blank lines (for a progress total); 0 for a missing file, which check_list reports."""
    if not Path(list_path).is_file():
        return 0
    with open(list_path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def class_count(list_path) -> int:
    """Number of classes a labelled list implies: its largest label + 1 (unlabeled lines are ignored)."""
    path = Path(list_path)
    if not path.is_file():
        raise PclsError(f"list file {path} does not exist")
    largest = -1
    for line in read_text(path, "list file").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-1].lstrip("-").isdigit():
            largest = max(largest, int(parts[-1]))
    if largest < 0:
        raise PclsError(f"{path} has no labelled lines; pass --class-num")
    return largest + 1
