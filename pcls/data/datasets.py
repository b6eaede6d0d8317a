"""Datasets: PaddleClas list files (`relative/path.jpg <label>`) and ImageNet-style class folders.

Both hold (path, label) pairs, parse everything up front (a malformed line is an error naming file and
line before training starts), and load one sample with `load(index, rng)`, skipping unreadable images.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from pcls.errors import PclsError, short_repr
from pcls.utils.io import read_text
from pcls.utils.registry import Registry

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MAX_REPLACEMENTS = 10  # consecutive unreadable images before we stop and say the data is broken


class ListLineError(PclsError):
    pass


def parse_list_line(line: str, delimiter: Optional[str], allow_unlabeled: bool) -> Tuple[str, int]:
    """One list line -> (relative path, label); label -1 for an unlabeled line when allowed.

    The label is the text after the LAST delimiter, so file names may contain the delimiter.
    Raises ValueError with a short reason.
    """
    text = line.strip()
    parts = text.rsplit(delimiter, 1) if delimiter not in (None, "", " ") else text.rsplit(None, 1)
    if len(parts) == 2 and parts[1].lstrip("-").isdigit():
        label = int(parts[1])
        if label < 0:
            raise ValueError(f"label {label} is negative")
        return parts[0].strip(), label
    if allow_unlabeled:
        return text, -1
    if len(parts) == 1:
        raise ValueError("no label: expected 'path label'")
    raise ValueError(f"label {short_repr(parts[1])} is not a non-negative integer")


def read_list_file(list_path, delimiter: Optional[str] = " ", allow_unlabeled: bool = False) -> List[Tuple[str, int]]:
    """All (path, label) pairs of a list file; blank lines and '#' comments are skipped."""
    list_path = Path(list_path)
    if not list_path.is_file():
        raise PclsError(f"list file {list_path} not found; check cls_label_path (or run 'pcls data index DIR')")
    samples = []
    for lineno, line in enumerate(read_text(list_path, "list file").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            samples.append(parse_list_line(line, delimiter, allow_unlabeled))
        except ValueError as err:
            raise ListLineError(f"{list_path}:{lineno}: {err}: {line.strip()[:120]!r}") from None
    if not samples:
        raise PclsError(f"list file {list_path} has no samples")
    return samples


class ImageDataset:
    """(path, label) samples + a transform pipeline; what the loader indexes."""

    def __init__(self, samples: Sequence[Tuple[str, int]], transforms=None, class_names=None, source=""):
        self.paths = [s[0] for s in samples]
        self.labels = np.asarray([s[1] for s in samples], dtype=np.int64)
        self.transforms = transforms
        self.class_names = class_names
        self.source = source

    def __len__(self) -> int:
        return len(self.paths)

    def truncate(self, n: int) -> None:
        """Keep the first n samples."""
        self.paths, self.labels = self.paths[:n], self.labels[:n]

    @property
    def num_classes(self) -> int:
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def check_labels(self, class_num: int, setting: str = "Arch.class_num") -> None:
        """Every label < class_num (unlabeled -1 allowed), else an error naming the first bad sample and the
        `setting` that gave class_num."""
        bad = np.nonzero(self.labels >= class_num)[0]
        if bad.size:
            i = int(bad[0])
            raise PclsError(
                f"{self.source}: sample {i + 1} ({self.paths[i]}) has label {int(self.labels[i])}, "
                f"out of range for class_num {class_num}; set {setting} to {int(self.labels.max()) + 1} "
                "or fix the list"
            )

    def label(self, index: int):
        """Sample `index`'s label as the loader batches it (an int; a 0/1 vector for multi-label data)."""
        return int(self.labels[index])

    def read(self, index: int, rng):
        """Decode + transform sample `index` (raises OSError / DecodeError for a bad file)."""
        from pcls.data.decode import read_image_file

        data = read_image_file(self.paths[index])
        return self.transforms(data, rng) if self.transforms is not None else data

    def load(self, index: int, rng):
        """(image, label, failed_indices): unreadable images are replaced by random other samples."""
        from pcls.data.decode import DecodeError, Refused

        failed = []
        current = index
        while True:
            try:
                return self.read(current, rng), self.label(current), failed
            except (OSError, DecodeError) as err:
                if isinstance(err, Refused):  # not broken, so the per-epoch count alone would not explain it
                    log.warning("%s: %s", self.paths[current], err)
                failed.append(current)
                if len(failed) >= MAX_REPLACEMENTS:
                    raise PclsError(
                        f"{len(failed)} images in a row could not be read (first: {self.paths[failed[0]]}); "
                        f"run 'pcls data check {self.source}' to find the broken files"
                    ) from None
                current = int(rng.integers(len(self.paths)))

    def __getitem__(self, index: int):
        image, label, _ = self.load(index, np.random.default_rng(index))
        return image, label


