"""Datasets, the PaddleClas transform operators and the data loader that feeds training and evaluation.

Names are resolved lazily so `import pcls.data` stays cheap (paddle is imported only by the loader).
"""

_LAZY = {
    "build_dataloader": "pcls.data.loader:build_dataloader",
    "DataBundle": "pcls.data.loader:DataBundle",
    "DistributedBatchSampler": "pcls.data.sampler:DistributedBatchSampler",
    "build_dataset": "pcls.data.datasets:build_dataset",
    "ListDataset": "pcls.data.datasets:ListDataset",
    "ClassFolderDataset": "pcls.data.datasets:ClassFolderDataset",
    "build_transforms": "pcls.data.transforms:build_transforms",
    "make_demo_dataset": "pcls.data.demo:make_demo_dataset",
}

__all__ = list(_LAZY)


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'pcls.data' has no attribute {name!r}")
    import importlib

    module_name, attr = target.split(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value
