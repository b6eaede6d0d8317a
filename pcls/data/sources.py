"""Where the datasets the built-in recipes name (`Reference.dataset`) come from, so that a missing list file
is reported with the command that makes it rather than only its path."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pcls.errors import PclsError


def _folder(image_root: Optional[str], default: str) -> str:
    """The image root as the user would type it: `./dataset/flowers102/` -> `dataset/flowers102`."""
    return Path(image_root).as_posix() if image_root else default


def how_to_make(dataset: Optional[str], image_root: Optional[str] = None) -> Optional[str]:
    """What to run (or do) to get `dataset` under `image_root`; None for a dataset pcls knows nothing about."""
    if dataset == "flowers102":
        return f"make it with: pcls data flowers102 --root {_folder(image_root, 'dataset/flowers102')}"
    if dataset == "pcls-demo":
        return f"make it with: pcls data demo {_folder(image_root, 'dataset/pcls-demo')}"
    if dataset == "ImageNet-1k":
        folder = _folder(image_root, "dataset/ILSVRC2012")
        return (f"ImageNet-1k cannot be downloaded by pcls (image-net.org needs an account): put ILSVRC2012 in "
                f"{folder} with train_list.txt and val_list.txt ('relative/path.JPEG label' lines; "
                f"'pcls data index DIR' writes them from class folders)")
    if dataset and dataset.startswith("PULC-"):
        task = dataset[len("PULC-"):]
        folder = _folder(image_root, f"dataset/{task}")
        return (f"PaddleClas's PULC {task} dataset cannot be downloaded by pcls: get it as PaddleClas's PULC {task} "
                f"page says and put it in {folder} with the list files the config names, or train on your own "
                f"images with the same lists ('pcls data index DIR' writes them from class folders)")
    return None


def check_list_file(cfg: dict, split: str) -> None:
    """Refuse a DataLoader.<split> list file that does not exist, saying how to make it when the config's
    `Reference.dataset` is one pcls knows (every built-in recipe names its dataset)."""
    dataset = (((cfg.get("DataLoader") or {}).get(split) or {}).get("dataset")) or {}
    list_file = dataset.get("cls_label_path")
    if not list_file or Path(list_file).is_file():
        return
    hint = how_to_make((cfg.get("Reference") or {}).get("dataset"), dataset.get("image_root"))
    raise PclsError(f"DataLoader.{split}.dataset.cls_label_path: list file {list_file} does not exist"
                    + (f"; {hint}" if hint else ""))
