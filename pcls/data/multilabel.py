"""PaddleClas's MultiLabelDataset: list lines `relative/path.jpg<TAB>0,1,0,1`, one 0/1 per class, for
`Global.use_multilabel: True` training (sigmoid outputs, MultiLabelLoss, HammingDistance / AccuracyScore /
mAP / ATTRMetric metrics).

`label_ratio: True` (PaddleClas's attribute configs): each target is [2, classes], the 0/1 labels and the
list's positive ratio per label, which MultiLabelLoss's `weight_ratio` turns into per-label weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcls.data.datasets import DATASETS, ListDataset
from pcls.data.lists import read_multilabel_list
from pcls.errors import PclsError


@DATASETS.register("MultiLabelDataset")
class MultiLabelDataset(ListDataset):
    """image_root + cls_label_path; `labels` is the [N, classes] int64 0/1 matrix."""

    multilabel = True

    def __init__(self, image_root, cls_label_path, transforms=None, delimiter=None, allow_unlabeled=False,
                 class_names=None, label_ratio=False):
        if allow_unlabeled:
            raise PclsError("MultiLabelDataset: unlabeled lines are not supported (every line needs its 0/1 labels)")
        root = Path(image_root) if image_root is not None else Path(".")
        if not root.is_dir():
            raise PclsError(f"image_root {root} is not a directory")
        paths, labels = read_multilabel_list(cls_label_path, delimiter)
        self.paths = [str(root / p) for p in paths]
        self.labels = labels
        self.transforms, self.class_names, self.source = transforms, class_names, str(cls_label_path)
        self.ratio = labels.mean(axis=0).astype("float32") if label_ratio else None

    def label(self, index: int):
        if self.ratio is None:
            return self.labels[index]
        return np.stack([self.labels[index].astype("float32"), self.ratio])

    @property
    def num_classes(self) -> int:
        return int(self.labels.shape[1])

    def check_labels(self, class_num: int, setting: str = "Arch.class_num") -> None:
        if self.labels.shape[1] != class_num:
            raise PclsError(f"{self.source}: lines have {self.labels.shape[1]} labels but class_num is {class_num}; "
                            f"set {setting} to {self.labels.shape[1]} or fix the list")
