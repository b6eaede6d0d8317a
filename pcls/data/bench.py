"""`pcls bench data`: throughput of a config's train/eval pipelines beside decode-only, the practical ceiling."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from pcls.errors import PclsError


def _rate(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


def _single_worker_rates(dataset, indices, seed):
    """(decode-only img/s, full pipeline img/s) on one thread, as one loader worker runs."""
    from pcls.data.decode import opencv_threads, read_image_file
    from pcls.data.loader import sample_rng
    from pcls.data.transforms import Compose

    decode_ops = [op for op in dataset.transforms.ops if type(op).__name__ == "DecodeImage"]
    decode = Compose(decode_ops[:1])
    with opencv_threads(1):
        for i in indices:  # warm-up: every file into the page cache, so both loops measure CPU, not disk
            read_image_file(dataset.paths[i])
        for i in indices[:8]:  # lazy imports, allocator
            dataset.read(i, sample_rng(seed, 0, i))
        start = time.perf_counter()
        for i in indices:
            decode(read_image_file(dataset.paths[i]), None)
        decode_s = time.perf_counter() - start
        start = time.perf_counter()
        for i in indices:
            dataset.read(i, sample_rng(seed, 0, i))
        pipeline_s = time.perf_counter() - start
    return _rate(len(indices), decode_s), _rate(len(indices), pipeline_s)


def _loader_rate(bundle):
    """img/s of the real DataLoader over one pass, from the first batch on (worker start-up excluded)."""
    it = iter(bundle.loader)
    first, _ = next(it)
    count, start = 0, time.perf_counter()
    for images, _ in it:
        count += images.shape[0]
    elapsed = time.perf_counter() - start
    return _rate(count, elapsed), count + first.shape[0]


def run_data_bench(cfg: dict, *, sections: Iterable[str] = ("Train", "Eval"), max_images: int = 512,
                   num_workers: Optional[int] = None, seed: Optional[int] = None) -> dict:
    """Measure each DataLoader section of `cfg` on its first `max_images` images.

    Per section: decode-only and full-pipeline images/s on one worker thread, their ratio (the cost of
    the pipeline in units of decoding), and the images/s of the real DataLoader with its workers.
    """
    from pcls.data.loader import build_dataloader

    data_cfg = (cfg or {}).get("DataLoader") or {}
    class_num = ((cfg or {}).get("Arch") or {}).get("class_num")
    seed = int(seed if seed is not None else ((cfg or {}).get("Global") or {}).get("seed") or 0)
    results = []
    for name in sections:
        section = data_cfg.get(name)
        if not section:
            continue
        section = {**section, "loader": dict(section.get("loader") or {})}
        if num_workers is not None:
            section["loader"]["num_workers"] = int(num_workers)
        workers = int(section["loader"].get("num_workers", 0))
        bundle = build_dataloader(section, train=name == "Train", seed=seed, class_num=class_num, limit=max_images)
        indices = list(range(len(bundle.dataset)))
        decode_ips, pipeline_ips = _single_worker_rates(bundle.dataset, indices, seed)
        loader_ips, seen = _loader_rate(bundle)
        results.append({
            "section": name,
            "images": len(indices),
            "ops": [repr(op) for op in bundle.transforms.ops],
            "batch_ops": [type(op).__name__ for op in bundle.batch_transforms.ops],
            "batch_size": bundle.sampler.batch_size,
            "num_workers": workers,
            "decode_ips_per_worker": decode_ips,
            "pipeline_ips_per_worker": pipeline_ips,
            "pipeline_fraction_of_decode": pipeline_ips / decode_ips,
            "pipeline_cost_vs_decode": decode_ips / pipeline_ips,
            "loader_ips_total": loader_ips,
            "loader_fraction_of_decode_ceiling": loader_ips / (decode_ips * max(workers, 1)),
        })
    if not results:
        raise PclsError("the config has no DataLoader.Train or DataLoader.Eval section to benchmark")
    return {"max_images": max_images, "seed": seed, "sections": results}


def make_bench_images(root, n: int = 256, size=(500, 375), seed: int = 0) -> Path:
    """n photo-like JPEGs (smooth colour fields + texture + shapes, ~50-80 KB at 500x375) and a list file
    `bench_list.txt` under root, for measuring pipelines without a real dataset. Returns the list path."""
    import cv2

    from pcls.utils.io import atomic_write_text

    root = Path(root)
    (root / "img").mkdir(parents=True, exist_ok=True)
    w, h = size
    lines = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        low = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
        img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        img += rng.normal(0, 18, (h, w, 3)).astype(np.int16)  # sensor-like texture sets the JPEG size
        img = np.clip(img, 0, 255).astype(np.uint8)
        for _ in range(4):
            centre = (int(rng.integers(w)), int(rng.integers(h)))
            cv2.circle(img, centre, int(rng.integers(10, 80)), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
        name = f"img/{i:05d}.jpg"
        cv2.imwrite(str(root / name), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        lines.append(f"{name} {i % 10}\n")
    list_path = root / "bench_list.txt"
    atomic_write_text(list_path, "".join(lines))
    return list_path


def imagenet_bench_config(root, list_path, num_workers: int = 2, batch_size: int = 64) -> dict:
    """The ImageNet recipe's train (RandCrop 224 + flip + normalize) and eval (resize 256 + crop 224) sections."""
    norm = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "order": ""}}
    decode = {"DecodeImage": {"to_rgb": True, "channel_first": False}}

    def section(ops, shuffle):
        return {
            "dataset": {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(list_path),
                        "transform_ops": [decode, *ops, norm]},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "shuffle": shuffle,
                        "drop_last": False},
            "loader": {"num_workers": num_workers, "use_shared_memory": True},
        }

    return {
        "Global": {"seed": 0},
        "Arch": {"class_num": 10},
        "DataLoader": {
            "Train": section([{"RandCropImage": {"size": 224}}, {"RandFlipImage": {"flip_code": 1}}], True),
            "Eval": section([{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}}], False),
        },
    }