class ListDataset(ImageDataset):
    """PaddleClas's ImageNetDataset: image_root + cls_label_path lines 'relative/path.jpg label'."""

    def __init__(self, image_root, cls_label_path, transforms=None, delimiter=" ", allow_unlabeled=False,
                 class_names=None):
        root = Path(image_root) if image_root is not None else Path(".")
        if not root.is_dir():
            raise PclsError(f"image_root {root} is not a directory")
        samples = read_list_file(cls_label_path, delimiter, allow_unlabeled)
        samples = [(str(root / path), label) for path, label in samples]
        super().__init__(samples, transforms, class_names, source=str(cls_label_path))


class CustomLabelDataset(ImageDataset):
    """PaddleClas's CustomLabelDataset: `sample_list_path` lists image paths only (one per line, relative to
    image_root); each sample's label is made by the transform op that publishes `label_key` (RandomRot90:
    random_rot90_orientation, BlurImage: blur_image), so it changes with every read."""

    def __init__(self, image_root, sample_list_path, label_key, transforms=None):
        from pcls.data.transforms.pulc import LabellingOperator

        makers = [op for op in getattr(transforms, "ops", []) if isinstance(op, LabellingOperator)
                  and op.label_key == label_key]
        if not makers:
            raise PclsError(f"CustomLabelDataset: no transform op makes the label '{label_key}' (label_key); add "
                            f"RandomRot90 (random_rot90_orientation) or BlurImage (blur_image) to its transform_ops")
        root = Path(image_root) if image_root is not None else Path(".")
        if not root.is_dir():
            raise PclsError(f"image_root {root} is not a directory")
        lines = read_text(sample_list_path, "sample_list_path file").splitlines()
        samples = [(str(root / line.strip()), -1) for line in lines if line.strip()]
        if not samples:
            raise PclsError(f"sample_list_path {sample_list_path} lists no images")
        super().__init__(samples, transforms, source=str(sample_list_path))
        self.label_key, self.num_labels = label_key, makers[0].num_labels
        self.made = {}  # index -> the label its last read made (read() runs just before label())

    @property
    def num_classes(self) -> int:
        return self.num_labels

    def check_labels(self, class_num: int, setting: str = "Arch.class_num") -> None:
        if self.num_classes != class_num:
            raise PclsError(f"CustomLabelDataset: {self.label_key} makes {self.num_classes} classes but {setting} "
                            f"is {class_num}")

    def read(self, index: int, rng):
        from pcls.data.decode import read_image_file

        data = read_image_file(self.paths[index])  # the file checks every dataset's reads get (a FIFO, a huge file)
        label = None
        for op in self.transforms.ops:
            if getattr(op, "label_key", None) == self.label_key:
                data, label = op.labelled(data, rng)
            else:
                data = op(data, rng)
        self.made[index] = label
        return data

    def label(self, index: int):
        return int(self.made.pop(index))


