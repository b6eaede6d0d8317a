"""Datasets, the PaddleClas transform operators and the data loader that feeds training and evaluation.

Nothing here imports paddle at module level: only build_dataloader does, when called.
"""

from pcls.data.datasets import ClassFolderDataset, ListDataset, build_dataset
from pcls.data.demo import make_demo_dataset
from pcls.data.loader import DataBundle, build_dataloader
from pcls.data.multilabel import MultiLabelDataset  # registers the dataset name
from pcls.data.sampler import DistributedBatchSampler
from pcls.data.transforms import build_batch_transforms, build_transforms

__all__ = [
    "build_dataloader",
    "DataBundle",
    "DistributedBatchSampler",
    "build_dataset",
    "ListDataset",
    "ClassFolderDataset",
    "MultiLabelDataset",
    "build_transforms",
    "build_batch_transforms",
    "make_demo_dataset",
]