def scan_class_folders(root, skipped: Optional[list] = None) -> Tuple[List[str], List[Tuple[str, int]]]:
    """Class names (sorted sub-folder names) and (path, label) pairs of the images under them.

    A symbolic link (class folder or image) that is dangling or points outside `root` is left out: a `.jpg`
    link to /etc/passwd is not an image of this dataset. Each one is appended to `skipped` as (path, reason),
    or logged when no list is given.
    """
    root = Path(root)
    if not root.is_dir():
        raise PclsError(f"{root} is not a directory of class folders")
    real_root = root.resolve()
    left_out = [] if skipped is None else skipped
    classes = sorted(d.name for d in root.iterdir()
                     if d.is_dir() and not d.name.startswith(".") and not _link_escapes(d, real_root, left_out))
    if not classes:
        raise PclsError(f"{root} has no class sub-folders; expected {root}/<class>/<image>.jpg")
    samples = []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / name, followlinks=False):
            dirnames.sort()
            for fname in sorted(filenames):
                path = Path(dirpath, fname)
                if fname.lower().endswith(IMAGE_EXTENSIONS) and not _link_escapes(path, real_root, left_out):
                    samples.append((str(path), label))
    if skipped is None and left_out:
        shown = "; ".join(f"{path} ({why})" for path, why in left_out[:5])
        log.warning("%s: skipped %d symbolic link(s): %s%s", root, len(left_out), shown,
                    " ..." if len(left_out) > 5 else "")
    if not samples:
        raise PclsError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}")
    return classes, samples


def _link_escapes(path: Path, real_root: Path, skipped: list) -> bool:
    """True (and noted in `skipped`) for a symbolic link that is dangling or resolves outside `real_root`."""
    if not path.is_symlink():
        return False
    target = path.resolve()
    if not target.exists():
        skipped.append((str(path), "dangling symbolic link"))
        return True
    if not target.is_relative_to(real_root):
        skipped.append((str(path), f"symbolic link to {target}, outside {real_root}"))
        return True
    return False


class ClassFolderDataset(ImageDataset):
    """ImageNet-style folders: image_root/<class>/*.jpg; labels follow the sorted class names."""

    def __init__(self, image_root, transforms=None):
        classes, samples = scan_class_folders(image_root)
        super().__init__(samples, transforms, classes, source=str(image_root))


DATASETS = Registry("dataset", where="DataLoader dataset name")
# MultiScaleDataset: PaddleClas's list dataset for MultiScaleSampler; the loader gives each batch its size
DATASETS.register("ImageNetDataset", "MultiScaleDataset")(ListDataset)
DATASETS.register("ClassFolderDataset", "ImageFolder")(ClassFolderDataset)
DATASETS.register("CustomLabelDataset")(CustomLabelDataset)
_IGNORED_KEYS = {"name", "transform_ops", "batch_transform_ops", "relabel", "backend"}


def build_dataset(dataset_cfg: dict, *, transforms=None, allow_unlabeled=False) -> ImageDataset:
    """A dataset from a DataLoader.<Train|Eval>.dataset config section (transforms already built)."""
    if not isinstance(dataset_cfg, dict) or "name" not in dataset_cfg:
        raise PclsError("DataLoader dataset section needs 'name' (ImageNetDataset or ClassFolderDataset)")
    name = dataset_cfg["name"]
    cls = DATASETS.get(name)
    if issubclass(cls, ListDataset):  # ImageNetDataset, MultiLabelDataset (pcls.data.multilabel)
        if not dataset_cfg.get("cls_label_path"):
            raise PclsError(f"dataset {name} needs cls_label_path (the list file)")
        extra = {"label_ratio": True} if dataset_cfg.get("label_ratio") else {}
        if extra and not getattr(cls, "multilabel", False):
            raise PclsError(f"DataLoader dataset {name}: label_ratio is for MultiLabelDataset (attribute lists)")
        return cls(
            dataset_cfg.get("image_root") or ".",
            dataset_cfg["cls_label_path"],
            transforms,
            delimiter=dataset_cfg.get("delimiter", " "),
            # a consumer (distillation) or the config itself may accept label-less lines
            allow_unlabeled=allow_unlabeled or bool(dataset_cfg.get("allow_unlabeled")),
            **extra,
        )
    if cls is CustomLabelDataset:
        if not dataset_cfg.get("sample_list_path") or not dataset_cfg.get("label_key"):
            raise PclsError(f"dataset {name} needs sample_list_path (the image list) and label_key (the label's "
                            f"maker, e.g. random_rot90_orientation)")
        return CustomLabelDataset(dataset_cfg.get("image_root") or ".", dataset_cfg["sample_list_path"],
                                  dataset_cfg["label_key"], transforms)
    if not dataset_cfg.get("image_root"):
        raise PclsError(f"dataset {name} needs image_root (the folder of class folders)")
    return ClassFolderDataset(dataset_cfg["image_root"], transforms)
